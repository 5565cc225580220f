"""Reading the CSV files staff hand to libgate (items, readers): UTF-8 (a BOM is fine), a
header row that must contain the contract's columns (extra columns allowed), and each row with
its line number so a bad row can be reported where it is."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path


class CsvFileError(Exception):
    """The file as a whole cannot be read (unreadable, not UTF-8, header lacks columns)."""


def read_rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise CsvFileError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise CsvFileError(
            f"{path}: not UTF-8 (byte {error.start}); save the CSV as UTF-8"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise CsvFileError(
            f"{path}: the header row lacks {', '.join(missing)}; expected {','.join(required)}"
        )
    reader.fieldnames = header
    rows = []
    for row in reader:
        values = {
            k: (v or "").strip()
            for k, v in row.items()
            if isinstance(k, str) and isinstance(v, str)
        }
        rows.append((reader.line_num, values))
    return rows


@dataclass
class CsvImportReport:
    """What an import did, per row; `errors` holds {line, barcode, reason} for rejected rows."""

    path: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "rows": self.rows,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.errors),
            "errors": self.errors,
        }

    def publish(self, report_path: str | None) -> None:
        """The JSON report if asked for, then one line per bad row and a summary."""
        if report_path:
            Path(report_path).write_text(
                json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
        for error in self.errors:
            print(f"{self.path}:{error['line']}: {error['reason']}")
        print(
            f"{self.path}: {self.rows} rows: {self.added} added, {self.updated} updated,"
            f" {self.unchanged} unchanged, {len(self.errors)} rejected"
        )
