"""What a reader types in a search box, read as a query: the one rule for every search box.

`libgate search`, the portal and union search all read queries here (SRU takes strict CQL,
as the standard says):

- Text that is valid CQL stays CQL (`title=红楼梦`, `dc.creator="夏目漱石" and year>2000`).
- Otherwise it is free text: the words must all match, each in any keyword index; a quoted
  phrase is a phrase (its words adjacent, in order); a `*` at the end of a word asks for
  words starting with it. So `剑桥 明代`, `Cafe society` and `夏目 漱石` search as readers
  mean them. CJK words typed apart stay words (`明代 政治` is both words, anywhere), also
  when they are a title's word spaces as LC records show them (`鲁 迅`): the planner ranks
  them as the phrase they make, and MARC21 records are indexed without those spaces.
- A lone quoted phrase (`"夏目 漱石"`) is valid CQL, but a reader means the phrase: it is read
  as free text.
- Text that fails as CQL but plainly tried to be CQL (an index and a relation such as
  `title=`, `author <>`) is not guessed at: the reader is told, in plain words, what is wrong.

Each word is then read as written, as pinyin, initials or kana (`gateway.catalogue.word_forms`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.catalogue.indexes import INDEXES
from gateway.catalogue.query import (
    MAX_TERMS,
    Boolean,
    EmptyTerm,
    Node,
    Query,
    QueryError,
    QueryTooComplex,
    Term,
    UnknownIndex,
    UnsupportedRelation,
)
from gateway.cql.lexer import CQLSyntaxError, tokenize
from gateway.cql.to_query import UnknownPrefix, cql_to_query

CQL = "cql"
FREE_TEXT = "free text"

# A relation symbol after an index: the reader was writing CQL. (Words alone can parse as CQL
# too: `Cambridge history China` is index Cambridge, relation "history", term China; a query
# like that which then fails as CQL is read as the words it is.)
_CQL_ATTEMPT = re.compile(r"(?:^|[\s(])[A-Za-z][\w.]*\s*(?:==|<>|<=|>=|=|<|>)")


@dataclass(frozen=True)
class ReadQuery:
    """A query as it was read: the query model, and whether it was CQL or free text."""

    text: str
    query: Query
    syntax: str  # CQL | FREE_TEXT


class QuerySyntaxError(QueryError):
    """Text that tried to be CQL and is not; the message is for readers."""

    code = "query_syntax"


def _plain_cql_error(text: str, error: CQLSyntaxError) -> str:
    near = text[error.position : error.position + 12].strip()
    where = f" near “{near}”" if near else " at the end"
    return (
        f"The search could not be read: {error.message}{where}. Searches like title=红楼梦 "
        "need an index, a relation and a term; to search for words, type just the words, "
        "and put quotes around a phrase."
    )


def words_in(text: str, index: str = "any") -> Node:
    """Words and quoted phrases in one index ("any": every keyword index), ANDed: free text,
    and each field of the portal's basic and advanced search. Bare words stay together in one
    term, so a run of pinyin syllables can be read as one phrase; a truncated word is a term
    of its own."""
    parts: list[Term] = []
    bare: list[str] = []
    for match in re.finditer(r'"([^"]*)"?|(\S+)', text):
        phrase, word = match.group(1), match.group(2)
        if phrase is not None:
            if phrase.strip():
                parts.append(Term(index, "adj", phrase.strip()))
            continue
        if word.endswith("*") and len(word.rstrip("*")) > 0:
            parts.append(Term(index, "all", word.rstrip("*"), truncation="right"))
        else:
            bare.append(word)
    if bare:
        parts.insert(0, Term(index, "all", " ".join(bare)))
    if not parts:
        raise EmptyTerm("There is nothing to search for: type a word or two.")
    if len(parts) > MAX_TERMS:  # before a tree is built that later steps would walk
        raise QueryTooComplex(f"A search may have at most {MAX_TERMS} words and phrases.")
    node: Node = parts[0]
    for part in parts[1:]:
        node = Boolean("and", node, part)
    return node


def _lone_phrase(text: str) -> bool:
    try:
        tokens = tokenize(text)
    except CQLSyntaxError:
        return False
    return len(tokens) == 2 and tokens[0].kind == "string" and " " in tokens[0].text.strip()


def read_query(text: str) -> ReadQuery:
    """Read a search box's text; raises a QueryError whose message is meant for readers."""
    stripped = text.strip()
    if not stripped:
        raise EmptyTerm("There is nothing to search for: type a word or two.")
    if not _lone_phrase(stripped):
        try:
            return ReadQuery(text, cql_to_query(stripped), CQL)
        except CQLSyntaxError as error:
            if _CQL_ATTEMPT.search(stripped):
                raise QuerySyntaxError(_plain_cql_error(stripped, error)) from None
        except (UnknownIndex, UnsupportedRelation, UnknownPrefix) as error:
            if not _CQL_ATTEMPT.search(stripped):
                pass  # words that happen to parse as CQL: read as free text below
            elif isinstance(error, UnknownIndex):
                searchable = ", ".join(name for name in INDEXES if name != "allrecords")
                raise UnknownIndex(
                    f"There is no index {error.index!r} to search in. Indexes: {searchable}.",
                    index=error.index,
                ) from None
            else:
                raise
    return ReadQuery(text, Query(words_in(stripped)), FREE_TEXT)
