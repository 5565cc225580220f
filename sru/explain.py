"""The explain record (ZeeRex 2.0) of one database, made from the tables that drive searching:
the CQL index map (`gateway.cql.mapping`), the index table with its Chinese and English titles
(`gateway.catalogue.indexes`) and the record schemas (`sru.schemas`). Nothing is hand-written,
so explain cannot drift from what the server does.
"""

from __future__ import annotations

from lxml import etree

from gateway import __version__
from gateway.catalogue.indexes import INDEXES
from gateway.catalogue.word_forms import SUMMARY as WORD_READING
from gateway.config import DatabaseSettings
from gateway.cql.mapping import DEFAULT_PREFIXES, INDEX_MAP, LIMIT_MAP, LOCAL_SET
from gateway.records.schemas import SCHEMAS
from sru.request import Limits

ZEEREX_NS = "http://explain.z3950.org/dtd/2.0/"
RELATIONS = ("=", "==", "exact", "all", "any", "adj", "<", "<=", ">", ">=", "<>", "within")
RELATION_MODIFIERS = ("relevant", "string", "word", "ignoreCase", "ignoreAccents", "masked")
SET_TITLES = {
    "cql": "CQL context set",
    "dc": "Dublin Core context set",
    "bath": "Bath context set",
    "rec": "Record metadata context set",
    "local": "libgate local indexes (ISRC, CLC, barcode, language, …)",
}
# INDEX_MAP keys are lower case (CQL index names are case-insensitive); explain shows the
# names as the context sets spell them.
SPELLING = {
    "serverchoice": "serverChoice",
    "keytitle": "keyTitle",
    "seriestitle": "seriesTitle",
    "personalname": "personalName",
    "corporatename": "corporateName",
    "conferencename": "conferenceName",
    "topicalsubject": "topicalSubject",
    "standardidentifier": "standardIdentifier",
}
PREFERRED_SET = ("dc", "bath", "rec", "cql", "local")
LIMIT_TITLES = {
    "available": (
        "可借（有在架可外借的复本）：= true，只能用 AND 连接在查询最外层",
        "Available (a circulating copy on the shelf): = true, ANDed at the top of a query",
    ),
}


def _set_names() -> dict[str, str]:
    """Context set URI → the prefix explain uses for it."""
    names: dict[str, str] = {}
    for prefix, uri in DEFAULT_PREFIXES.items():
        if prefix in SET_TITLES and uri not in names:
            names[uri] = prefix
    return names


def zeerex(
    database: DatabaseSettings, limits: Limits, host: str, port: int, version: str
) -> etree._Element:
    q = f"{{{ZEEREX_NS}}}"
    root = etree.Element(q + "explain", nsmap={None: ZEEREX_NS})

    def sub(
        parent: etree._Element, tag: str, text: object = None, **attributes: str
    ) -> etree._Element:
        element = etree.SubElement(parent, q + tag, attrib=attributes)
        if text is not None:
            element.text = str(text)
        return element

    server = sub(
        root, "serverInfo", protocol="SRU", version=version, transport="http", method="GET POST"
    )
    sub(server, "host", host)
    sub(server, "port", port)
    sub(server, "database", database.name)

    info = sub(root, "databaseInfo")
    sub(info, "title", database.title or database.name, lang="zh", primary="true")
    sub(info, "title", database.title_en or database.name, lang="en")
    sub(info, "description", WORD_READING[0], lang="zh", primary="true")
    sub(info, "description", WORD_READING[1], lang="en")
    implementation = sub(info, "implementation", identifier="libgate", version=__version__)
    sub(implementation, "title", "libgate")

    index_info = sub(root, "indexInfo")
    set_names = _set_names()
    for uri, prefix in set_names.items():
        sub(sub(index_info, "set", name=prefix, identifier=uri), "title", SET_TITLES[prefix])
    names_by_index: dict[str, list[tuple[str, str]]] = {}
    for (uri, name), ours in INDEX_MAP.items():
        names_by_index.setdefault(ours, []).append((set_names[uri], SPELLING.get(name, name)))
    for ours, spec in INDEXES.items():
        names = sorted(
            names_by_index.get(ours, []),
            key=lambda pair: (PREFERRED_SET.index(pair[0]), pair[1]),
        )
        element = sub(
            index_info,
            "index",
            id=ours,
            search="true",
            scan="true" if spec.browse else "false",
            sort="true" if spec.sortable else "false",
        )
        sub(element, "title", spec.title_zh, lang="zh", primary="true")
        sub(element, "title", spec.title_en, lang="en")
        for position, (prefix, name) in enumerate(names):
            attributes = {"primary": "true"} if position == 0 else {}
            sub(sub(element, "map", **attributes), "name", name, set=prefix)

    for (uri, name), limit in LIMIT_MAP.items():
        element = sub(index_info, "index", id=limit, search="true", scan="false", sort="false")
        title_zh, title_en = LIMIT_TITLES[limit]
        sub(element, "title", title_zh, lang="zh", primary="true")
        sub(element, "title", title_en, lang="en")
        sub(sub(element, "map", primary="true"), "name", name, set=set_names[uri])

    schema_info = sub(root, "schemaInfo")
    for schema in SCHEMAS.values():
        element = sub(
            schema_info,
            "schema",
            identifier=schema.identifier,
            name=schema.name,
            retrieve="true",
            sort="false",
        )
        sub(element, "title", schema.title_zh, lang="zh", primary="true")
        sub(element, "title", schema.title_en, lang="en")

    config = sub(root, "configInfo")
    sub(config, "default", limits.default_records, type="numberOfRecords")
    sub(config, "setting", limits.max_records, type="maximumRecords")
    if limits.default_schema in SCHEMAS:  # "auto": each record's own MARC schema, no one default
        sub(config, "default", SCHEMAS[limits.default_schema].identifier, type="retrieveSchema")
    sub(config, "default", set_names[LOCAL_SET], type="contextSet")
    sub(config, "default", "cql.serverChoice", type="index")
    sub(config, "default", "=", type="relation")
    sub(config, "default", limits.default_terms, type="numberOfTerms")
    sub(config, "setting", limits.max_terms, type="maximumTerms")
    if limits.max_result_set_ttl:
        sub(config, "setting", limits.max_result_set_ttl, type="resultSetTTL")
        sub(config, "supports", type="resultSets")
    for relation in RELATIONS:
        sub(config, "supports", relation, type="relation")
    for modifier in RELATION_MODIFIERS:
        sub(config, "supports", modifier, type="relationModifier")
    sub(config, "supports", "*", type="maskingCharacter")
    sub(config, "supports", type="sort")
    sub(config, "supports", "string", type="recordXMLEscaping")
    return root
