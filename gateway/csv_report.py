"""What a CSV import did, row by row: the `--report` JSON and the terminal summary.

The JSON's field names are a contract: `path`, `encoding`, `rows`, `added`, `updated`,
`unchanged`, `rejected`, `errors` [{`line`, `barcode`, `reason`}] (the rejected rows) and
`outcomes` [{`line`, `barcode`, `outcome`, `reason`?, `changed`?}] (every row, in file order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("added", "updated", "unchanged", "rejected")
SHOWN_REJECTS = 10  # rejected rows printed on the terminal; the report has them all


@dataclass(frozen=True)
class RowOutcome:
    """One data row: what the import did with it, and why when it refused it."""

    line: int  # the file line the row starts on
    barcode: str
    outcome: str  # one of OUTCOMES
    reason: str = ""  # why it was rejected
    changed: tuple[str, ...] = ()  # the columns an update changed

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "line": self.line,
            "barcode": self.barcode,
            "outcome": self.outcome,
        }
        if self.reason:
            found["reason"] = self.reason
        if self.changed:
            found["changed"] = list(self.changed)
        return found


@dataclass
class CsvImportReport:
    path: str
    encoding: str = ""
    outcomes: list[RowOutcome] = field(default_factory=list)

    def add(
        self,
        line: int,
        barcode: str,
        outcome: str,
        *,
        reason: str = "",
        changed: tuple[str, ...] = (),
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown row outcome {outcome!r}")  # our bug
        self.outcomes.append(RowOutcome(line, barcode, outcome, reason, changed))

    def reject(self, line: int, barcode: str, reason: str) -> None:
        self.add(line, barcode, "rejected", reason=reason)

    def _count(self, outcome: str) -> int:
        return sum(1 for row in self.outcomes if row.outcome == outcome)

    @property
    def rows(self) -> int:
        return len(self.outcomes)

    @property
    def added(self) -> int:
        return self._count("added")

    @property
    def updated(self) -> int:
        return self._count("updated")

    @property
    def unchanged(self) -> int:
        return self._count("unchanged")

    @property
    def errors(self) -> list[dict[str, object]]:
        return [
            {"line": row.line, "barcode": row.barcode, "reason": row.reason}
            for row in self.in_file_order()
            if row.outcome == "rejected"
        ]

    def in_file_order(self) -> list[RowOutcome]:
        return sorted(self.outcomes, key=lambda row: row.line)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "encoding": self.encoding,
            "rows": self.rows,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self._count("rejected"),
            "errors": self.errors,
            "outcomes": [row.as_dict() for row in self.in_file_order()],
        }

    def summary_lines(self, report_path: str | None) -> list[str]:
        """The counts, then the first rejected rows with their reasons."""
        encoding = f" ({self.encoding})" if self.encoding else ""
        lines = [
            f"{self.path}{encoding}: {self.rows} rows: {self.added} added, {self.updated}"
            f" updated, {self.unchanged} unchanged, {self._count('rejected')} rejected"
        ]
        errors = self.errors
        lines += [f"{self.path}:{e['line']}: {e['reason']}" for e in errors[:SHOWN_REJECTS]]
        hidden = len(errors) - SHOWN_REJECTS
        if hidden > 0:
            where = f"{report_path} lists" if report_path else "--report PATH lists"
            lines.append(f"... and {hidden} more rejected rows; {where} every row")
        return lines

    def publish(self, report_path: str | None) -> None:
        """The JSON report if asked for, then the summary on the terminal."""
        if report_path:
            Path(report_path).write_text(
                json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
        for line in self.summary_lines(report_path):
            print(line)
