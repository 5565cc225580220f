"""Character set per record, decided by what the record declares and confirmed by the bytes.

CNMARC/UNIMARC declare their character set in 100$a/26-29, not in leader/09 (undefined in
UNIMARC; pymarc reads it as MARC21 does and silently decodes UTF-8 or GBK as MARC-8). MARC21
declares it in leader/09 (`a` = UCS, blank = MARC-8). Declarations lie in real files, so every
decision is confirmed by a strict decode; the report shows what was used and any mismatch.
"""

from __future__ import annotations

import codecs
import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass

from pymarc.marc8 import MARC8ToUnicode

from marc.errors import (
    CHARSET_MISMATCH,
    DOUBLE_ENCODED,
    MARC8_DAMAGED,
    RecordRejected,
    RecordWarning,
)
from marc.iso2709 import RawRecord
from marc.record import Field, MarcRecord, is_control_tag

MARC8 = "marc-8"
UTF8 = "utf-8"
GB18030 = "gb18030"
EACC = 0x31  # pymarc's G0 value for EACC, MARC-8's set of Chinese, Japanese, Korean characters

# UNIMARC 100$a/26-27 (G0 set) values we can act on. `10` is GB 2312 in CNMARC practice (dp2's
# code list); `20`/`21` appear in real BNU exports for the GB family. Everything GB is decoded
# as GB18030, the superset: GBK misses 4-byte sequences such as 〜 (U+301C).
UNIMARC_CHARSETS: dict[str, str] = {
    "50": UTF8,
    "10": GB18030,
    "11": GB18030,
    "20": GB18030,
    "21": GB18030,
    "01": UTF8,  # ISO 646 IRV is ASCII; confirmed by strict decoding like the rest
}

# Names accepted by --encoding besides any codec Python knows.
ENCODING_ALIASES = {"marc8": MARC8, "marc-8": MARC8, "gbk": GB18030, "gb2312": GB18030}


def normalise_encoding_name(name: str) -> str:
    """Canonical codec name for --encoding, or ValueError naming the bad value."""
    lowered = name.strip().lower()
    if lowered in ("auto", ""):
        return "auto"
    if lowered in ENCODING_ALIASES:
        return ENCODING_ALIASES[lowered]
    try:
        return codecs.lookup(lowered).name.replace("_", "-")
    except LookupError:
        raise ValueError(f"unknown character encoding {name!r}") from None


@dataclass(frozen=True, slots=True)
class Decision:
    encoding: str  # what the record was decoded with (report key)
    declared: str  # what the record said, e.g. "100$a/26-29=0120", "leader/09=a"
    note: str | None = None  # set when the bytes disagreed with the declaration

    def warning(self) -> RecordWarning | None:
        """The wrong declaration as a record warning (None when the bytes agreed)."""
        if self.note is None:
            return None
        where = "100" if self.declared.startswith("100$a") else "leader"
        return RecordWarning(CHARSET_MISMATCH, self.note, where)


def unimarc_charset_code(raw: RawRecord) -> str | None:
    """100$a/26-29 as text, read from the raw bytes (the positions are ASCII by definition)."""
    for tag, content in raw.entries:
        if tag == "100":
            position = content.find(b"\x1fa")
            if position < 0:
                return None
            data = content[position + 2 :].split(b"\x1f", 1)[0]
            code = data[26:30].decode("latin-1")
            return code if len(code) >= 2 else None
    return None


def _declared_unimarc_charset(code: str) -> str | None:
    """The decoder 100$a/26-29 asks for: the G0 set at 26-27, unless it is plain ASCII (`01`),
    in which case the G1 set at 28-29 (`0120` = ASCII + the GB family) decides."""
    cleaned = code.replace("#", " ").replace("-", " ")
    g0, g1 = cleaned[:2], cleaned[2:4]
    if g0 == "01" and g1.strip():
        return UNIMARC_CHARSETS.get(g1) or UNIMARC_CHARSETS.get(g0)
    return UNIMARC_CHARSETS.get(g0)


