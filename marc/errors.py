"""What is wrong with a record, in words a cataloger understands: a reject (the record cannot
be loaded) or a warning (it was loaded, but something in it was wrong or was repaired).

Both name the field at fault when there is one. A warning also carries a stable `code`, so a
load can count warnings by kind and say once what to do about each kind (the loader's
`messages` module holds those words); the codes are listed in the README and never change
meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

# Warning codes. Structure (ISO 2709):
LEADER_BYTES = "leader_bytes"  # non-ASCII or control bytes in the leader, kept as read
RECORD_LENGTH = "record_length"  # leader/00-04 is not the record's length
BASE_ADDRESS = "base_address"  # leader/12-16 corrected to where the directory really ends
DIRECTORY_LENGTHS = "directory_lengths"  # field lengths counted in characters, not bytes
DIRECTORY_RECOVERED = "directory_recovered"  # offsets wrong; fields split on terminators
# Character set:
CHARSET_MISMATCH = "charset_mismatch"  # the declared character set was wrong; bytes decided
MARC8_DAMAGED = "marc8_damaged"  # MARC-8 characters that could not be read became spaces
DOUBLE_ENCODED = "double_encoded"  # UTF-8 encoded twice, repaired
# Copies (holdings profile):
COPY_WITHOUT_BARCODE = "copy_without_barcode"  # an item field with no barcode: copy skipped
BARCODE_IMPLAUSIBLE = "barcode_implausible"  # a "barcode" with no digit in it
COPIES_IN_OTHER_PROFILE = "copies_in_other_profile"  # another profile would find copies

WARNING_CODES = (
    LEADER_BYTES,
    RECORD_LENGTH,
    BASE_ADDRESS,
    DIRECTORY_LENGTHS,
    DIRECTORY_RECOVERED,
    CHARSET_MISMATCH,
    MARC8_DAMAGED,
    DOUBLE_ENCODED,
    COPY_WITHOUT_BARCODE,
    BARCODE_IMPLAUSIBLE,
    COPIES_IN_OTHER_PROFILE,
)


@dataclass(frozen=True, slots=True)
class RecordWarning:
    """Something wrong with a record that was loaded anyway.

    `field`: the tag at fault ("995", "leader"), or None. `suggestion`: a `libgate load` option
    that the evidence in the record says would fix it (e.g. "--profile bnu"), or None.
    """

    code: str
    message: str
    field: str | None = None
    suggestion: str | None = None


class RecordRejected(Exception):
    """A record that cannot be loaded. `reason` is shown in the report and the rejects log;
    `field` names the tag at fault ("245", "leader", "directory"), or None."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
