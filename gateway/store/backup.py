"""`libgate backup` and `libgate restore`: one file holding the whole store at one moment.

SQLite: the online backup API copies every page inside one read transaction, so the copy is
one snapshot while the gateway keeps serving (WAL: readers never block its writer); the copy is
switched to a rollback journal (one self-contained file), checked with `PRAGMA
integrity_check`, and only then renamed to the name asked for. A restore writes the backup
into the database through the same API (the destination is locked while its pages change), so
a reader never sees half of it.

PostgreSQL: `pg_dump -Fc` of the configured schema (gateway.store.pg_backup).

Both refuse a backup made by a newer libgate (a schema version this one does not know) and
bring an older one up to date after restoring it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from gateway.config import StorageSettings
from gateway.store.backup_checks import BackupDone, check_version
from gateway.store.engine import StoreError
from gateway.store.sqlite import SqliteStore, SqliteTransaction, sqlite_path
from gateway.store.tables import summary_counts

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


def backup(storage: StorageSettings, path: Path) -> BackupDone:
    """Write the configured store to `path` (which must not exist yet), verified."""
    try:
        return _backup(storage, path)
    except OSError as error:  # a full disk at the fsync, a directory we may not write: one line
        raise StoreError(f"backup to {path} failed: {error}") from error


def restore(storage: StorageSettings, path: Path, *, force: bool = False) -> int:
    """Replace the configured store's data with the backup at `path`; returns the backup's
    schema version (the caller brings the store up to date and rebuilds the search index)."""
    try:
        return _restore(storage, path, force=force)
    except OSError as error:  # an unreadable backup, a store directory we cannot make
        raise StoreError(f"restore of {path} failed: {error}") from error


def _backup(storage: StorageSettings, path: Path) -> BackupDone:
    if path.exists():
        raise StoreError(f"{path} exists; a backup never overwrites one (choose a new name)")
    if not path.parent.is_dir():
        raise StoreError(f"no directory {path.parent} for the backup")
    if storage.url.startswith("sqlite:"):
        return _sqlite_backup(Path(sqlite_path(storage.url)), path)
    from gateway.store import pg_backup

    return pg_backup.dump(storage.url, path)


def _restore(storage: StorageSettings, path: Path, *, force: bool) -> int:
    if not path.is_file():
        raise StoreError(f"no backup at {path}")
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if storage.url.startswith("sqlite:"):
        if head.startswith(PG_DUMP_MAGIC):
            raise StoreError(f"{path} is a PostgreSQL backup (pg_dump); the store is SQLite")
        if head != SQLITE_MAGIC:
            raise StoreError(f"{path} is not a libgate backup (not a SQLite database)")
        return _sqlite_restore(path, Path(sqlite_path(storage.url)), force=force)
    if head == SQLITE_MAGIC:
        raise StoreError(
            f"{path} is a SQLite backup; to move it into PostgreSQL, restore it into a SQLite"
            " store and run `libgate migrate-store --to postgresql://...`"
        )
    if not head.startswith(PG_DUMP_MAGIC):
        raise StoreError(f"{path} is not a libgate backup (not a pg_dump archive)")
    from gateway.store import pg_backup

    return pg_backup.restore(storage.url, path, force=force)


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_backup(source_path: Path, path: Path) -> BackupDone:
    if not source_path.is_file():
        raise StoreError(f"no database at {source_path}; use --config")
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(source_path, timeout=30)
        try:
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                # pages=-1: every page in one step, inside one read transaction of the source:
                # one snapshot (stepping would restart on every write the gateway commits).
                source.backup(copy, pages=-1)
                copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
                version, counts = _verify_sqlite(copy, path)
            finally:
                copy.close()
        finally:
            source.close()
        with partial.open("rb") as file:
            os.fsync(file.fileno())
        partial.replace(path)
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        raise StoreError(f"backup of {source_path} failed: {error}") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupDone(path, version, counts, path.stat().st_size)


def _verify_sqlite(connection: sqlite3.Connection, path: Path) -> tuple[int, list[tuple[str, int]]]:
    """The schema version and counts of a SQLite copy whose every page checks out."""
    problems = [str(row[0]) for row in connection.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise StoreError(f"{path}: integrity check failed: {'; '.join(problems[:3])}")
    tx = SqliteTransaction(connection)
    has_versions = tx.scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    )
    version = int(tx.scalar("SELECT max(version) FROM schema_version") or 0) if has_versions else 0
    check_version(version, "sqlite", path)
    return version, summary_counts(tx)


def _sqlite_restore(path: Path, target: Path, *, force: bool) -> int:
    try:
        backup_file = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise StoreError(f"cannot read {path}: {error}") from error
    try:
        try:
            version, _ = _verify_sqlite(backup_file, path)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{path} is not a readable SQLite backup: {error}") from error
        target.parent.mkdir(parents=True, exist_ok=True)
        destination = sqlite3.connect(target, isolation_level=None, timeout=30)
        try:
            if not force and in_use(destination):
                raise StoreError(
                    f"{target} is open in another process (a running `libgate serve`?); stop"
                    " it first, or restore with --force"
                )
            backup_file.backup(destination, pages=-1)
        except sqlite3.Error as error:
            raise StoreError(f"restore into {target} failed: {error}") from error
        finally:
            destination.close()
    finally:
        backup_file.close()
    # Reopened as the gateway opens it (WAL), so the restored file is ready to serve.
    SqliteStore(str(target)).close()
    return version


def sqlite_in_use(path: Path) -> bool:
    """Whether a process other than this one has the SQLite database at `path` open (a
    running `libgate serve`); False when there is no file."""
    if not path.is_file():
        return False
    try:
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            return in_use(connection)
        finally:
            connection.close()
    except sqlite3.Error as error:  # not a database at all, say: one line, not a traceback
        raise StoreError(f"cannot open {path}: {error}") from error


def in_use(connection: sqlite3.Connection) -> bool:
    """Whether another connection has the database open. Leaving WAL mode needs the database
    to itself: SQLite answers "database is locked" while any other process holds it open (a
    gateway keeps its connections open even when idle). A database not in WAL mode (new, or
    a rollback-journal file) gets its mode back."""
    connection.execute("PRAGMA busy_timeout=0")
    try:
        mode = str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode != "wal":
            return False
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            return True
        raise
    finally:
        connection.execute("PRAGMA busy_timeout=30000")
    return False