def unimarc_by_content(tags: set[str], coded_100a: str | None) -> bool:
    """UNIMARC/CNMARC vs MARC21 from content, in order of evidence: a 245 is MARC21; a 100$a
    that opens with an 8-digit date (and its type) is UNIMARC, even with an 008 (Taiwanese
    CMARC records carry one; a MARC21 100$a is a name); else an 008 is MARC21 and a 200 is
    UNIMARC."""
    if "245" in tags:
        return False
    head = (coded_100a or "")[:9]
    if len(head) == 9 and head[:8].isdigit():
        return True
    if "008" in tags:
        return False
    return "200" in tags


def looks_unimarc(raw: RawRecord) -> bool:
    """`unimarc_by_content` on the raw bytes (100$a/0-8 are ASCII by definition)."""
    tags = {tag for tag, _ in raw.entries}
    coded: str | None = None
    for tag, content in raw.entries:
        if tag == "100":
            position = content.find(b"\x1fa")
            head = content[position + 2 : position + 11] if position >= 0 else b""
            coded = head.decode("latin-1")
            break
    return unimarc_by_content(tags, coded)


def _body(raw: RawRecord) -> bytes:
    return b"".join(content for _, content in raw.entries)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def decide(raw: RawRecord, is_unimarc: bool, override: str = "auto") -> Decision:
    body = _body(raw)
    if override != "auto":
        return Decision(override, "--encoding")
    if is_unimarc:
        code = unimarc_charset_code(raw)
        declared = f"100$a/26-29={code!r}" if code is not None else "100$a/26-29 missing"
        wanted = _declared_unimarc_charset(code or "")
        if body.isascii():
            return Decision(wanted or UTF8, declared)
        if wanted and _decodes(body, wanted):
            # GB18030 decodes most byte soup; prefer UTF-8 when the record is valid UTF-8.
            if wanted == GB18030 and _decodes(body, UTF8):
                return Decision(UTF8, declared, f"declared {code!r} but the bytes are UTF-8")
            return Decision(wanted, declared)
        for candidate in (UTF8, GB18030):
            if candidate != wanted and _decodes(body, candidate):
                return Decision(
                    candidate, declared, f"declared {code!r} but the bytes are {candidate}"
                )
        raise RecordRejected(
            f"cannot tell the character set: {declared}, and the bytes are neither valid"
            " UTF-8 nor GB18030; load the file with --encoding NAME (e.g. cp1251)",
            "100",
        )
    leader09 = raw.leader[9] if len(raw.leader) > 9 else " "
    declared = f"leader/09={leader09!r}"
    if leader09 == "a":
        if _decodes(body, UTF8):
            return Decision(UTF8, declared)
        reason, tag = _first_bad_utf8(raw, "leader/09 says UTF-8")
        raise RecordRejected(reason, tag)
    if body.isascii() and b"\x1b" not in body:
        return Decision(MARC8, declared)
    if b"\x1b" not in body and _decodes(body, UTF8):
        return Decision(UTF8, declared, "declared MARC-8 but the bytes are UTF-8")
    return Decision(MARC8, declared)


def _first_bad_utf8(raw: RawRecord, context: str) -> tuple[str, str | None]:
    """Why the record is not UTF-8, and the first field that is not."""
    for tag, content in raw.entries:
        try:
            content.decode(UTF8)
        except UnicodeDecodeError as error:
            return f"{context} but field {tag} has invalid UTF-8 at byte {error.start}", tag
    return f"{context} but the record is not valid UTF-8", None


def _double_encoded(text: str) -> str | None:
    """UTF-8 that was read as Latin-1 and encoded again (real Romanian UNIMARC), repaired."""
    if not any("\u00c2" <= ch <= "\u00f4" for ch in text):
        return None
    try:
        repaired = text.encode("latin-1").decode(UTF8)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return repaired if repaired != text else None


