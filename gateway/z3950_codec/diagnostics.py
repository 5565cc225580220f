"""Bib-1 diagnostics (diagnostic set 1.2.840.10003.4.1): the numbers libgate sends, as one
table, and the typed diagnostic its APDUs carry. Shared by the target (z3950/) and the origin
(union/): a partner's diagnostic is read with the same table (`message_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Condition → meaning, as in the Bib-1 diagnostic registry (only the ones libgate sends).
BIB1: dict[int, str] = {
    1: "Permanent system error",
    2: "Temporary system error",
    3: "Unsupported search",
    5: "Too many argument words",
    6: "Too many boolean operators",
    11: "Too many characters in search statement",
    13: "Present request out of range",
    14: "System error in presenting records",
    16: "Record exceeds preferred-message-size",
    17: "Record exceeds exceptional-record-size",
    18: "Result set not supported as a search term",
    21: "Result set exists and replace indicator off",
    23: "Specified combination of databases not supported",
    25: "Specified element set name not valid for specified database",
    28: "Result set is in use",
    30: "Specified result set does not exist",
    100: "Unspecified error",
    107: "Query type not supported",
    108: "Malformed query",
    109: "Database unavailable",
    110: "Operator unsupported",
    111: "Too many databases specified",
    113: "Unsupported attribute type",
    114: "Unsupported Use attribute",
    116: "Use attribute required but not supplied",
    117: "Unsupported Relation attribute",
    118: "Unsupported Structure attribute",
    119: "Unsupported Position attribute",
    120: "Unsupported Truncation attribute",
    121: "Unsupported Attribute Set",
    122: "Unsupported Completeness attribute",
    123: "Unsupported attribute combination",
    125: "Malformed search term",
    126: "Illegal term value for attribute",
    128: "Illegal result set name",
    205: "Only zero step size supported for Scan",
    207: "Cannot sort according to sequence",
    208: "No result set name supplied on Sort",
    210: "Database specific sort not supported",
    211: "Too many sort keys",
    213: "Unsupported missing data action",
    214: "Illegal sort relation",
    221: "ES: extended service type not supported",
    228: "Scan: malformed scan",
    229: "Term type not supported",
    230: "Sort: too many input results",
    233: "Scan: unsupported value of position-in-response",
    235: "Database does not exist",
    237: "Sort: illegal sort",
    238: "Record not available in requested syntax",
    239: "Record syntax not supported",
    243: "Present: additional-ranges parameter not supported",
    244: "Present: comp-spec parameter not supported",
    245: "Type-1 query: restriction ('resultAttr') operand not supported",
    246: "Type-1 query: 'complex' attributeValue not supported",
    1001: "Malformed APDU",
}


@dataclass(frozen=True)
class Diagnostic:
    """A Bib-1 diagnostic: `condition` from BIB1, `addinfo` names what was refused (an
    attribute value, a database, a syntax) as YAZ-based clients print it."""

    condition: int
    addinfo: str = ""

    def __post_init__(self) -> None:
        if self.condition not in BIB1:
            raise ValueError(f"Bib-1 diagnostic {self.condition} is not in the table")

    @property
    def message(self) -> str:
        return BIB1[self.condition]


def message_of(condition: int) -> str:
    """The registry's words for a condition, also for numbers libgate never sends itself (a
    partner's diagnostic)."""
    return BIB1.get(condition, f"Bib-1 diagnostic {condition}")
