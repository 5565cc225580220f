"""What a load tells the cataloger about the problems it met: each warning kind in words, with
what to do about it, and each reject named so the record can be found in the file.

Warnings are counted by kind (`marc.errors` codes) and field, so a file with 120 copies
without a barcode says so once, with the fix, and shows the first few records. A reject names
the record's number and place in the file, its 001, its title and the format it was read as.
The words live here, one table, so the terminal and the JSON report say the same thing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from marc.errors import (
    BARCODE_IMPLAUSIBLE,
    BASE_ADDRESS,
    CHARSET_MISMATCH,
    COPIES_IN_OTHER_PROFILE,
    COPY_WITHOUT_BARCODE,
    DIRECTORY_LENGTHS,
    DIRECTORY_RECOVERED,
    DOUBLE_ENCODED,
    LEADER_BYTES,
    MARC8_DAMAGED,
    RECORD_LENGTH,
    RecordWarning,
)

EXAMPLES_PER_KIND = 3  # records shown under each warning kind
TITLE_SHOWN = 40  # characters of a title on the terminal
FORMAT_NAMES = {"unimarc": "UNIMARC/CNMARC", "marc21": "MARC 21"}


@dataclass(frozen=True)
class WarningKind:
    """How one kind of warning is told: `problem` ({field}: the tag at fault; {where}: where a
    character set was declared) and `fix`, what to do ({profile}: the file's profile)."""

    problem: str
    fix: str


# Warnings of the load itself (gateway/catalogue/loading/batch.py, copy_words.py), not of a
# record's bytes.
DUPLICATE_001 = "duplicate_001"
DUPLICATE_001_REPLACED = "duplicate_001_replaced"
UNKNOWN_COPY_STATUS = "unknown_copy_status"
CIRCULATION_STATUS = "circulation_status"
UNKNOWN_ITEM_TYPE = "unknown_item_type"

WARNING_KINDS: dict[str, WarningKind] = {
    LEADER_BYTES: WarningKind(
        "the leader has non-ASCII or control bytes",
        "they were kept as read; check these records in the system that exported them",
    ),
    RECORD_LENGTH: WarningKind(
        "the leader's record length (leader/00-04) is wrong",
        "nothing to do: records are split on their terminators (the exporting system"
        " probably counted characters, not bytes)",
    ),
    BASE_ADDRESS: WarningKind(
        "the leader's base address (leader/12-16) was wrong and was corrected",
        "nothing to do: the directory's real end was used",
    ),
    DIRECTORY_LENGTHS: WarningKind(
        "the directory's field lengths count characters, not bytes",
        "nothing to do: fields were read up to their terminators",
    ),
    DIRECTORY_RECOVERED: WarningKind(
        "the directory's offsets or lengths are wrong",
        "fields were recovered from their terminators; check these records' fields",
    ),
    CHARSET_MISMATCH: WarningKind(
        "the character set declared in {where} was wrong",
        "the records were read as what their bytes are (each record says which); to read"
        " the whole file one way, load it with --encoding NAME",
    ),
    MARC8_DAMAGED: WarningKind(
        "{field} has MARC-8 characters that could not be read (they became spaces)",
        "correct these records in the source system, or ask for a UTF-8 export",
    ),
    DOUBLE_ENCODED: WarningKind(
        "text was UTF-8 encoded twice",
        "nothing to do: it was repaired; ask the source for a clean export",
    ),
    COPY_WITHOUT_BARCODE: WarningKind(
        "{field} has no barcode",
        "those copies were skipped; if the file comes from another system, load it with"
        " that system's holdings profile (--profile NAME)",
    ),
    BARCODE_IMPLAUSIBLE: WarningKind(
        "{field} gives barcodes without a digit",
        "those copies were not made; is --profile {profile} right for this file? if its"
        " {field} is not about copies, load it with --profile none (copies can come from"
        " `libgate items import`)",
    ),
    COPIES_IN_OTHER_PROFILE: WarningKind(
        "copies in {field} that profile {profile} does not read",
        "those copies were not loaded",
    ),
    DUPLICATE_001: WarningKind(
        "a 001 that an earlier record of the file has",
        "the later record was rejected (in --rejects); to let it replace the earlier one,"
        " load with --on-duplicate last",
    ),
    DUPLICATE_001_REPLACED: WarningKind(
        "a 001 that an earlier record of the file has",
        "the later record replaced the earlier one (--on-duplicate last)",
    ),
    UNKNOWN_COPY_STATUS: WarningKind(
        "copies in {field} with a status word the library does not use",
        "those copies are not available until they have one of ours: map the word in the"
        " profile's status_map or in [circulation] status_synonyms, and load again",
    ),
    CIRCULATION_STATUS: WarningKind(
        "copies in {field} that say they are on loan or on the hold shelf",
        "no loan or hold of ours is behind them: check them in at the desk when they are back"
        " on the shelf",
    ),
    UNKNOWN_ITEM_TYPE: WarningKind(
        "copies in {field} with an item type the library does not define",
        "no [[item_types]] rule applies to them: add the type, or map it in its [[item_types]]"
        " synonyms, and load again",
    ),
}

DECLARED_WHERE = {"100": "100$a/26-29", "leader": "leader/09"}


@dataclass
class WarningGroup:
    """The warnings of one kind on one field, in one file."""

    code: str
    tag: str | None  # the field at fault
    warnings: int = 0
    records: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    suggestions: Counter[str] = field(default_factory=Counter)
    last_record: int = 0

    def add(self, record: int, warning: RecordWarning, example: dict[str, Any]) -> None:
        self.warnings += 1
        if record != self.last_record:
            self.records += 1
            self.last_record = record
            if len(self.examples) < EXAMPLES_PER_KIND:
                self.examples.append(example)
        if warning.suggestion:
            self.suggestions[warning.suggestion] += 1


def source_label(description: str) -> str:
    """A profile description's opening words, which name its source ("Beijing Normal
    University (Aleph) CNMARC: one 906 per copy, ..." → "Beijing Normal University (Aleph)
    CNMARC"); "" when they do not stand alone."""
    head = description.split(":", 1)[0].strip()
    if head == description.strip() or head.count("(") != head.count(")"):
        return ""
    return head


def problem_and_fix(
    group: WarningGroup,
    profile: str,
    suggestion: str | None,
    labels: dict[str, str],
) -> tuple[str, str]:
    """The words for a group: what is wrong, and what to do. `suggestion` is the option the
    file's records point to (e.g. "--profile bnu"), from any kind; `labels` name profiles'
    sources."""
    kind = WARNING_KINDS.get(group.code, WarningKind(group.code.replace("_", " "), ""))
    where = DECLARED_WHERE.get(group.tag or "", group.tag or "")
    problem = kind.problem.format(field=group.tag or "a field", where=where, profile=profile)
    fix = kind.fix.format(field=group.tag or "a field", profile=profile)
    if suggestion and group.code in (COPY_WITHOUT_BARCODE, COPIES_IN_OTHER_PROFILE):
        name = suggestion.removeprefix("--profile ").strip()
        label = labels.get(name)
        source = f"a {label} file" if label else f"a file for profile {name}"
        fix = f"is this {source}? try `{suggestion}`"
    return problem, fix


def record_label(
    record: int,
    offset: int | None = None,
    line: int | None = None,
    control_number: str | None = None,
    title: str | None = None,
    record_format: str | None = None,
) -> str:
    """ "record 17 at byte 5120 (001 ocm123, 《Title》, read as MARC 21)": enough to find it."""
    where = f" at byte {offset}" if offset is not None else f" at line {line}" if line else ""
    known = []
    if control_number:
        known.append(f"001 {control_number}")
    if title:
        shown = title if len(title) <= TITLE_SHOWN else title[: TITLE_SHOWN - 1] + "…"
        known.append(f"《{shown}》")
    if record_format:
        known.append(f"read as {FORMAT_NAMES.get(record_format, record_format)}")
    return f"record {record}{where}" + (f" ({', '.join(known)})" if known else "")


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
