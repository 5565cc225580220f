"""The SRU service: one request's parameters in, one response document out. Synchronous (it
searches and reads the engine), so the Twisted adapter runs it in a thread; no sockets here.

Every outcome is an SRU document: a refused request is its diagnostic, and a failure of ours is
diagnostic 1 with no details (the traceback goes to the log, never to the partner).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar
from urllib.parse import parse_qs

from lxml import etree

from gateway import metrics
from gateway.catalogue.indexes import INDEXES
from gateway.catalogue.query import Query, QueryError, SortKey, Term
from gateway.catalogue.repository import RetrievedRecord
from gateway.circulation.engine import Engine, TitleAvailability
from gateway.config import DatabaseSettings
from gateway.cql import ast, scope
from gateway.cql.lexer import CQLSyntaxError
from gateway.cql.mapping import CQL_SET, DEFAULT_PREFIXES, LIMIT_MAP
from gateway.cql.parser import parse
from gateway.cql.scope import Scope
from gateway.cql.to_query import to_query
from gateway.records import xml as records
from gateway.records.schemas import RecordSchema, natural_schema
from gateway.retrieval import Retrieval
from gateway.store import Store
from sru import response
from sru.diagnostics import Diagnostic, SruError, from_query_error, from_syntax_error
from sru.explain import zeerex
from sru.request import (
    EXPLAIN,
    SCAN,
    SEARCH_RETRIEVE,
    ExplainRequest,
    Limits,
    Request,
    RequestRefused,
    ScanRequest,
    SearchRetrieveRequest,
    decode_parameters,
    parse_request,
)
from sru.resultsets import ResultSets
from sru.versions import HIGHEST, Version

log = logging.getLogger("libgate.sru")

SCAN_RELATIONS = ("=", "all", "exact", "adj", "any")
P = ParamSpec("P")
R = TypeVar("R")
BuiltRecord = tuple[RecordSchema, bytes]  # a record, serialised, and the schema it was built in


@dataclass(frozen=True)
class Reply:
    body: bytes
    content_type: str
    status: int = 200  # SRU answers refusals with 200 and a diagnostic
    # For the access line (gateway/access_log.py): what was asked and how it ended.
    operation: str = ""
    query: str | None = None
    outcome: str = "ok"  # or "diagnostic N"


class SruService:
    def __init__(
        self,
        store: Store,
        engine: Engine,
        databases: Sequence[DatabaseSettings],
        limits: Limits,
        result_sets: ResultSets,
        record_cache: records.RecordCache | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.retrieval = Retrieval(store, engine)
        self.databases = {d.name: d for d in databases}
        self.limits = limits
        self.result_sets = result_sets
        self.record_cache = record_cache or records.RecordCache(0)

    # --- the one entry point ------------------------------------------------------------

    def handle(self, database: str, raw: bytes, host: str = "localhost", port: int = 80) -> Reply:
        """Answer one request to `/database` whose form-encoded parameters are `raw`."""
        version: Version = HIGHEST
        operation = SEARCH_RETRIEVE
        stylesheet: str | None = None
        outcome = "ok"
        try:
            request = parse_request(decode_parameters(raw), self.limits)
            version, stylesheet = request.version, request.stylesheet
            operation = _operation_of(request)
            answer = self._answer(request, database, host, port)
            metrics.sru_request(operation, None)
            if isinstance(answer, bytes):  # a searchRetrieve response, written as bytes
                return Reply(
                    answer,
                    _content_type(version, stylesheet),
                    operation=operation,
                    query=query_asked(raw),
                )
            root = answer
        except RequestRefused as refused:
            version, operation, stylesheet = refused.version, refused.operation, refused.stylesheet
            metrics.sru_request(operation, refused.diagnostic.number)
            root = self._refusal(version, operation, refused.diagnostic, database, host, port)
            outcome = f"diagnostic {refused.diagnostic.number}"
        except SruError as error:
            metrics.sru_request(operation, error.diagnostic.number)
            root = self._refusal(version, operation, error.diagnostic, database, host, port)
            outcome = f"diagnostic {error.diagnostic.number}"
        except Exception:  # noqa: BLE001 - a partner gets diagnostic 1, the log gets the rest
            log.exception("SRU request to /%s failed: %r", database, raw[:500])
            metrics.sru_request(operation, 1)
            root = response.diagnostic_response(version, operation, Diagnostic(1))
            stylesheet = None
            outcome = "diagnostic 1"
        return Reply(
            response.serialize(root, stylesheet),
            _content_type(version, stylesheet),
            operation=operation,
            query=query_asked(raw),
            outcome=outcome,
        )

    def _refusal(
        self,
        version: Version,
        operation: str,
        diagnostic: Diagnostic,
        database: str,
        host: str,
        port: int,
    ) -> etree._Element:
        explain_record = None
        if operation == EXPLAIN and database in self.databases:
            explain_record = zeerex(self.databases[database], self.limits, host, port, version.text)
        return response.diagnostic_response(version, operation, diagnostic, explain_record)

    def _answer(
        self, request: Request, database: str, host: str, port: int
    ) -> etree._Element | bytes:
        if isinstance(request, ExplainRequest):
            record = zeerex(self.databases[database], self.limits, host, port, request.version.text)
            return response.explain_response(
                request.version,
                record,
                escaping=request.record_escaping,
                diagnostics=request.warnings,
            )
        if isinstance(request, ScanRequest):
            return self._scan(request, database)
        return self._search_retrieve(request, database)

    # --- searchRetrieve -------------------------------------------------------------------

    def _search_retrieve(self, request: SearchRetrieveRequest, database: str) -> bytes:
        warnings = list(request.warnings)
        parsed = _parse(request.query)
        if request.sort_keys:
            if parsed.sort_keys:
                raise SruError(6, "sortKeys", "the query has sortBy already; give one of them")
            parsed = ast.CQLQuery(parsed.root, request.sort_keys)
        start, maximum = request.start_record, request.maximum_records
        result_set_id: str | None = None
        ttl = 0
        referenced = _result_set_reference(parsed)
        if referenced is not None:
            result_set = self.result_sets.get(referenced, database)
            if result_set is None:
                raise SruError(51, referenced[:100], "no such result set, or it has expired")
            total = result_set.total
            page = _run(self.retrieval.page, result_set, start, maximum)
            result_set_id, ttl = result_set.id, result_set.ttl
        else:
            parsed, available = _availability_limit(parsed)
            query = _translate(parsed, self.limits.default_sort)
            if request.result_set_ttl:
                found = _run(
                    self.retrieval.search,
                    "",
                    database,
                    query,
                    keep=self.result_sets.max_records,
                    available_only=available,
                )
                created = self.result_sets.keep(found, request.result_set_ttl)
                result_set_id, ttl, total = created.id, created.ttl, created.total
                page = _run(self.retrieval.page, created, start, maximum)
            else:
                total, page = _run(
                    self.retrieval.search_page_ids,
                    query,
                    database,
                    start=start,
                    count=maximum,
                    available_only=available,
                )
        if maximum and total and start > total:
            raise SruError(61, str(start), f"there are {total} records")
        response_records = self._records(request, page, start)
        following = start + len(page)
        return response.search_retrieve_document(
            request.version,
            total=total,
            records=response_records,
            escaping=request.record_escaping,
            result_set_id=result_set_id,
            result_set_ttl=ttl,
            next_position=following if page and following <= total else None,
            diagnostics=warnings,
            stylesheet=request.stylesheet,
        )

    def _records(
        self, request: SearchRetrieveRequest, page: list[int], start: int
    ) -> list[response.ResponseRecord]:
        asked = request.record_schema

        def build(record: RetrievedRecord, availability: TitleAvailability | None) -> BuiltRecord:
            # Unasked, a record comes in the MARC schema that labels it truly: a CNMARC record
            # as UNIMARC marcxchange, never under the MARC 21 slim identifier.
            schema = asked or natural_schema(record.format)
            return schema, self.record_cache.text(schema, record, availability)

        found = self.retrieval.retrieve(
            page, build, with_availability=bool(asked and asked.holdings)
        )
        built: list[response.ResponseRecord] = []
        for position, retrieved in enumerate(found, start):
            if retrieved.record is None:  # deleted since the search
                built.append(response.surrogate(request.version, Diagnostic(65), position))
            elif retrieved.built is None:  # could not be built: the log says why
                diagnostic = Diagnostic(64, retrieved.record.record_id)
                built.append(response.surrogate(request.version, diagnostic, position))
            else:
                schema, data = retrieved.built
                built.append(response.ResponseRecord(schema.identifier, data, position))
        return built

    # --- scan -------------------------------------------------------------------------------

    def _scan(self, request: ScanRequest, database: str) -> etree._Element:
        parsed = _parse(request.scan_clause)
        _scope, _prefixes, root = scope.top(parsed)
        if not isinstance(root, ast.SearchClause) or parsed.sort_keys:
            raise SruError(10, request.scan_clause[:100], "scanClause is one index relation term")
        relation = (root.relation.base if root.relation else "=").lower()
        if relation not in SCAN_RELATIONS and relation != "==":
            raise SruError(19, relation, "scan takes =, ==, exact, all, any or adj")
        if root.term.strip():
            term = _translate(ast.CQLQuery(parsed.root)).root
        else:  # an empty term starts at the beginning of the list
            term = _translate(ast.CQLQuery(_with_term(parsed.root, "x"))).root
        assert isinstance(term, Term)
        spec = INDEXES[term.index]
        if not spec.browse:
            browsable = ", ".join(name for name, s in INDEXES.items() if s.browse)
            raise SruError(16, root.index or "cql.serverChoice", f"scan lists: {browsable}")
        start = term.value if root.term.strip() else ""
        entries = _run(
            self.retrieval.browse,
            database,
            term.index,
            start,
            count=request.maximum_terms,
            position=request.response_position,
        )
        terms = [response.ScanTerm(entry.heading, entry.count) for entry in entries]
        return response.scan_response(request.version, terms, request.warnings)


def _content_type(version: Version, stylesheet: str | None) -> str:
    content_type = "application/sru+xml" if version.is_2 and not stylesheet else "text/xml"
    return f"{content_type}; charset=UTF-8"


def _operation_of(request: Request) -> str:
    if isinstance(request, ExplainRequest):
        return EXPLAIN
    return SCAN if isinstance(request, ScanRequest) else SEARCH_RETRIEVE


def _parse(text: str) -> ast.CQLQuery:
    try:
        return parse(text)
    except CQLSyntaxError as error:
        raise from_syntax_error(error) from None


def _translate(parsed: ast.CQLQuery, default_sort: str = "relevance") -> Query:
    try:
        query = to_query(parsed)
    except QueryError as error:
        raise from_query_error(error) from None
    if not query.sort and default_sort != "relevance":
        return Query(query.root, (SortKey(default_sort),))
    return query


def _run(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call the catalogue; its QueryErrors (found while planning) become diagnostics."""
    try:
        return function(*args, **kwargs)
    except QueryError as error:
        raise from_query_error(error) from None


