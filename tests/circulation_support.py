"""A small library for circulation tests: three titles, copies, readers, a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.catalogue.loading.loader import Loader, LoadOptions
from gateway.circulation.clock import FixedClock
from gateway.circulation.engine import Engine
from gateway.circulation.pins import hash_pin
from gateway.circulation.policy import Policy
from gateway.config import BUILTIN_PROFILES, DatabaseSettings, settings_from_dict
from gateway.store import Store
from marc.record import Field
from tests.support import cnmarc, iso

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTINGS = settings_from_dict(
    {
        "patron_categories": [
            {"name": "本科生", "max_loans": 3, "max_holds": 2, "loan_days": 30, "renewals": 1},
            {"name": "教师", "max_loans": 40, "max_holds": 10, "loan_days": 90, "renewals": 3},
        ],
        "item_types": [
            {"name": "普通外借资料", "circulating": True},
            {"name": "参考外借资料", "circulating": True, "ill_lendable": True},
            {"name": "阅览资料", "circulating": False},
        ],
        "locations": [
            {"name": "中文书库", "desk": "二楼借书处"},
            {"name": "综合阅览室-1楼", "desk": "一楼借书处"},
        ],
        "circulation": {"default_category": "本科生", "unknown_item_types_circulate": False},
    }
)

# title -> copies (barcode, location, type)
TITLES = {
    "T-MING": [("M1", "中文书库", "普通外借资料"), ("M2", "综合阅览室-1楼", "参考外借资料")],
    "T-ONE": [("O1", "中文书库", "普通外借资料")],
    "T-READ": [("R1", "中文书库", "阅览资料")],
    "T-TWO": [("W1", "中文书库", "普通外借资料"), ("W2", "中文书库", "普通外借资料")],
    "T-X": [("X1", "中文书库", "普通外借资料")],
}
READERS = [
    ("A", "甲", "本科生", "a@example.cn"),
    ("B", "乙", "本科生", "b@example.cn"),
    ("C", "丙", "本科生", ""),
    ("D", "丁", "教师", "d@example.cn"),
]


def build_library(store: Store, tmp_path: Path) -> tuple[Engine, FixedClock]:
    records = []
    for record_id, copies in TITLES.items():
        record = cnmarc(record_id, f"书名{record_id}")
        for barcode, location, item_type in copies:
            record.fields.append(
                Field(
                    "995",
                    "  ",
                    [
                        ("b", "上海图书馆"),
                        ("e", location),
                        ("k", "K1/1"),
                        ("r", item_type),
                        ("s", "归还"),
                        ("f", barcode),
                    ],
                )
            )
        records.append(record)
    path = tmp_path / "library.iso"
    path.write_bytes(iso(*records))
    profile = next(p for p in BUILTIN_PROFILES if p.name == "libgate")
    Loader(store, LoadOptions(database=DatabaseSettings(name="main"), profile=profile)).load([path])
    with store.write() as tx:
        for barcode, name, category, email in READERS:
            tx.insert(
                "INSERT INTO patrons (barcode, name, pin_hash, category, email) VALUES (?, ?, ?, ?, ?)",
                (barcode, name, hash_pin("0000") if barcode == "A" else "", category, email),
            )
    clock = FixedClock(START)
    return Engine(store, Policy.from_settings(SETTINGS), clock), clock
