"""Bib-1 attributes ↔ our indexes and query model: the configuration, as one set of tables,
read by the target (z3950/rpn.py: RPN → query) and the origin (from_query.py: query → RPN).

Bib-1 (1.2.840.10003.3.1) is the only attribute set served. Use attributes not listed are
diagnostic 114; local numbers 9001-9003 name the indexes Bib-1 has no number for. Values of the
other attribute types that are not listed get their type's diagnostic (117-122).
"""

from __future__ import annotations

# Use (type 1) → index (gateway/catalogue/indexes.py). The numbers the issue asks for first,
# then the Bib-1 synonyms clients send for the same access points.
USE_ATTRIBUTES: dict[int, str] = {
    4: "title",
    1003: "author",
    21: "subject",
    5: "series",
    1018: "publisher",
    7: "isbn",
    8: "issn",
    12: "id",  # local number: the 001 control number
    1016: "any",
    31: "year",  # date of publication
    54: "language",  # code-language (ISO 639-2: chi, jpn, eng)
    # Bib-1 synonyms
    1: "author",  # personal name
    2: "author",  # corporate name
    3: "author",  # conference name
    1002: "author",  # name
    1004: "author",  # author-name-personal
    1005: "author",  # author-name-corporate
    1006: "author",  # author-name-conference
    6: "title",  # title-uniform
    33: "title",  # title-key
    35: "title",  # title-parallel
    20: "clc",  # local classification: a Chinese library's is the CLC (中图法)
    30: "year",  # date
    1017: "any",  # server choice
    1035: "any",  # anywhere
    # Local (not in Bib-1): documented in the README's Z39.50 section.
    9001: "isrc",
    9002: "clc",
    9003: "barcode",
}
DEFAULT_USE = "any"  # no use attribute: the server's choice

# Index → the use attribute an origin sends for it: the first number of USE_ATTRIBUTES (the
# one Zebra's and YAZ's bib1.att name for the access point), so a partner reads it as we do.
INDEX_USE: dict[str, int] = {index: use for use, index in reversed(USE_ATTRIBUTES.items())}

# Relation (type 2) → query model relation. 102 (relevance) is what we always do.
RELATIONS: dict[int, str] = {1: "<", 2: "<=", 3: "=", 4: ">=", 5: ">", 6: "<>", 102: "="}
DEFAULT_RELATION = 3

# Position (type 3): 1 first in field, 2 first in subfield, 3 any position.
ANY_POSITION = 3
FIRST_POSITIONS = frozenset({1, 2})

# Structure (type 4) → how a keyword term's words combine.
STRUCTURE_WORDS: dict[int, str] = {
    1: "adj",  # phrase
    2: "all",  # word
    6: "all",  # word list (AND, as Zebra)
    105: "any",  # free-form text (OR)
    106: "any",  # document text (OR)
}
STRUCTURE_WHOLE = frozenset({3, 108})  # key, string: the whole heading / value
STRUCTURE_DATES = frozenset({4, 5, 109})  # year, date (normalised), numeric string
STRUCTURE_LOCAL_NUMBER = 107

# Truncation (type 5)
TRUNCATION_RIGHT = 1
TRUNCATION_NONE = 100
TRUNCATION_HASH = 101  # process # in search term: # = any characters (as Zebra)
TRUNCATION_Z3958 = 104  # Z39.58 masking: ? = any characters, # = one character

# Completeness (type 6): 1 incomplete subfield (default), 2 complete subfield, 3 complete field.
COMPLETE = frozenset({2, 3})

KNOWN_TYPES = frozenset({1, 2, 3, 4, 5, 6})

# Scan lists (browse indexes) and the Sort service's keys, by use attribute.
SORT_KEYS: dict[int, str] = {4: "title", 1003: "author", 1: "author", 31: "date", 30: "date"}
SORT_FIELDS: dict[str, str] = {  # sortfield names a client may send instead of attributes
    "title": "title",
    "ti": "title",
    "author": "author",
    "au": "author",
    "date": "date",
    "year": "date",
    "relevance": "relevance",
}