def _with_term(node: ast.Node, term: str) -> ast.Node:
    if isinstance(node, ast.Prefixed):
        return ast.Prefixed(node.prefixes, _with_term(node.query, term))
    assert isinstance(node, ast.SearchClause)
    return ast.SearchClause(node.index, node.relation, term)


def _result_set_reference(parsed: ast.CQLQuery) -> str | None:
    """The id in `cql.resultSetId = "…"` when that is the whole query; a result set combined
    with other clauses is refused (55)."""
    _scope, _prefixes, root = scope.top(parsed)
    found = [
        clause
        for clause, clause_scope in scope.clauses(parsed.root, DEFAULT_PREFIXES)
        if clause.index and scope.resolve(clause.index, clause_scope) == (CQL_SET, "resultsetid")
    ]
    if not found:
        return None
    if len(found) > 1 or root is not found[0]:
        raise SruError(55, "cql.resultSetId", "a result set cannot be combined with other terms")
    relation = (found[0].relation.base if found[0].relation else "=").lower()
    if relation not in ("=", "==", "exact"):
        raise SruError(19, relation, "cql.resultSetId takes =, == or exact")
    if parsed.sort_keys:
        # The set keeps its order; silently ignoring a sort would be worse than saying so.
        raise SruError(80, "sortBy", "a result set is not sorted again: search with sortBy")
    return found[0].term


