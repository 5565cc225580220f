"""The load report: counts per file and in total, encodings, rejects with positions.

JSON fields are a contract (other tools read them): per file and under `total`, `framed`,
`loaded`, `overlaid`, `merged`, `unchanged`, `ignored`, `rejected` with framed = the other six
summed (`merged`: --on-match merge-copies added copies to a stored record; `ignored`: --match
none met a stored record, or --on-match / --on-new ignore; both 0 unless those options are
used); `encodings` {name: count}; `rejects` [{record, offset, reason}]; `batch`, the batch
number (null for a dry run). A dry run's report has `dry_run`: true and `records`, each
record's outcome (as `libgate batches show` gives a load's).

Added later (readers must not require them): each reject's `control_number`, `title`, `format`
(the one it was read as: "unimarc", "marc21" or null when rejected before that was decided),
`field` (the tag at fault, or null) and, for XML input, `line`; each warning's `code` and
`field`; per file and under `total`, `warnings_by_kind` {code: count}; per file `profile`
and `warning_summary` [{code, field, records, warnings, problem, fix, examples}], the same
groups the terminal shows; at the top `format` and `interrupted` (the load was stopped by
Ctrl-C: the batches committed before it are stored, the rest of the files were not read).

`timings` (added later, so readers must not require it) splits the load's time: `parse` (ISO 2709
structure and character set) and `map` (field map, copies, canonical MARC, search document) are
seconds summed over the prepare worker processes, so with workers they run in parallel and may
add up to more than the wall time; `store` (matching, SQL, commits) and `index` (Tantivy adds
and commits) are seconds of the loading process; `wait` is the loading process waiting for
the workers; each phase also gives records/s (records framed / its seconds).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gateway.catalogue.loading.messages import (
    WarningGroup,
    plural,
    problem_and_fix,
    record_label,
)
from gateway.catalogue.loading.prepare import Rejection
from marc.errors import RecordWarning

COUNTS = ("framed", "loaded", "overlaid", "merged", "unchanged", "ignored", "rejected")
MAX_WARNINGS_LISTED = 1000
REJECTS_SHOWN = 20  # rejects of each file listed on the terminal (all are in the report)
PHASES = ("parse", "map", "store", "index", "wait")


@dataclass
class PhaseTimes:
    """Seconds spent in each phase of a load (see the module docstring)."""

    parse: float = 0.0
    map: float = 0.0
    store: float = 0.0
    index: float = 0.0
    wait: float = 0.0

    def add(self, other: PhaseTimes) -> None:
        for name in PHASES:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class FileReport:
    path: str
    framed: int = 0
    loaded: int = 0
    overlaid: int = 0
    merged: int = 0
    unchanged: int = 0
    ignored: int = 0
    rejected: int = 0
    items_added: int = 0
    items_updated: int = 0
    encodings: Counter[str] = field(default_factory=Counter)
    encoding_mismatches: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    warning_count: int = 0
    error: str | None = None  # the whole file could not be read
    profile: str = ""  # the holdings profile this file was loaded with
    warnings_by_kind: Counter[str] = field(default_factory=Counter)
    warning_groups: dict[tuple[str, str | None], WarningGroup] = field(default_factory=dict)

    def reject(
        self,
        record: int,
        offset: int | None,
        reason: str | Rejection,
        control_number: str | None = None,
        line: int | None = None,
    ) -> None:
        """Count a reject: its reason, and what was read of the record (a `Rejection`)."""
        why = reason if isinstance(reason, Rejection) else Rejection(reason)
        self.rejected += 1
        entry: dict[str, Any] = {
            "record": record,
            "offset": offset,
            "reason": why.reason,
            "control_number": why.control_number or control_number,
            "title": why.title,
            "format": why.format,
            "field": why.field,
        }
        if line is not None:
            entry["line"] = line
        self.rejects.append(entry)

    def warn(
        self,
        record: int,
        offset: int | None,
        warning: str | RecordWarning,
        control_number: str | None = None,
        line: int | None = None,
    ) -> None:
        if isinstance(warning, str):
            warning = RecordWarning("other", warning)
        self.warning_count += 1
        self.warnings_by_kind[warning.code] += 1
        entry: dict[str, Any] = {
            "record": record,
            "offset": offset,
            "message": warning.message,
            "code": warning.code,
            "field": warning.field,
        }
        if line is not None:
            entry["line"] = line
        if len(self.warnings) < MAX_WARNINGS_LISTED:
            self.warnings.append(entry)
        key = (warning.code, warning.field)
        group = self.warning_groups.get(key)
        if group is None:
            group = self.warning_groups[key] = WarningGroup(warning.code, warning.field)
        group.add(record, warning, entry | {"control_number": control_number})

    def suggestion(self) -> str | None:
        """The option most of this file's warnings point to (e.g. "--profile bnu")."""
        found: Counter[str] = Counter()
        for group in self.warning_groups.values():
            found.update(group.suggestions)
        return found.most_common(1)[0][0] if found else None

    def warning_summary(self, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The warnings by kind and field, most records first, with the words for each."""
        suggestion = self.suggestion()
        summary = []
        for group in sorted(self.warning_groups.values(), key=lambda g: (-g.records, g.code)):
            problem, fix = problem_and_fix(group, self.profile, suggestion, labels or {})
            summary.append(
                {
                    "code": group.code,
                    "field": group.tag,
                    "records": group.records,
                    "warnings": group.warnings,
                    "problem": problem,
                    "fix": fix,
                    "examples": [
                        {k: e[k] for k in ("record", "control_number", "message")}
                        | ({"line": e["line"]} if "line" in e else {})
                        for e in group.examples
                    ],
                }
            )
        return summary

    def problem_lines(self, labels: dict[str, str] | None = None) -> list[str]:
        """The warnings by kind, then the rejects (what the warnings often explain), for the
        terminal."""
        lines: list[str] = []
        if self.warning_count:
            kinds = len(self.warning_groups)
            lines.append(
                f"{self.path}: {plural(self.warning_count, 'warning')}"
                + (f" of {kinds} kinds" if kinds > 1 else "")
                + ":"
            )
            for group in self.warning_summary(labels):
                headline = f"{group['problem']} on {plural(group['records'], 'record')}"
                lines.append(f"  {headline}: {group['fix']}" if group["fix"] else f"  {headline}")
                for example in group["examples"]:
                    label = record_label(
                        example["record"],
                        line=example.get("line"),
                        control_number=example["control_number"],
                    )
                    lines.append(f"      {label}: {example['message']}")
                if group["records"] > len(group["examples"]):
                    more = group["records"] - len(group["examples"])
                    lines.append(f"      … and {plural(more, 'more record')}")
        if self.rejects:
            lines.append(f"{self.path}: {plural(self.rejected, 'record')} rejected:")
            for entry in self.rejects[:REJECTS_SHOWN]:
                label = record_label(
                    entry["record"],
                    entry["offset"],
                    entry.get("line"),
                    entry["control_number"],
                    entry["title"],
                    entry["format"],
                )
                lines.append(f"  {label}: {entry['reason']}")
            if len(self.rejects) > REJECTS_SHOWN:
                lines.append(
                    f"  … and {len(self.rejects) - REJECTS_SHOWN} more rejects"
                    " (every one is in --report; their records in --rejects)"
                )
        return lines

    @property
    def balanced(self) -> bool:
        counted: int = sum(getattr(self, name) for name in COUNTS[1:])
        return self.framed == counted

    def to_dict(self, labels: dict[str, str] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path}
        data.update({name: getattr(self, name) for name in COUNTS})
        data["items"] = {"added": self.items_added, "updated": self.items_updated}
        data["encodings"] = dict(sorted(self.encodings.items()))
        data["encoding_mismatches"] = self.encoding_mismatches
        data["rejects"] = self.rejects
        data["warnings"] = self.warnings
        data["warning_count"] = self.warning_count
        data["warnings_by_kind"] = dict(sorted(self.warnings_by_kind.items()))
        data["warning_summary"] = self.warning_summary(labels)
        data["profile"] = self.profile
        if self.error:
            data["error"] = self.error
        return data


@dataclass
class LoadReport:
    database: str
    match: str
    profile: str
    encoding: str
    files: list[FileReport] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    times: PhaseTimes = field(default_factory=PhaseTimes)
    workers: int = 0  # prepare worker processes (0: prepared in the loading process)
    batching: str = ""  # how batches were sized: "timed", "bulk first load" or "fixed"
    batches: int = 0  # store transactions committed
    batch: int | None = None  # the batch this load is (None: a dry run)
    dry_run: bool = False
    records: list[Any] | None = None  # a dry run: each record's outcome (batches.OutcomeRow)
    format: str = "auto"  # how records were read: auto (per record), unimarc or marc21
    # Stopped by Ctrl-C (`Loader.request_stop`): the batches committed before it are stored
    # and counted here; the rest of the files was not read. The load's batch is then recorded
    # as interrupted (the report is stored with it).
    interrupted: bool = False
    # Holdings profiles' sources by name ("bnu" → "Beijing Normal University (Aleph) CNMARC"),
    # for the words that suggest a profile.
    profile_labels: dict[str, str] = field(default_factory=dict)

    def timings(self) -> dict[str, Any]:
        framed = sum(f.framed for f in self.files)
        data: dict[str, Any] = {"workers": self.workers, "batching": self.batching}
        data["batches"] = self.batches
        for name in PHASES:
            seconds = getattr(self.times, name)
            data[f"{name}_seconds"] = round(seconds, 3)
            data[f"{name}_records_per_second"] = round(framed / seconds) if seconds > 0 else None
        rate = framed / self.elapsed_seconds if self.elapsed_seconds else None
        data["records_per_second"] = round(rate) if rate else None
        return data

    def total(self) -> dict[str, Any]:
        total: dict[str, Any] = {name: sum(getattr(f, name) for f in self.files) for name in COUNTS}
        total["items"] = {
            "added": sum(f.items_added for f in self.files),
            "updated": sum(f.items_updated for f in self.files),
        }
        encodings: Counter[str] = Counter()
        for f in self.files:
            encodings.update(f.encodings)
        total["encodings"] = dict(sorted(encodings.items()))
        total["files_unreadable"] = sum(1 for f in self.files if f.error)
        kinds: Counter[str] = Counter()
        for f in self.files:
            kinds.update(f.warnings_by_kind)
        total["warning_count"] = sum(f.warning_count for f in self.files)
        total["warnings_by_kind"] = dict(sorted(kinds.items()))
        return total

    @property
    def clean(self) -> bool:
        return all(f.rejected == 0 and not f.error for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "match": self.match,
            "profile": self.profile,
            "encoding": self.encoding,
            "format": self.format,
            "interrupted": self.interrupted,
            "files": [f.to_dict(self.profile_labels) for f in self.files],
            "total": self.total(),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "timings": self.timings(),
            "batch": self.batch,
            **(
                {"dry_run": True, "records": [r.as_dict() for r in self.records or []]}
                if self.dry_run
                else {}
            ),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def summary_lines(self) -> list[str]:
        lines = []
        for f in self.files:
            if f.error:
                lines.append(f"{f.path}: NOT READ: {f.error}")
                continue
            encodings = ", ".join(f"{k} {v}" for k, v in sorted(f.encodings.items())) or "-"
            lines.append(
                f"{f.path}: {f.framed} records: {f.loaded} loaded, {f.overlaid} overlaid,"
                f"{_optional_counts(f.merged, f.ignored)}"
                f" {f.unchanged} unchanged, {f.rejected} rejected; copies {f.items_added} added,"
                f" {f.items_updated} updated; encodings: {encodings}"
                + (f"; {plural(f.warning_count, 'warning')}" if f.warning_count else "")
            )
        t = self.total()
        rate = t["framed"] / self.elapsed_seconds if self.elapsed_seconds else 0.0
        lines.append(
            f"total: {t['framed']} records: {t['loaded']} loaded, {t['overlaid']} overlaid,"
            f"{_optional_counts(t['merged'], t['ignored'])}"
            f" {t['unchanged']} unchanged, {t['rejected']} rejected"
            f" in {self.elapsed_seconds:.1f}s ({rate:,.0f} records/s)"
        )
        times = self.times
        where = f"in {self.workers} worker processes" if self.workers else "in this process"
        lines.append(
            f"time: parse {times.parse:.1f}s, map {times.map:.1f}s ({where}),"
            f" store {times.store:.1f}s, index {times.index:.1f}s, waiting for workers"
            f" {times.wait:.1f}s; {self.batches} batches ({self.batching or '-'})"
        )
        if self.interrupted:
            lines.append(
                "interrupted (Ctrl-C): the batches stored before it are kept and counted above;"
                " run the same command again to load the rest (what is stored already counts"
                " as unchanged)"
            )
        return lines

    def problem_lines(self) -> list[str]:
        """Every file's rejects and warnings by kind, for the terminal (stderr)."""
        return [line for f in self.files for line in f.problem_lines(self.profile_labels)]


def _optional_counts(merged: int, ignored: int) -> str:
    """The outcomes only some options produce, when they occurred (`, 2 merged, 5 ignored,`)."""
    parts = [f" {merged} merged," if merged else "", f" {ignored} ignored," if ignored else ""]
    return "".join(parts)
