"""How right are generated readings of Japanese titles and names? (issue 13, readings)

Ground truth: the cataloger's romanisation of real Japanese records. MARC21 records from
LC/RLIN/OCLC give the romanised heading in the regular field (245, 100, 700, 260, ...) and
the vernacular in the 880 linked to it by $6; records with $8 script groups (11 script,
12 kana reading, 13 romanisation) give the kana reading too. The Japanese CNMARC fixture adds
its romanised parallels (200 $A/$F, 225 $A, 7XX $A). Every (vernacular, romanisation) pair of
a Japanese record (`is_japanese`: 008/35-37 jpn, 041 jpn or kana in the title) is collected
from fixtures/marc/ and, when present, /work/shared/data/marc/; a pair seen twice (the fixture
is derived from the same records) counts once.

Candidates read the vernacular as libgate indexes it (RLIN word spaces removed), and give
orthographic kana (は stays ハ: the kana a reader types); one shared romaniser (pykakasi's
kana table, exact for kana) turns that kana into Hepburn. cutlet gives romaji itself. LC
romanisation is modified Hepburn with macrons and word division, so both sides are folded
to one comparison form: lower case, diacritics and apostrophes dropped, the particles written
`wa`/`e` as words read as `ha`/`he` (orthographic, like the kana), ō/ou/oo -> o, ū/uu -> u
(any doubled vowel to one), `wo` -> `o`, m before b/p/m -> n, then everything but a-z and
digits removed. A heading is right when the folded forms are equal; the character error rate
is the edit distance over the folded truth's length, summed over all headings.

Also measured: time per heading (the reading call only, best of `--repeat` passes over
`--timing` Japanese titles and names made by bench/generate_cnmarc.py, load-like input: the
fixture headings are too few to time), import-and-first-reading time and peak memory (VmHWM)
over a bare interpreter (each in a fresh subprocess, best of 3), and the size on disk of the
candidate's distributions and their dependencies.

Run: `python bench/readings_eval.py [--timing N] [--repeat R] [--no-shared]` from the project
root (about 10 s). Needs
pykakasi; the other candidates (fugashi + unidic-lite, cutlet, sudachipy +
sudachidict-small, janome) are measured when installed and skipped otherwise. None of them
is a libgate dependency: install them into the virtualenv by hand to run this.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from marc import charset  # noqa: E402
from marc.iso2709 import frame_records, parse_structure  # noqa: E402
from marc.marc21_to_unimarc import is_japanese, parallels, tidy  # noqa: E402
from marc.record import Field, MarcRecord  # noqa: E402

SHARED = Path("/work/shared/data/marc")
MARC_SUFFIXES = {".mrc", ".marc", ".dat", ".usmarc"}
JAPANESE_FIXTURE = ROOT / "fixtures" / "marc" / "japanese" / "japanese_cnmarc.iso"

# MARC21 tag -> (kind, subfields paired with the romanised field's)
MARC21_HEADINGS: dict[str, tuple[str, str]] = {
    "130": ("title", "a"),
    "240": ("title", "a"),
    "245": ("title", "abnp"),
    "246": ("title", "a"),
    "440": ("title", "a"),
    "490": ("title", "a"),
    "730": ("title", "a"),
    "740": ("title", "a"),
    "780": ("title", "t"),
    "785": ("title", "t"),
    "830": ("title", "a"),
    "100": ("name", "a"),
    "600": ("name", "a"),
    "700": ("name", "a"),
    "110": ("other", "a"),
    "610": ("other", "a"),
    "710": ("other", "a"),
    "250": ("other", "a"),
    "260": ("other", "ab"),
    "264": ("other", "ab"),
    "651": ("other", "a"),
}
RESPONSIBILITY = ("245", "c")  # statement of responsibility: names with role words (著, 編)
CNMARC_HEADINGS = {"200": ("title", {"a": "A", "f": "F"}), "225": ("title", {"a": "A"})}

JAPANESE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f]")
LATIN_QUALIFIER = re.compile(r"\s*\([^()\u3000-\u9fff\uff00-\uffef]*\)")
SCRIPT_GROUP = re.compile(r"^(\d)([123])$")


@dataclass(frozen=True)
class Heading:
    kind: str  # title, name, responsibility, other
    source: str  # file #record tag$code
    vernacular: str  # as libgate indexes it
    romanised: str  # the cataloger's
    reading: str | None = None  # the cataloger's kana, where given ($8 x2)


# --- ground truth -----------------------------------------------------------------------------


def read_records(path: Path) -> Iterator[tuple[int, MarcRecord]]:
    """Records decoded as the loader decodes them; a file that breaks ends where it breaks."""
    with path.open("rb") as handle:
        try:
            for chunk in frame_records(handle):
                try:
                    raw = parse_structure(chunk)
                    record, _ = charset.decode_record(
                        raw, charset.decide(raw, is_unimarc=path.suffix == ".iso")
                    )
                except Exception:  # damaged record: the malformed/ files are full of them
                    continue
                yield chunk.number, record
        except Exception:
            return


def clean(value: str, vernacular: bool) -> str:
    # NFC: LC records carry decomposed kana (mrrc #214's ヂ is チ + U+3099), which pykakasi,
    # janome and fugashi read as a bare チ; an indexer composes first, so the readers get NFC.
    text = unicodedata.normalize("NFC", tidy(value, word_spaced=vernacular))
    text = LATIN_QUALIFIER.sub("", text)
    return text.strip(" []/:;,.=").strip()


def pair_subfields(
    vernacular: Field, romanised: Field, codes: str | dict[str, str]
) -> Iterator[tuple[str, str, str]]:
    """(code, vernacular, romanised) for each pair of same-coded subfields, in order."""
    mapping = {c: c for c in codes} if isinstance(codes, str) else codes
    for code, roman_code in mapping.items():
        left = [v for c, v in vernacular.subfields if c == code]
        right = [v for c, v in romanised.subfields if c == roman_code]
        if len(left) == len(right):
            yield from ((code, a, b) for a, b in zip(left, right, strict=True))


def script_groups(record: MarcRecord) -> Iterator[tuple[Field, Field | None, Field]]:
    """(script, reading, romanisation) fields of each $8 script group (11/12/13)."""
    open_group: dict[str, Field] = {}
    for field in record.fields:
        match = SCRIPT_GROUP.match(field.get("8") or "")
        if not match:
            continue
        key = f"{field.tag}/{match.group(1)}"
        role = match.group(2)
        if role == "1":
            open_group = {key: field}
        elif key in open_group and role == "2":
            open_group[key + "r"] = field
        elif key in open_group and role == "3":
            yield open_group[key], open_group.get(key + "r"), field
            open_group = {}


def marc21_headings(path: Path) -> Iterator[Heading]:
    for number, record in read_records(path):
        if not is_japanese(record):
            continue
        where = f"{path.name} #{number}"
        pairs: list[tuple[Field, Field, Field | None]] = []
        for parallel in parallels(record, *MARC21_HEADINGS):
            if parallel.romanised is not None:
                pairs.append((parallel.field, parallel.romanised, None))
        for script, reading, romanised in script_groups(record):
            if script.tag in MARC21_HEADINGS:
                pairs.append((script, romanised, reading))
        for script, romanised, reading in pairs:
            kind, codes = MARC21_HEADINGS[script.tag]
            todo: list[tuple[str, str]] = [(kind, codes)]
            if script.tag == RESPONSIBILITY[0]:
                todo.append(("responsibility", RESPONSIBILITY[1]))
            for kind, codes in todo:
                for code, vern, roman in pair_subfields(script, romanised, codes):
                    kana = None
                    if reading is not None:
                        given = [v for c, v in reading.subfields if c == code]
                        kana = clean(given[0], vernacular=False) if given else None
                    yield Heading(
                        kind,
                        f"{where} {script.tag}${code}",
                        clean(vern, vernacular=True),
                        clean(roman, vernacular=False),
                        kana,
                    )


def cnmarc_headings(path: Path) -> Iterator[Heading]:
    for number, record in read_records(path):
        where = f"{path.name} #{number}"
        for field in record.fields:
            if field.tag in CNMARC_HEADINGS:
                kind, codes = CNMARC_HEADINGS[field.tag]
            elif field.tag.startswith("70"):
                kind, codes = "name", {"a": "A"}
            elif field.tag.startswith("71"):
                kind, codes = "other", {"a": "A"}
            else:
                continue
            for code, vern, roman in pair_subfields(field, field, codes):
                if field.tag == "200" and code == "f":
                    kind = "responsibility"
                yield Heading(
                    kind, f"{where} {field.tag}${code}", clean(vern, True), clean(roman, False)
                )


def ground_truth(use_shared: bool) -> list[Heading]:
    roots = [ROOT / "fixtures" / "marc"] + ([SHARED] if use_shared and SHARED.is_dir() else [])
    files = sorted(p for r in roots for p in r.rglob("*") if p.suffix in MARC_SUFFIXES)
    found: list[Heading] = []
    for path in files:
        found.extend(marc21_headings(path))
    found.extend(cnmarc_headings(JAPANESE_FIXTURE))
    unique: dict[tuple[str, str, str], Heading] = {}
    for heading in found:
        if not JAPANESE_SCRIPT.search(heading.vernacular) or JAPANESE_SCRIPT.search(
            heading.romanised
        ):
            continue  # a Latin title (Engineering), or an undecoded romanisation
        key = (heading.kind, heading.vernacular.replace(" ", ""), fold(heading.romanised))
        kept = unique.get(key)
        if kept is None or (kept.reading is None and heading.reading is not None):
            unique[key] = heading
    return list(unique.values())


# --- comparison form --------------------------------------------------------------------------

PARTICLES = {"wa": "ha", "e": "he"}  # LC writes は/へ as pronounced; kana keeps the spelling


def fold(romaji: str) -> str:
    text = unicodedata.normalize("NFKD", romaji.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"['\u2019\u02bc\u02bb]", "", text)
    words = [PARTICLES.get(w, w) for w in re.split(r"[^a-z0-9]+", text) if w]
    text = "".join(words)
    text = re.sub(r"m(?=[bpm])", "n", text)
    text = text.replace("ou", "o")
    text = re.sub(r"([aiueo])\1+", r"\1", text)
    return text.replace("wo", "o")


def katakana(text: str) -> str:
    """Kana in one script and width, with spaces and punctuation removed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(chr(ord(ch) + 0x60) if "\u3041" <= ch <= "\u3096" else ch for ch in text)
    return "".join(ch for ch in text if ch.isalnum() or ch == "ー")


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    name: str
    modules: tuple[str, ...]  # all must be importable
    distributions: tuple[str, ...]  # measured on disk with their dependencies
    ready: str  # Python that imports, builds and reads one title (timed in a subprocess)
    make: Callable[[], Callable[[str], str]]
    gives: str  # "kana" or "romaji"


