"""Building Z39.50 requests as a client would (with our own compiled schema) and a small
catalogue for session and protocol tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.policy import Policy
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, Settings
from gateway.store import Store
from gateway.z3950_codec import oids
from tests.conftest import FIXTURES, REAL
from tests.support import cnmarc, iso
from z3950 import codec
from z3950.service import CatalogueService

PROFILES = {p.name: p for p in BUILTIN_PROFILES}
SETTINGS = Settings()


def load_catalogue(store: Store, tmp_path: Path) -> None:
    """main: the demo records, 猫的历史 (two copies) and a MARC 21 record; japanese: the
    Japanese CNMARC catalogue and 吾輩は猫である."""
    extra_main = tmp_path / "z_main.iso"
    extra_main.write_bytes(iso(cnmarc("Z-CAT-ZH", "猫的历史", barcodes=("Z-C1", "Z-C2"))))
    extra_japanese = tmp_path / "z_japanese.iso"
    extra_japanese.write_bytes(iso(cnmarc("Z-CAT-JA", "吾輩は猫である", barcodes=("Z-J1",))))
    main, japanese = DatabaseSettings(name="main"), DatabaseSettings(name="japanese")
    for database, path, profile in (
        (main, FIXTURES / "marc" / "demo_main.iso", "libgate"),
        (main, extra_main, "libgate"),
        (main, REAL / "cjk" / "marccharset_cjk3.marc", "none"),
        (japanese, FIXTURES / "marc" / "japanese" / "japanese_cnmarc.iso", "libgate"),
        (japanese, extra_japanese, "libgate"),
    ):
        Loader(store, LoadOptions(database=database, profile=PROFILES[profile])).load([path])


def catalogue_service(store: Store) -> CatalogueService:
    engine = Engine(
        store, Policy.from_settings(SETTINGS), FixedClock(datetime(2026, 3, 2, tzinfo=UTC))
    )
    return CatalogueService(store, engine, SETTINGS.databases)


# --- requests --------------------------------------------------------------------------------


def _bits(names: list[str], table: dict[str, int]) -> tuple[bytes, int]:
    width = max(table.values()) + 1
    data = bytearray((width + 7) // 8)
    for name in names:
        data[table[name] // 8] |= 0x80 >> (table[name] % 8)
    return bytes(data), width


def init(
    *, charset: str | None = None, versions: tuple[int, ...] = (1, 2, 3), size: int = 1 << 20
) -> bytes:
    from gateway.z3950_codec.messages import OPTION_BITS

    value: dict[str, Any] = {
        "protocolVersion": _bits([str(v) for v in versions], {str(n): n - 1 for n in range(1, 9)}),
        "options": _bits(
            ["search", "present", "delSet", "scan", "sort", "namedResultSets", "negotiationModel"],
            OPTION_BITS,
        ),
        "preferredMessageSize": size,
        "exceptionalRecordSize": size,
        "implementationName": b"libgate tests",
    }
    if charset is not None:
        proposal = codec.schema().encode(
            "CharSetandLanguageNegotiation",
            (
                "proposal",
                {
                    "proposedCharSets": [
                        (
                            "private",
                            (
                                "externallySpecified",
                                {"encoding": ("octet-aligned", charset.encode())},
                            ),
                        )
                    ]
                },
            ),
        )
        value["otherInfo"] = [
            {
                "information": (
                    "externallyDefinedInfo",
                    {
                        "direct-reference": oids.CHARSET_NEGOTIATION_3,
                        "encoding": ("single-ASN1-type", bytes(proposal)),
                    },
                )
            }
        ]
    return bytes(codec.schema().encode("PDU", ("initRequest", value)))


def term(text: str | bytes, **attributes: int) -> tuple[str, Any]:
    """An RPN operand: `term("猫", use=4, structure=1)`; attribute names are the Bib-1 types."""
    types = {
        "use": 1,
        "relation": 2,
        "position": 3,
        "structure": 4,
        "truncation": 5,
        "completeness": 6,
    }
    elements = [
        {"attributeType": types[name], "attributeValue": ("numeric", value)}
        for name, value in attributes.items()
    ]
    data = text.encode() if isinstance(text, str) else text
    return ("op", ("attrTerm", {"attributes": elements, "term": ("general", data)}))


def boolean(op: str, left: tuple[str, Any], right: tuple[str, Any]) -> tuple[str, Any]:
    return ("rpnRpnOp", {"rpn1": left, "rpn2": right, "op": (op, None)})


def search(
    rpn: tuple[str, Any],
    *,
    database: str = "main",
    name: str = "default",
    replace: bool = True,
    small: int = 0,
    large: int = 1,
    medium: int = 0,
    syntax: str | None = None,
    element_set: str | None = None,
    attribute_set: str = oids.BIB1,
    reference: bytes | None = None,
) -> bytes:
    value: dict[str, Any] = {
        "smallSetUpperBound": small,
        "largeSetLowerBound": large,
        "mediumSetPresentNumber": medium,
        "replaceIndicator": replace,
        "resultSetName": name.encode(),
        "databaseNames": [database.encode()],
        "query": ("type-1", {"attributeSet": attribute_set, "rpn": rpn}),
    }
    if reference is not None:
        value["referenceId"] = reference
    if syntax is not None:
        value["preferredRecordSyntax"] = syntax
    if element_set is not None:
        value["smallSetElementSetNames"] = ("genericElementSetName", element_set.encode())
        value["mediumSetElementSetNames"] = ("genericElementSetName", element_set.encode())
    return bytes(codec.schema().encode("PDU", ("searchRequest", value)))


def present(
    start: int = 1,
    count: int = 1,
    *,
    name: str = "default",
    syntax: str | None = oids.UNIMARC,
    element_set: str | None = None,
) -> bytes:
    value: dict[str, Any] = {
        "resultSetId": name.encode(),
        "resultSetStartPoint": start,
        "numberOfRecordsRequested": count,
    }
    if element_set is not None:
        value["recordComposition"] = ("simple", ("genericElementSetName", element_set.encode()))
    if syntax is not None:
        value["preferredRecordSyntax"] = syntax
    return bytes(codec.schema().encode("PDU", ("presentRequest", value)))


def scan(
    text: str, use: int, *, database: str = "main", count: int = 5, position: int = 1
) -> bytes:
    value = {
        "databaseNames": [database.encode()],
        "attributeSet": oids.BIB1,
        "termListAndStartPoint": {
            "attributes": [{"attributeType": 1, "attributeValue": ("numeric", use)}],
            "term": ("general", text.encode()),
        },
        "numberOfTermsRequested": count,
        "preferredPositionInResponse": position,
    }
    return bytes(codec.schema().encode("PDU", ("scanRequest", value)))


def sort(source: str, target: str, *keys: tuple[int, int]) -> bytes:
    """Sort `source` into `target` by (use attribute, 0 ascending | 1 descending) keys."""
    sequence = [
        {
            "sortElement": (
                "generic",
                (
                    "sortAttributes",
                    {
                        "id": oids.BIB1,
                        "list": [{"attributeType": 1, "attributeValue": ("numeric", use)}],
                    },
                ),
            ),
            "sortRelation": relation,
            "caseSensitivity": 1,
        }
        for use, relation in keys
    ]
    value = {
        "inputResultSetNames": [source.encode()],
        "sortedResultSetName": target.encode(),
        "sortSequence": sequence,
    }
    return bytes(codec.schema().encode("PDU", ("sortRequest", value)))


def delete(*names: str) -> bytes:
    value: dict[str, Any] = {"deleteFunction": 1 if not names else 0}
    if names:
        value["resultSetList"] = [n.encode() for n in names]
    return bytes(codec.schema().encode("PDU", ("deleteResultSetRequest", value)))


def close(reason: int = 0) -> bytes:
    return bytes(codec.schema().encode("PDU", ("close", {"closeReason": reason})))


def answer(data: bytes) -> tuple[str, dict[str, Any]]:
    """A response APDU decoded with the schema (as a client would read it)."""
    name, value = codec.schema().decode("PDU", data)
    return name, value


def diagnostic(value: dict[str, Any]) -> tuple[int, bytes]:
    """(condition, addinfo) of a search/present response's non-surrogate diagnostic."""
    kind, diag = value["records"]
    assert kind == "nonSurrogateDiagnostic", kind
    return diag["condition"], diag["addinfo"][1]