def _is_limit(node: ast.Node, node_scope: Scope) -> bool:
    return (
        isinstance(node, ast.SearchClause)
        and node.index is not None
        and scope.resolve(node.index, node_scope) in LIMIT_MAP
    )


def _availability_limit(parsed: ast.CQLQuery) -> tuple[ast.CQLQuery, bool]:
    """`… and local.available = true`: the catalogue's availability limit, taken out of the
    query. It limits the whole result, so it may only be ANDed at the top (else 48)."""
    top_scope, prefixes, root = scope.top(parsed)
    limited = False

    def strip(node: ast.Node) -> ast.Node | None:
        nonlocal limited
        if isinstance(node, ast.SearchClause) and _is_limit(node, top_scope):
            relation = (node.relation.base if node.relation else "=").lower()
            if relation not in ("=", "==", "exact") or (node.relation and node.relation.modifiers):
                raise SruError(19, relation, "local.available takes = true")
            if node.term.strip().lower() not in ("true", "1", "yes"):
                raise SruError(36, node.term[:100], "local.available takes = true")
            limited = True
            return None
        if isinstance(node, ast.Boolean) and node.op.lower() == "and" and not node.modifiers:
            left, right = strip(node.left), strip(node.right)
            if left is None or right is None:
                return right if left is None else left
            return ast.Boolean(node.op, left, right)
        return node

    kept = strip(root)
    if kept is None:
        raise SruError(48, "local.available", "local.available limits a search: add terms")
    if any(_is_limit(clause, where) for clause, where in scope.clauses(kept, top_scope)):
        raise SruError(48, "local.available", "local.available can only be ANDed at the top")
    if not limited:
        return parsed, False
    new_root = ast.Prefixed(prefixes, kept) if prefixes else kept
    return ast.CQLQuery(new_root, parsed.sort_keys), True


def query_asked(raw: bytes) -> str | None:
    """The request's CQL (`query`, or a scan's `scanClause`) as sent, for the access line;
    read leniently, as the line must be written for a request the parser refused too."""
    fields = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=100)
    for name in ("query", "scanClause"):
        if fields.get(name):
            return fields[name][0]
    return None