def _analysed(tokens: Iterator[tuple[str, str | None]]) -> str:
    """Readings of the tokens that hold Japanese script; other text as written (sudachi reads
    `Osaka` as オオサカ and a space as キゴウ)."""
    return "".join(
        reading if reading and reading != "*" and JAPANESE_SCRIPT.search(surface) else surface
        for surface, reading in tokens
    )


def make_pykakasi() -> Callable[[str], str]:
    import pykakasi

    kks = pykakasi.kakasi()
    return lambda text: "".join(item["kana"] for item in kks.convert(text))


def make_fugashi() -> Callable[[str], str]:
    import fugashi

    tagger = fugashi.Tagger()
    return lambda text: _analysed((w.surface, w.feature.kana) for w in tagger(text))


def make_cutlet() -> Callable[[str], str]:
    import cutlet

    katsu = cutlet.Cutlet("hepburn")
    katsu.use_foreign_spelling = False  # エンヂニアリング is a reading, not "engineering"
    return lambda text: str(katsu.romaji(text))


def make_sudachi() -> Callable[[str], str]:
    from sudachipy import dictionary

    tokenizer = dictionary.Dictionary(dict="small").tokenizer()
    return lambda text: _analysed((m.surface(), m.reading_form()) for m in tokenizer.tokenize(text))