def decode_record(raw: RawRecord, decision: Decision) -> tuple[MarcRecord, list[RecordWarning]]:
    """Decode every field; returns the record and warnings about damage found and repaired."""
    encoding = decision.encoding
    marc8 = MARC8ToUnicode(quiet=False) if encoding == MARC8 else None
    notes: list[RecordWarning] = []
    marc8_lost: dict[str, list[str]] = {}  # pymarc's complaints about each tag's fields
    fields: list[Field] = []
    indicator_count = raw.indicator_count
    repaired_fields = 0
    # Only UNIMARC records that did not claim Unicode are candidates for the repair.
    repairable = (
        encoding == UTF8
        and decision.declared.startswith("100$a")
        and "'50" not in decision.declared
    )
    for tag, content in raw.entries:
        if is_control_tag(tag):
            value = _decode_bytes(content, encoding, marc8, tag, marc8_lost)
            fields.append(Field(tag=tag, value=value))
            continue
        indicators = content[:indicator_count].decode("latin-1")
        parts = content[indicator_count:].split(b"\x1f")
        subfields: list[tuple[str, str]] = []
        for part in parts[1:]:
            if not part:
                continue
            if part[0] >= 0x80 or part[0] < 0x20:
                raise RecordRejected(
                    f"field {tag} has a subfield code that is not a letter or digit"
                    f" (byte 0x{part[0]:02X})",
                    tag,
                )
            code = chr(part[0])
            value = _decode_bytes(part[1:], encoding, marc8, tag, marc8_lost)
            if repairable:
                fixed = _double_encoded(value)
                if fixed is not None:
                    value = fixed
                    repaired_fields += 1
            subfields.append((code, value))
        fields.append(Field(tag=tag, indicators=indicators, subfields=subfields))
    if repaired_fields:
        notes.append(
            RecordWarning(
                DOUBLE_ENCODED,
                f"{repaired_fields} subfields were double-encoded UTF-8 and were repaired",
            )
        )
    for tag, lost in marc8_lost.items():
        notes.append(RecordWarning(MARC8_DAMAGED, _marc8_damage(tag, lost), tag))
    return MarcRecord(leader=raw.leader, fields=fields), notes


def _decode_bytes(
    data: bytes,
    encoding: str,
    marc8: MARC8ToUnicode | None,
    tag: str,
    marc8_lost: dict[str, list[str]],
) -> str:
    if marc8 is not None:
        if data.isascii() and b"\x1b" not in data:
            return data.decode("ascii")
        # pymarc reports damaged MARC-8 on stderr, one line per character it could not read
        # (and puts a space in its place); we count them into one warning per tag.
        complaints = io.StringIO()
        try:
            # pymarc's converter is untyped; this is the type it has.
            translate: Callable[[bytes], str] = marc8.translate
            with contextlib.redirect_stderr(complaints):
                text = translate(data)
        except Exception:  # pymarc fails with bare Python errors on broken escape sequences
            raise RecordRejected(
                f"field {tag}: the MARC-8 text is broken (an escape sequence or a CJK"
                " character is cut off), so it cannot be read; correct the record in the"
                " source system or export it as UTF-8",
                tag,
            ) from None
        lost = complaints.getvalue().splitlines()
        if lost:
            marc8_lost.setdefault(tag, []).extend(lost)
        return text
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise RecordRejected(
            f"field {tag} is not valid {encoding} at byte {error.start}", tag
        ) from None


def _marc8_damage(tag: str, complaints: list[str]) -> str:
    """pymarc's complaints about one field, in a cataloger's words."""
    count = len(complaints)
    cjk = any("Multi-byte" in line or f"g0={EACC}" in line for line in complaints)
    characters = "character" if count == 1 else "characters"
    kind = " CJK (EACC)" if cjk else ""
    return f"field {tag}: {count} MARC-8{kind} {characters} could not be read and became spaces"
