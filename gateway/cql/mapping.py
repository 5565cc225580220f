"""CQL context sets and indexes → our indexes. The one table; SRU explain publishes it.

An index is resolved to (context set URI, name) through the prefixes in scope; unprefixed
indexes belong to libgate's own set, whose names are our index names.
"""

from __future__ import annotations

CQL_SET = "info:srw/cql-context-set/1/cql-v1.2"
DC_SET = "info:srw/cql-context-set/1/dc-v1.1"
BATH_SET = "http://zing.z3950.org/cql/bath/2.0/"
REC_SET = "info:srw/cql-context-set/2/rec-1.1"
LOCAL_SET = "info:srw/cql-context-set/libgate/local-1.0"

DEFAULT_PREFIXES: dict[str, str] = {
    "cql": CQL_SET,
    "dc": DC_SET,
    "bath": BATH_SET,
    "rec": REC_SET,
    "local": LOCAL_SET,
    "libgate": LOCAL_SET,
}

LOCAL_INDEXES = (
    "title",
    "author",
    "subject",
    "series",
    "publisher",
    "any",
    "isbn",
    "issn",
    "isrc",
    "id",
    "barcode",
    "clc",
    "language",
    "year",
)

# (context set, CQL index name lowercased) -> our index
INDEX_MAP: dict[tuple[str, str], str] = {
    **{(LOCAL_SET, name): name for name in LOCAL_INDEXES},
    (LOCAL_SET, "date"): "year",
    (CQL_SET, "serverchoice"): "any",
    (CQL_SET, "keywords"): "any",
    (CQL_SET, "allrecords"): "allrecords",  # `cql.allRecords = 1`: harvesting, every record
    (CQL_SET, "allindexes"): "any",  # every index we search: "any" covers the keyword fields
    (CQL_SET, "anyindexes"): "any",
    (DC_SET, "title"): "title",
    (DC_SET, "creator"): "author",
    (DC_SET, "contributor"): "author",
    (DC_SET, "subject"): "subject",
    (DC_SET, "publisher"): "publisher",
    (DC_SET, "date"): "year",
    (DC_SET, "language"): "language",
    (DC_SET, "identifier"): "id",
    (BATH_SET, "title"): "title",
    (BATH_SET, "keytitle"): "title",
    (BATH_SET, "seriestitle"): "series",
    (BATH_SET, "name"): "author",
    (BATH_SET, "author"): "author",
    (BATH_SET, "personalname"): "author",
    (BATH_SET, "corporatename"): "author",
    (BATH_SET, "conferencename"): "author",
    (BATH_SET, "subject"): "subject",
    (BATH_SET, "topicalsubject"): "subject",
    (BATH_SET, "publisher"): "publisher",
    (BATH_SET, "isbn"): "isbn",
    (BATH_SET, "issn"): "issn",
    (BATH_SET, "standardidentifier"): "isrc",
    (BATH_SET, "any"): "any",
    (REC_SET, "identifier"): "id",
}

# Sort indexes -> our sort keys.
SORT_MAP: dict[tuple[str, str], str] = {
    (LOCAL_SET, "title"): "title",
    (LOCAL_SET, "author"): "author",
    (LOCAL_SET, "year"): "date",
    (LOCAL_SET, "date"): "date",
    (LOCAL_SET, "relevance"): "relevance",
    (LOCAL_SET, "record"): "record",  # catalogue order: unranked, the cheapest
    (CQL_SET, "relevance"): "relevance",
    (DC_SET, "title"): "title",
    (DC_SET, "creator"): "author",
    (DC_SET, "date"): "date",
    (BATH_SET, "title"): "title",
    (BATH_SET, "name"): "author",
    (BATH_SET, "author"): "author",
}

# Indexes that limit the whole result rather than match a field: `local.available = true`
# (a copy on the shelf) is the catalogue's availability limit. Protocol layers accept them
# only ANDed at the top of a query.
LIMIT_MAP: dict[tuple[str, str], str] = {
    (LOCAL_SET, "available"): "available",
}