def make_janome() -> Callable[[str], str]:
    from janome.tokenizer import Tokenizer

    tokenizer = Tokenizer()
    return lambda text: _analysed((t.surface, t.reading) for t in tokenizer.tokenize(text))


SAMPLE = "金田一京助とアイヌ語"
CANDIDATES = [
    Candidate(
        "pykakasi",
        ("pykakasi",),
        ("pykakasi",),
        f"import pykakasi; pykakasi.kakasi().convert({SAMPLE!r})",
        make_pykakasi,
        "kana",
    ),
    Candidate(
        "fugashi + unidic-lite",
        ("fugashi", "unidic_lite"),
        ("fugashi", "unidic-lite"),
        f"import fugashi; [w.feature.kana for w in fugashi.Tagger()({SAMPLE!r})]",
        make_fugashi,
        "kana",
    ),
    Candidate(
        "cutlet (fugashi + unidic-lite)",
        ("cutlet", "unidic_lite"),
        ("cutlet", "unidic-lite"),
        f"import cutlet; cutlet.Cutlet('hepburn').romaji({SAMPLE!r})",
        make_cutlet,
        "romaji",
    ),
    Candidate(
        "sudachipy + sudachidict-small",
        ("sudachipy", "sudachidict_small"),
        ("sudachipy", "sudachidict-small"),
        "from sudachipy import dictionary; "
        f"[m.reading_form() for m in dictionary.Dictionary(dict='small').tokenizer().tokenize({SAMPLE!r})]",
        make_sudachi,
        "kana",
    ),
    Candidate(
        "janome",
        ("janome",),
        ("janome",),
        f"from janome.tokenizer import Tokenizer; list(Tokenizer().tokenize({SAMPLE!r}))",
        make_janome,
        "kana",
    ),
]


