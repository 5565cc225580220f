"""Backup and restore of a PostgreSQL store with PostgreSQL's own tools.

The store lives in one schema (the first of its search_path, `options=-csearch_path=...` in
the URL, else the role's default). `pg_dump -Fc -n SCHEMA` dumps it from a snapshot this module
exported: the counts printed are read in that same snapshot, so they are the dump's. A restore
runs `pg_restore`'s script through `psql --single-transaction` after dropping the schema with
everything in it (a plain `pg_restore --clean` cannot drop a table the backup does not know, one
a later libgate added): the schema is either all the backup's or, on any error, untouched.

pg_dump refuses a server newer than itself, so the tools are taken from
/usr/lib/postgresql/<server major>/bin (Debian's layout) when there, else from PATH, and their
version is checked first. The password goes to the tools in PGPASSWORD, never on a command line
(which `ps` shows).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gateway.store.backup_checks import BackupDone, check_version
from gateway.store.engine import StoreError
from gateway.store.postgres import PostgresTransaction, application_name, one_line, redact
from gateway.store.tables import summary_counts

TOOL_SECONDS = 6 * 3600  # a bound, not an expectation: a large catalogue dumps in minutes
TABLE_DATA = re.compile(r"^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) ", re.MULTILINE)


def dump(url: str, path: Path) -> BackupDone:
    try:
        return _dump(url, path)
    except psycopg.Error as error:
        raise StoreError(f"backup of {redact(url)} failed: {one_line(error)}") from error


def restore(url: str, path: Path, *, force: bool) -> int:
    """Replace the store's schema with the backup's; returns the backup's schema version."""
    try:
        return _restore(url, path, force=force)
    except psycopg.Error as error:
        raise StoreError(f"restore into {redact(url)} failed: {one_line(error)}") from error


