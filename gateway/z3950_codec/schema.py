"""The Z39.50 ASN.1 module (`z3950.asn`) compiled by asn1tools for BER, and the few helpers
both directions of the codec need: APDU names, the protocol version and option bit strings.

Shared by the target's codec (z3950/codec.py: requests in, responses out) and the origin's
(gateway/z3950_codec/origin.py: requests out, responses in), so both read one schema.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import asn1tools

SCHEMA_FILE = Path(__file__).with_name("z3950.asn")

# APDU tag numbers (the PDU CHOICE) → the standard's names.
APDU_NAMES: dict[int, str] = {
    20: "initRequest",
    21: "initResponse",
    22: "searchRequest",
    23: "searchResponse",
    24: "presentRequest",
    25: "presentResponse",
    26: "deleteResultSetRequest",
    27: "deleteResultSetResponse",
    28: "accessControlRequest",
    29: "accessControlResponse",
    30: "resourceControlRequest",
    31: "resourceControlResponse",
    32: "triggerResourceControlRequest",
    33: "resourceReportRequest",
    34: "resourceReportResponse",
    35: "scanRequest",
    36: "scanResponse",
    43: "sortRequest",
    44: "sortResponse",
    45: "segmentRequest",
    46: "extendedServicesRequest",
    47: "extendedServicesResponse",
    48: "close",
    49: "duplicateDetectionRequest",
    50: "duplicateDetectionResponse",
}
VERSION_BITS = {"1": 0, "2": 1, "3": 2}


class ApduError(ValueError):
    """Bytes that are not a Z39.50 APDU we can read: the peer broke the protocol."""


@functools.cache
def schema() -> Any:
    """The compiled module (about 0.15 s, once per process)."""
    compiled = asn1tools.compile_files(str(SCHEMA_FILE), "ber")
    _write_true_as_one(compiled)
    return compiled


def _true_as_one(data: bool, values: Any = None) -> bytearray:
    return bytearray((1 if data else 0,))


def _write_true_as_one(compiled: Any) -> None:
    """BER lets TRUE be any non-zero byte; asn1tools writes 0xFF (DER's choice), and YAZ reads
    the byte as a signed char, so yaz-client shows OPAC's availableNow as -1 and code testing
    `== 1` sees false. YAZ and Zebra write 0x01; so do we, on our compiled types only (the
    Boolean nodes of this schema's type graph, not asn1tools' class)."""
    seen: set[int] = set()
    stack = [compiled_type._type for compiled_type in compiled.types.values()]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, asn1tools.codecs.ber.Boolean):
            node.encode_content = _true_as_one
        for attribute in ("root_members", "additions", "members"):
            stack.extend(getattr(node, attribute, None) or ())
        for attribute in ("element_type", "inner"):
            stack.append(getattr(node, attribute, None))


def read_bits(value: tuple[bytes, int], names: dict[str, int]) -> frozenset[str]:
    """The names whose bits are set in a decoded BIT STRING."""
    data, count = value
    found = set()
    for name, bit in names.items():
        if bit < count and bit // 8 < len(data) and data[bit // 8] & (0x80 >> (bit % 8)):
            found.add(name)
    return frozenset(found)


def bit_string(
    present: frozenset[str] | frozenset[int], names: dict[str, int]
) -> tuple[bytes, int]:
    """A BIT STRING as asn1tools writes it, with the bits of the names in `present` set."""
    width = max(names.values()) + 1
    data = bytearray((width + 7) // 8)
    for name, bit in names.items():
        if name in present:
            data[bit // 8] |= 0x80 >> (bit % 8)
    return bytes(data), width


def text(value: bytes | None) -> str:
    """A name or label: UTF-8, or whatever it is with replacement characters (never fails)."""
    if value is None:
        return ""
    return bytes(value).decode("utf-8", "replace")