def installed(candidate: Candidate) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in candidate.modules)


def disk_bytes(names: tuple[str, ...]) -> int:
    """Installed size of the distributions and everything they require (extras left out)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(names)
    total = 0
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            located = Path(str(dist.locate_file(file)))
            if located.is_file():
                total += located.stat().st_size
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return total


# Peak RSS from VmHWM: ru_maxrss survives exec on Linux, so a child would report the parent's.
PROBE = (
    "import re, time\n"
    "t = time.perf_counter()\n"
    "{code}\n"
    "took = time.perf_counter() - t\n"
    "status = open('/proc/self/status').read()\n"
    "print(took, re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
)


def ready_cost(code: str, runs: int = 3) -> tuple[float, float]:
    """Seconds to import, build and read one title, and peak RSS in KiB: best of `runs`."""
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", PROBE.format(code=code)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        results.append((float(out[0]), float(out[1])))
    return min(r[0] for r in results), min(r[1] for r in results)


@dataclass
class Result:
    name: str
    answers: list[str]  # folded
    raw: list[str]
    kana: list[str | None]
    per_heading_us: float
    ready_s: float
    ready_mib: float
    disk_mib: float


def timing_corpus(size: int, seed: int = 13) -> list[str]:
    """Load-like input for the timings: Japanese titles and names as the CNMARC generator makes
    them (the 25 fixture headings are too few: pykakasi caches its dictionary look-ups)."""
    from generate_cnmarc import Generator

    generator = Generator(seed, "utf-8")
    return [generator.ja_title() if i % 2 else generator.ja_name() for i in range(size)]


def evaluate(
    candidate: Candidate, headings: list[Heading], corpus: list[str], repeat: int, base_kib: float
) -> Result:
    read = candidate.make()
    romanise = make_pykakasi_romaniser()
    raw = [read(h.vernacular) for h in headings]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for text in corpus:
            read(text)
        best = min(best, time.perf_counter() - start)
    if candidate.gives == "kana":
        answers = [fold(romanise(r)) for r in raw]
        kana: list[str | None] = [katakana(r) for r in raw]
    else:
        answers = [fold(r) for r in raw]
        kana = [None for _ in raw]
    ready_s, ready_kib = ready_cost(candidate.ready)
    return Result(
        candidate.name,
        answers,
        raw,
        kana,
        best / len(corpus) * 1e6,
        ready_s,
        max(0.0, ready_kib - base_kib) / 1024,
        disk_bytes(candidate.distributions) / 2**20,
    )


def make_pykakasi_romaniser() -> Callable[[str], str]:
    """Kana to Hepburn by pykakasi's kana table (no dictionary choice is involved for kana)."""
    import pykakasi

    kks = pykakasi.kakasi()
    return lambda text: " ".join(item["hepburn"] for item in kks.convert(text))