def _dump(url: str, path: Path) -> BackupDone:
    conninfo, env = _libpq(url)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with _connect(url) as connection:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            schema = _schema(connection, url)
            pg_dump = _tool("pg_dump", connection)
            snapshot = str(_scalar(connection, "SELECT pg_export_snapshot()"))
            tx = PostgresTransaction(connection)
            version = _version(tx)
            check_version(version, "postgresql", Path(redact(url)))
            counts = summary_counts(tx)
            # The transaction stays open until pg_dump is done: its snapshot lives as long.
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--schema={_quoted(schema)}",
                    f"--snapshot={snapshot}",
                    f"--file={partial}",
                    f"--dbname={conninfo}",
                ],
                env,
            )
            connection.rollback()
            listing = _run([_tool("pg_restore", connection), "--list", str(partial)], env)
        if (schema, "schema_version") not in TABLE_DATA.findall(listing):
            raise StoreError(f"{path}: the dump lists no data of {schema}.schema_version")
        with partial.open("rb") as file:
            os.fsync(file.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupDone(path, version, counts, path.stat().st_size)


def _restore(url: str, path: Path, *, force: bool) -> int:
    conninfo, env = _libpq(url)
    with _connect(url) as connection:
        connection.autocommit = True
        schema = _target_schema(connection, url)
        pg_restore = _tool("pg_restore", connection)
        psql = _tool("psql", connection)
        listing = _run([pg_restore, "--list", str(path)], env)
        schemas = {found for found, _ in TABLE_DATA.findall(listing)}
        if schema not in schemas:
            raise StoreError(
                f"{path} holds schema {', '.join(sorted(schemas)) or '(none)'}, and the store is"
                f" schema {schema}: set search_path in [storage] url to the backup's schema"
            )
        version = _backup_version(pg_restore, path, schema, env)
        check_version(version, "postgresql", path)
        if not force:
            name = application_name(connection, schema)
            users = int(
                _scalar(
                    connection,
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
            )
            if users:
                raise StoreError(
                    f"{users} connection(s) of a running libgate use schema {schema}; stop the"
                    " gateway first, or restore with --force"
                )
    with tempfile.TemporaryDirectory(prefix="libgate-restore-") as scratch:
        script = Path(scratch) / "restore.sql"
        _run(
            [pg_restore, "--no-owner", "--no-privileges", f"--file={script}", str(path)],
            env,
        )
        creates_schema = re.search(rf"^\d+; \d+ \d+ SCHEMA - {re.escape(schema)} ", listing, re.M)
        commands = ["-c", f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE"]
        if not creates_schema:
            commands += ["-c", f"CREATE SCHEMA {_quoted(schema)}"]
        _run(
            [
                psql,
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                *commands,
                "-f",
                str(script),
                f"--dbname={conninfo}",
            ],
            env,
        )
    return version


def _connect(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(
            url.replace("postgresql+psycopg:", "postgresql:", 1), connect_timeout=10
        )
    except psycopg.Error as error:
        raise StoreError(
            f"cannot connect to PostgreSQL at {redact(url)}: {one_line(error)}"
        ) from error


def _scalar(connection: psycopg.Connection, sql: str, params: tuple[object, ...] = ()) -> Any:
    row = connection.execute(sql, params).fetchone()
    return row[0] if row else None


def _schema(connection: psycopg.Connection, url: str) -> str:
    schema = _scalar(connection, "SELECT current_schema()")
    if not schema:
        raise StoreError(f"{redact(url)}: no schema on the search_path")
    return str(schema)


def _target_schema(connection: psycopg.Connection, url: str) -> str:
    """The schema a restore fills: the store's, or on a new server the first one its
    search_path names (the backup creates it)."""
    schema = _scalar(connection, "SELECT current_schema()")
    if schema:
        return str(schema)
    path = str(_scalar(connection, "SELECT current_setting('search_path')") or "")
    for name in (part.strip().strip('"') for part in path.split(",")):
        if name and name != "$user":
            return name
    raise StoreError(f"{redact(url)}: no schema on the search_path")


def _version(tx: PostgresTransaction) -> int:
    exists = tx.scalar(
        "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_version'"
        " AND schemaname = current_schema()"
    )
    return int(tx.scalar("SELECT coalesce(max(version), 0) FROM schema_version")) if exists else 0


def _backup_version(pg_restore: str, path: Path, schema: str, env: dict[str, str]) -> int:
    """The highest schema version in the archive's copy of schema_version."""
    script = _run(
        [
            pg_restore,
            "--data-only",
            f"--schema={schema}",
            "--table=schema_version",
            "--file=-",
            str(path),
        ],
        env,
    )
    versions: list[int] = []
    inside = False
    for line in script.splitlines():
        if line.startswith("COPY ") and "schema_version" in line:
            inside = True
        elif inside and line == "\\.":
            break
        elif inside and line:
            versions.append(int(line.split("\t", 1)[0]))
    return max(versions, default=0)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The conninfo for the tools' --dbname without the password, and their environment
    carrying it."""
    try:
        params = conninfo_to_dict(url.replace("postgresql+psycopg:", "postgresql:", 1))
    except psycopg.Error as error:
        raise StoreError(f"storage url {redact(url)}: {one_line(error)}") from error
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _tool(name: str, connection: psycopg.Connection) -> str:
    """The path of a PostgreSQL client tool at least as new as the server."""
    major = connection.info.server_version // 10000
    candidates = [f"/usr/lib/postgresql/{major}/bin/{name}", shutil.which(name)]
    found: list[str] = []
    for candidate in candidates:
        if not candidate or not Path(candidate).is_file():
            continue
        try:
            out = subprocess.run(
                [candidate, "--version"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue  # not a tool that answers: try the next place
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        tool_major = int(match.group(1)) if match else 0
        if tool_major >= major:
            return candidate
        found.append(f"{candidate} is version {tool_major}")
    seen = f" ({'; '.join(found)})" if found else ""
    raise StoreError(
        f"{name} for PostgreSQL {major} not found on PATH or in /usr/lib/postgresql/{major}/bin"
        f"{seen}; install the PostgreSQL {major} client tools (postgresql-client-{major})"
    )


def _run(command: list[str], env: dict[str, str]) -> str:
    """Run a PostgreSQL tool; its stdout, or a StoreError with the last line it complained."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=TOOL_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StoreError(f"{Path(command[0]).name}: {error}") from error
    if done.returncode != 0:
        complaints = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in complaints if "error" in line.lower()]
        said = (errors or complaints or [f"exit status {done.returncode}"])[0]
        raise StoreError(f"{Path(command[0]).name} failed: {said}")
    return done.stdout


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
