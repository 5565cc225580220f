"""What `backup` reports and what any restore checks first, for both engines' backups."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.store.engine import StoreError
from gateway.store.migrate import latest_version


@dataclass(frozen=True)
class BackupDone:
    path: Path
    schema_version: int
    counts: list[tuple[str, int]]  # (label, rows) of gateway.store.tables.SUMMARY
    size: int  # bytes


def check_version(version: int, dialect: str, path: Path) -> None:
    """A backup this libgate can restore: made by a libgate, at a schema it knows."""
    latest = latest_version(dialect)
    if version < 1:
        raise StoreError(f"{path} has no schema version: not a libgate database")
    if version > latest:
        raise StoreError(
            f"{path} has schema version {version}, newer than this libgate ({latest});"
            " restore it with the libgate that made it, or upgrade libgate"
        )
