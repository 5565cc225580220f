"""Reading the CSV files staff hand to libgate (copies, readers): the text's encoding, a header
row that must contain the contract's columns (extra columns allowed), and each row with its
line number so a bad row can be reported where it is.

Encodings: a CSV comes from Excel more often than not. "CSV UTF-8" is UTF-8 with a BOM; plain
"CSV" on a Chinese Windows is the ANSI code page, GBK, read here as GB18030 (its superset).
UTF-8 is tried first: GBK text is almost never valid UTF-8, while UTF-8 text often decodes as
GB18030 (into nonsense). GB18030 is then accepted only when the text looks like GB text: no
private-use or control characters, and at least half its non-ASCII characters from GB2312
(the common hanzi, where Chinese text lives). That refuses Shift-JIS and Latin-1 files, which
decode as rare hanzi; Big5 and EUC-JP cannot be told from GB18030 by their bytes alone (the
report names the encoding that was used). Anything else is refused with what to do.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

UTF8, UTF8_BOM, GB18030 = "utf-8", "utf-8 (BOM)", "gb18030"
GB18030_BOM = b"\x84\x31\x95\x33"
# A GB18030 reading is believed when at least this share of its non-ASCII characters are
# GB2312 two-byte characters (both bytes 0xA1-0xFE).
GB2312_SHARE = 0.5
SAVE_AS_UTF8 = "save it from Excel as 'CSV UTF-8 (comma delimited)'"
# Control characters no CSV text has (tab, CR and LF are text).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
NOT_ASCII = re.compile(r"[^\x00-\x7f]")
WORKBOOKS = {b"PK\x03\x04": ".xlsx", b"\xd0\xcf\x11\xe0": ".xls"}  # their first bytes


class CsvFileError(Exception):
    """The file as a whole cannot be read (unreadable, unknown encoding, header lacks
    columns)."""


@dataclass(frozen=True)
class CsvRows:
    """A CSV file's data rows as {column: value} (header names lower-cased, values stripped),
    each with the line it starts on, and the encoding the file was read in."""

    encoding: str
    rows: list[tuple[int, dict[str, str]]]


def read_rows(path: Path, required: tuple[str, ...]) -> CsvRows:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CsvFileError(f"{path}: cannot read: {error.strerror or error}") from None
    text, encoding = decode_csv(data, str(path))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise CsvFileError(
                f"{path}: the header row lacks {', '.join(missing)}; expected {','.join(required)}"
            )
        rows = []
        ended = reader.line_num
        for cells in reader:
            line, ended = ended + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, or the empty rows (",,,,") Excel leaves below a table
            values = {name: cell.strip() for name, cell in zip(header, cells, strict=False)}
            rows.append((line, {name: values.get(name, "") for name in header if name}))
    except csv.Error as error:  # a quote that never closes, and the like
        raise CsvFileError(f"{path}:{reader.line_num}: not CSV: {error}") from None
    return CsvRows(encoding, rows)


def decode_csv(data: bytes, where: str) -> tuple[str, str]:
    """The file's text and the encoding it was read in (UTF8, UTF8_BOM or GB18030); raises
    `CsvFileError` naming what the bytes are not and how to save them."""
    for magic, kind in WORKBOOKS.items():
        if data.startswith(magic):
            raise CsvFileError(f"{where}: an Excel workbook ({kind}), not CSV; {SAVE_AS_UTF8}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvFileError(
            f"{where}: UTF-16 text (Excel's 'Unicode Text'), not CSV; {SAVE_AS_UTF8}"
        )
    if data.startswith(codecs.BOM_UTF8):
        try:
            return _text(data[len(codecs.BOM_UTF8) :].decode("utf-8"), where), UTF8_BOM
        except UnicodeDecodeError as error:
            raise CsvFileError(_broken_utf8(data, error, where)) from None
    try:
        return _text(data.decode("utf-8"), where), UTF8
    except UnicodeDecodeError as error:
        utf8_error = error
    replaced = data.decode("utf-8", errors="replace")
    bad = replaced.count("\ufffd")
    good = sum(1 for ch in replaced if ord(ch) > 0x7F) - bad
    if good > 2 * bad:
        # Mostly good UTF-8 with a few bad bytes: a damaged or pasted-together file, not GBK.
        raise CsvFileError(_broken_utf8(data, utf8_error, where))
    body = data[len(GB18030_BOM) :] if data.startswith(GB18030_BOM) else data
    try:
        text = body.decode("gb18030")
    except UnicodeDecodeError as error:
        raise CsvFileError(
            f"{where}: neither UTF-8 nor GB18030/GBK (byte 0x{body[error.start]:02X} at line"
            f" {_line_of(body, error.start)} is not text in either); {SAVE_AS_UTF8}"
        ) from None
    strange = _unlike_gb_text(text)
    if strange:
        raise CsvFileError(
            f"{where}: neither UTF-8 nor GB18030/GBK text (read as GB18030 it gives {strange};"
            f" is it Shift-JIS, Big5 or Latin-1?); {SAVE_AS_UTF8}"
        )
    return _text(text, where), GB18030


def _text(text: str, where: str) -> str:
    """`text`, unless it holds control characters (a binary file that happens to decode)."""
    control = CONTROL.search(text)
    if control:
        raise CsvFileError(
            f"{where}: not text: the control character U+{ord(control.group()):04X} at line"
            f" {text.count(chr(10), 0, control.start()) + 1}; {SAVE_AS_UTF8}"
        )
    return text


def _broken_utf8(data: bytes, error: UnicodeDecodeError, where: str) -> str:
    return (
        f"{where}: UTF-8 text with bytes that are not UTF-8 (byte 0x{data[error.start]:02X} at"
        f" line {_line_of(data, error.start)}): the file was damaged or pasted together from"
        f" files in different encodings; {SAVE_AS_UTF8}"
    )


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _unlike_gb_text(text: str) -> str:
    """Why `text`, decoded as GB18030, is not believable GB text; "" when it is."""
    wide = 0
    common = 0
    for ch in NOT_ASCII.findall(text):
        category = unicodedata.category(ch)
        if category in ("Co", "Cn"):
            return f"the {'private-use' if category == 'Co' else 'unassigned'} U+{ord(ch):04X}"
        wide += 1
        encoded = ch.encode("gb18030")
        if len(encoded) == 2 and encoded[0] >= 0xA1 and encoded[1] >= 0xA1:
            common += 1
    if wide and common < GB2312_SHARE * wide:
        return f"rare characters ({wide - common} of {wide} outside the common GB2312 set)"
    return ""
