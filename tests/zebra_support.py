"""A real Zebra (Debian idzebra-2.0) as a partner's Z39.50 target for the union clients: CNMARC
records indexed with UNIMARC rules of our own (Zebra ships MARC 21 rules only; the same rules,
more fully, are bench/load_bench.py's), served on a TCP port until the block ends.

A legacy Chinese target is one in GBK: its records are GBK ISO 2709 and it reads query terms
as GBK. Zebra does both with one word in two places: the `.abs` `encoding` is the charset of the
record files it indexes (converted to UTF-8 for its ICU index; the stored record goes back to
clients byte for byte, so still GBK), and zebra.cfg's `encoding` is the charset "of the terms
in Z39.50 queries" (Zebra's zebra.cfg documentation), converted the same way before lookup."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ZEBRA = shutil.which("zebrasrv") and shutil.which("zebraidx")
ZEBRA_TAB = Path("/usr/share/idzebra-2.0/tab")
ZEBRA_MODULES = Path("/usr/lib/x86_64-linux-gnu/idzebra-2.0/modules")
START_SECONDS = 30

UNIMARC_ABS = """\
name unimarc
attset bib1.att
esetname F @
esetname B @
marc unimarc.mar
encoding {encoding}
xpath disable
all any
melm 001        Local-number:0
melm 010$a      ISBN:w
melm 010        -
melm 100        -
melm 200$a      Title,Title:p
melm 200$f      Author
melm 200        Title
melm 210$c      Publisher
melm 210$d      Date-of-publication
melm 210        -
melm 606        Subject-heading
melm 701$a      Author,Author:p
melm 701        -
"""

# Zebra's shipped ICU chains (icu.idx: words-icu.xml, phrases-icu.xml) with traditional Chinese
# folded to simplified first, as many Chinese OPACs index: 發展 finds 发展.
FOLDING_IDX = """\
index w
completeness 0
position 1
alwaysmatches 1
firstinfield 1
icuchain words-folded.xml

index p
completeness 1
icuchain phrases-folded.xml

sort s
completeness 1
charmap string.chr
"""
WORDS_FOLDED = """\
<icu_chain locale="zh">
  <transform rule="[:Control:] Any-Remove"/>
  <transform rule="Traditional-Simplified"/>
  <tokenize rule="l"/>
  <transform rule="[[:WhiteSpace:][:Punctuation:]] Remove"/>
  <display/>
  <casemap rule="l"/>
</icu_chain>
"""
PHRASES_FOLDED = """\
<icu_chain locale="zh">
  <transform rule="[:Control:] Any-Remove"/>
  <transform rule="Traditional-Simplified"/>
  <transform rule="[:Punctuation:] Remove"/>
  <display/>
  <casemap rule="l"/>
</icu_chain>
"""


@contextmanager
def running_zebra(
    home: Path,
    records: list[Path],
    port: int,
    *,
    encoding: str = "utf-8",
    fold_variants: bool = False,
) -> Iterator[int]:
    """Index `records` (ISO 2709, UNIMARC) into a Zebra database `Default` under `home` and
    serve it on 127.0.0.1:`port`; stops it (by its pid) when the block ends.

    `encoding` is the target's charset: the records' (the files must be in it) and the query
    terms' (`gbk` makes a legacy GBK target). `fold_variants` folds traditional Chinese to
    simplified in the index and in query terms."""
    for name in ("reg", "lock", "tmp"):
        (home / name).mkdir()
    (home / "unimarc.abs").write_text(UNIMARC_ABS.format(encoding=encoding), encoding="utf-8")
    index = "icu.idx"  # the shipped ICU chain: CJK words split as readers type
    if fold_variants:
        index = "folding.idx"
        (home / index).write_text(FOLDING_IDX, encoding="utf-8")
        (home / "words-folded.xml").write_text(WORDS_FOLDED, encoding="utf-8")
        (home / "phrases-folded.xml").write_text(PHRASES_FOLDED, encoding="utf-8")
    (home / "unimarc.mar").write_text("name unimarc\nreference UNIMARC\n", encoding="utf-8")
    config = home / "zebra.cfg"
    config.write_text(
        "\n".join(
            [
                f"profilePath: {home}:{ZEBRA_TAB}",
                f"modulePath: {ZEBRA_MODULES}",
                "attset: bib1.att",
                "attset: explain.att",
                "recordType: grs.marcxml.unimarc",
                f"encoding: {encoding}",  # the query terms' charset
                f"index: {index}",
                f"register: {home / 'reg'}:1G",
                f"lockDir: {home / 'lock'}",
                f"setTmpDir: {home / 'tmp'}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    for command in (["init"], ["update", *map(str, records)], ["commit"]):
        subprocess.run(
            ["zebraidx", "-c", str(config), "-l", str(home / "index.log"), *command],
            cwd=home,
            check=True,
            timeout=120,
        )
    server = subprocess.Popen(
        ["zebrasrv", "-c", str(config), "-l", str(home / "server.log"), f"tcp:127.0.0.1:{port}"],
        cwd=home,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "server.log").read_text()) from None
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