# --- report -----------------------------------------------------------------------------------


def report(headings: list[Heading], results: list[Result]) -> None:
    truths = [fold(h.romanised) for h in headings]
    kinds = sorted(
        {h.kind for h in headings}, key=["title", "name", "responsibility", "other"].index
    )
    counts = ", ".join(f"{sum(h.kind == k for h in headings)} {k}" for k in kinds)
    with_kana = [i for i, h in enumerate(headings) if h.reading]
    print(
        f"{len(headings)} headings ({counts}); {len(with_kana)} with a cataloger's kana reading\n"
    )
    columns = ["candidate", "exact (all)"]
    columns += [f"exact ({k})" for k in kinds]
    columns += ["CER", "kana exact", "µs/heading (= s per 1M)", "import+ready s", "RSS MiB"]
    columns += ["disk MiB"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in results:
        right = [a == t for a, t in zip(r.answers, truths, strict=True)]
        cells = [r.name, f"{sum(right)}/{len(right)} ({sum(right) / len(right):.0%})"]
        for k in kinds:
            idx = [i for i, h in enumerate(headings) if h.kind == k]
            cells.append(f"{sum(right[i] for i in idx)}/{len(idx)}")
        edits = sum(edit_distance(a, t) for a, t in zip(r.answers, truths, strict=True))
        cells.append(f"{edits / sum(len(t) for t in truths):.1%}")
        if r.kana[0] is None:
            cells.append("—")
        else:
            ok = sum(r.kana[i] == katakana(headings[i].reading or "") for i in with_kana)
            cells.append(f"{ok}/{len(with_kana)}")
        cells += [
            f"{r.per_heading_us:.0f}",
            f"{r.ready_s:.2f}",
            f"{r.ready_mib:.0f}",
            f"{r.disk_mib:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    for r in results:
        wrong = [i for i, (a, t) in enumerate(zip(r.answers, truths, strict=True)) if a != t]
        print(f"\n### {r.name}: {len(wrong)} wrong (first 30)\n")
        print("| heading | cataloger | candidate (folded) | candidate (as given) |")
        print("|---|---|---|---|")
        for i in wrong[:30]:
            h = headings[i]
            print(f"| {h.vernacular} ({h.kind}) | {h.romanised} | {r.answers[i]} | {r.raw[i]} |")
    print("\n### ground truth\n")
    print("| kind | vernacular | cataloger's romanisation | folded | kana | source |")
    print("|---|---|---|---|---|---|")
    for h, t in zip(headings, truths, strict=True):
        print(
            f"| {h.kind} | {h.vernacular} | {h.romanised} | {t} | {h.reading or ''} | {h.source} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timing", type=int, default=5000, help="headings in the timed corpus")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (best is kept)")
    parser.add_argument("--no-shared", action="store_true", help="fixtures/ only")
    args = parser.parse_args()
    headings = ground_truth(use_shared=not args.no_shared)
    corpus = timing_corpus(args.timing)
    base_kib = ready_cost("pass")[1]
    results = []
    for candidate in CANDIDATES:
        if not installed(candidate):
            print(f"(skipped {candidate.name}: not installed)", file=sys.stderr)
            continue
        results.append(evaluate(candidate, headings, corpus, args.repeat, base_kib))
    report(headings, results)


if __name__ == "__main__":
    main()
