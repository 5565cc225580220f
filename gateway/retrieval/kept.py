"""Result sets kept in the store (table `result_sets`, schema 0009), shared by every process.

SRU's `resultSetId` is answered by whichever worker (or gateway, on one PostgreSQL) takes the
next request, so a set cannot live in the memory of the process that made it. Kept here, a
set is what the search found when it ran: the exact count and the record keys of its first
hits, so its pages are read by primary key rather than searched again, and page 2 follows
page 1 even after a checkout or a load moved the catalogue (a set rebuilt from its query would
skip or repeat records then). Pages past the kept hits are searched again with the kept query,
as in memory.

Time is the wall clock (seconds since the epoch): every process must agree on it.
"""

from __future__ import annotations

import json
import sys
from array import array
from dataclasses import dataclass
from typing import Any

from gateway.catalogue.query import Boolean, Node, Query, SortKey, Term
from gateway.retrieval.resultset import ResultSet
from gateway.store import Transaction


@dataclass(frozen=True)
class KeptSet:
    result: ResultSet  # its name is the set's id
    ttl: int
    expires_at: float


def save(tx: Transaction, result: ResultSet, ttl: int, expires_at: float) -> None:
    tx.execute(
        "INSERT INTO result_sets (set_id, database_name, query, total, record_pks,"
        " available_only, ttl, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            result.name,
            result.database,
            query_to_json(result.query),
            result.total,
            pack(result.record_pks),
            int(result.available_only),
            ttl,
            expires_at,
        ),
    )


def load(tx: Transaction, set_id: str) -> KeptSet | None:
    row = tx.one(
        "SELECT database_name, query, total, record_pks, available_only, ttl, expires_at"
        " FROM result_sets WHERE set_id = ?",
        (set_id,),
    )
    if row is None:
        return None
    database, query, total, record_pks, available_only, ttl, expires_at = row
    result = ResultSet(
        set_id, database, query_from_json(query), total, unpack(record_pks), bool(available_only)
    )
    return KeptSet(result, int(ttl), float(expires_at))


def extend(tx: Transaction, set_id: str, expires_at: float) -> None:
    """A use starts the set's idle time again (never shortens it)."""
    tx.execute(
        "UPDATE result_sets SET expires_at = ? WHERE set_id = ? AND expires_at < ?",
        (expires_at, set_id, expires_at),
    )


def prune(tx: Transaction, now: float, max_sets: int) -> int:
    """Drop expired sets, and beyond `max_sets` those that expire first (the least recently
    used, as far as their idle times are alike). Returns how many went."""
    gone = int(tx.scalar("SELECT count(*) FROM result_sets WHERE expires_at <= ?", (now,)))
    if gone:
        tx.execute("DELETE FROM result_sets WHERE expires_at <= ?", (now,))
    cutoff = tx.scalar(
        "SELECT expires_at FROM result_sets ORDER BY expires_at DESC LIMIT 1 OFFSET ?",
        (max_sets - 1,),
    )
    if cutoff is not None:
        over = int(tx.scalar("SELECT count(*) FROM result_sets WHERE expires_at < ?", (cutoff,)))
        if over:
            tx.execute("DELETE FROM result_sets WHERE expires_at < ?", (cutoff,))
            gone += over
    return gone


def count(tx: Transaction, now: float) -> int:
    return int(tx.scalar("SELECT count(*) FROM result_sets WHERE expires_at > ?", (now,)))


# --- encodings ------------------------------------------------------------------------------


def pack(record_pks: Any) -> bytes:
    packed = array("q", record_pks)
    if sys.byteorder == "big":  # stored little-endian, whichever machine reads it
        packed.byteswap()
    return packed.tobytes()


def unpack(data: bytes | memoryview) -> array[int]:
    unpacked = array("q")
    unpacked.frombytes(bytes(data))
    if sys.byteorder == "big":
        unpacked.byteswap()
    return unpacked


def query_to_json(query: Query) -> str:
    return json.dumps(
        {"root": _node_to_data(query.root), "sort": [[k.key, k.descending] for k in query.sort]},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def query_from_json(text: str) -> Query:
    data = json.loads(text)
    sort = tuple(SortKey(key, bool(descending)) for key, descending in data["sort"])
    return Query(_node_from_data(data["root"]), sort)


def _node_to_data(node: Node) -> Any:
    # Queries are at most MAX_DEPTH (32) deep: recursion is bounded.
    if isinstance(node, Term):
        return ["term", node.index, node.relation, node.value, node.truncation, node.modifiers]
    return ["bool", node.op, _node_to_data(node.left), _node_to_data(node.right)]


def _node_from_data(data: Any) -> Node:
    if data[0] == "term":
        _, index, relation, value, truncation, modifiers = data
        return Term(index, relation, value, truncation, tuple(modifiers))
    _, op, left, right = data
    return Boolean(op, _node_from_data(left), _node_from_data(right))
