"""`libgate union search` end to end against real targets started here: two Zebra servers
(Debian idzebra-2.0) holding overlapping parts of the same real CNMARC records (BNU), a third
Zebra as a legacy GBK target (the same records in GBK), a libgate searched over both Z39.50 and
SRU, a target that accepts and never answers, and a closed port. Checks the merge across
libraries, per-target timeouts with partial results on time, SRU and Z39.50 side by side, CJK
variant queries, the GBK path, and the JSON contract."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from marc.iso2709 import frame_records
from tests.conftest import FIXTURES
from tests.serve_support import free_port, running_gateway
from tests.zebra_support import ZEBRA, running_zebra

BNU = FIXTURES / "marc/real/cnmarc/bnu_cnmarc_10_utf8.iso"
BNU_GBK = FIXTURES / "marc/real/cnmarc/bnu_cnmarc_10_gbk.iso"  # the same records, in GBK
SILENT_SECONDS = 1.5


def libgate(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def part(path: Path, out: Path, numbers: range) -> Path:
    """Records `numbers` (1-based) of an ISO 2709 file, as a file of their own."""
    frames = list(frame_records(io.BytesIO(path.read_bytes())))
    out.write_bytes(b"".join(frames[n - 1].data + b"\x1d" for n in numbers))
    return out


class Silent:
    """A target that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


@pytest.fixture(scope="module")
def union_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not ZEBRA:
        pytest.fail("zebrasrv and zebraidx are missing: apt-get install idzebra-2.0 (.ci/run does)")
    home = tmp_path_factory.mktemp("union")
    sru_port, z_port, zebra_a, zebra_b = free_port(), free_port(), free_port(), free_port()
    zebra_gbk = free_port()
    closed = free_port()
    silent = Silent()
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "library.db"}"
[service]
workers = 1
[sip2]
listen = []
[sru]
listen = ["tcp:{sru_port}:interface=127.0.0.1"]
[z3950]
listen = ["tcp:{z_port}:interface=127.0.0.1"]
[notices]
enabled = false

[union]
timeout = 20

[[union.targets]]
name = "北京师范大学 A"
url = "z3950:127.0.0.1:{zebra_a}/Default"
agency_id = "ISIL:CN-BNU"
timeout = 10

[[union.targets]]
name = "北京师范大学 B"
url = "z3950:127.0.0.1:{zebra_b}/Default"
timeout = 10

[[union.targets]]
name = "上海图书馆"
url = "z3950:127.0.0.1:{z_port}/main"
agency_id = "ISIL:CN-SHL"
timeout = 10

[[union.targets]]
name = "上海图书馆 SRU"
url = "http://127.0.0.1:{sru_port}/main"
sru_version = "2.0"
timeout = 10

[[union.targets]]
name = "旧系统馆 GBK"
url = "z3950:127.0.0.1:{zebra_gbk}/Default"
encoding = "gbk"
timeout = 10

[[union.targets]]                     # the same legacy target, its encoding left out
name = "旧系统馆 未设编码"
url = "z3950:127.0.0.1:{zebra_gbk}/Default"
timeout = 10
enabled = false                       # searched only when named

[[union.targets]]
name = "不回答的馆"
url = "z3950:127.0.0.1:{silent.port}/main"
timeout = {SILENT_SECONDS}

[[union.targets]]
name = "关闭的馆"
url = "z3950:127.0.0.1:{closed}/main"
timeout = 5
""",
        encoding="utf-8",
    )
    for args in (
        ("init",),
        ("load", "--database", "main", str(FIXTURES / "marc/demo_main.iso")),
        ("load", "--database", "main", "--profile", "bnu", str(BNU)),
    ):
        assert libgate(config, *args).returncode == 0
    with ExitStack() as stack:
        stack.callback(silent.close)
        first = part(BNU, home / "a.iso", range(1, 7))
        second = part(BNU, home / "b.iso", range(4, 11))
        legacy = part(BNU_GBK, home / "gbk.iso", range(8, 11))  # also in B, as UTF-8
        for name in ("zebra-a", "zebra-b", "zebra-gbk"):
            (home / name).mkdir()
        stack.enter_context(running_zebra(home / "zebra-a", [first], zebra_a))
        stack.enter_context(running_zebra(home / "zebra-b", [second], zebra_b))
        stack.enter_context(
            running_zebra(
                home / "zebra-gbk", [legacy], zebra_gbk, encoding="gbk", fold_variants=True
            )
        )
        stack.enter_context(running_gateway(config, [sru_port, z_port]))
        yield config


def search(config: Path, *args: str) -> dict[str, Any]:
    done = libgate(config, "union", "search", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_search_across_every_library_merged_by_work(union_config: Path) -> None:
    found = search(union_config, "中国")
    states = {t["name"]: t["status"] for t in found["targets"]}
    assert states == {
        "北京师范大学 A": "ok",
        "北京师范大学 B": "ok",
        "上海图书馆": "ok",
        "上海图书馆 SRU": "ok",
        "旧系统馆 GBK": "ok",
        "不回答的馆": "timeout",
        "关闭的馆": "failed",
    }
    by_target = {t["name"]: t for t in found["targets"]}
    assert by_target["不回答的馆"]["ms"] >= SILENT_SECONDS * 1000
    assert "refused" in by_target["关闭的馆"]["error"]
    libraries_of = {r["title"]: {s["target"] for s in r["sources"]} for r in found["records"]}
    # Records 4-6 are in both Zebras and in libgate (loaded whole): one work each, held by all.
    everywhere = [
        t for t, held in libraries_of.items() if {"北京师范大学 A", "北京师范大学 B"} <= held
    ]
    assert everywhere, libraries_of
    for title in everywhere:
        assert {"上海图书馆", "上海图书馆 SRU"} <= libraries_of[title]
    # No work is listed twice.
    assert len(libraries_of) == len(found["records"])


def test_the_silent_library_costs_its_timeout_and_nothing_else(union_config: Path) -> None:
    found = search(union_config, "--targets", "上海图书馆,不回答的馆", "明代")
    slow = {t["name"]: t for t in found["targets"]}
    assert slow["不回答的馆"]["status"] == "timeout"
    assert slow["上海图书馆"]["status"] == "ok" and slow["上海图书馆"]["hits"] >= 1
    assert slow["上海图书馆"]["ms"] < slow["不回答的馆"]["ms"]
    assert any("明代" in r["title"] for r in found["records"])


def test_sru_and_z3950_agree_and_a_variant_query_finds_the_simplified_title(
    union_config: Path,
) -> None:
    found = search(union_config, "--targets", "上海图书馆,上海图书馆 SRU", "劍橋 明代")
    hits = {t["name"]: t["hits"] for t in found["targets"]}
    assert hits["上海图书馆"] == hits["上海图书馆 SRU"] >= 1
    [record] = [r for r in found["records"] if "剑桥中国明代史" in r["title"]]
    assert {s["target"] for s in record["sources"]} == {"上海图书馆", "上海图书馆 SRU"}
    assert {s["record_id"] for s in record["sources"]} == {"SHL000000002"}


def test_an_index_a_target_lacks_is_its_diagnostic(union_config: Path) -> None:
    found = search(union_config, "--targets", "北京师范大学 A,上海图书馆", "barcode=54122100600011")
    states = {t["name"]: (t["status"], t["error"]) for t in found["targets"]}
    assert states["上海图书馆"][0] == "ok"
    assert states["北京师范大学 A"][0] == "diagnostic" and "114" in states["北京师范大学 A"][1]


def test_unknown_targets_and_an_empty_config_are_told(union_config: Path, tmp_path: Path) -> None:
    done = libgate(union_config, "union", "search", "--targets", "nowhere", "x")
    assert done.returncode != 0 and "unknown target nowhere" in done.stderr
    bare = tmp_path / "bare.toml"
    bare.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "x.db"}"\n', encoding="utf-8")
    done = libgate(bare, "union", "search", "x")
    assert done.returncode != 0 and "[[union.targets]]" in done.stderr


def test_a_gbk_target_is_searched_in_gbk_and_its_works_merge_with_the_utf8_copies(
    union_config: Path,
) -> None:
    found = search(union_config, "--targets", "北京师范大学 B,旧系统馆 GBK", "发展状况与趋势")
    hits = {t["name"]: (t["status"], t["hits"]) for t in found["targets"]}
    assert hits == {"北京师范大学 B": ("ok", 1), "旧系统馆 GBK": ("ok", 1)}
    [work] = found["records"]  # the GBK record and the UTF-8 one are one work (same ISBN)
    assert work["title"] == "1999 年中国发展状况与趋势"
    assert (work["author"], work["year"]) == ("季野", 1999)
    assert work["isbn"] == "9787801275554"
    assert {s["target"] for s in work["sources"]} == {"北京师范大学 B", "旧系统馆 GBK"}
    # A traditional-character query goes out in GBK (which has the traditional forms) and the
    # target's folding index finds the simplified title; libgate folds it its own way.
    found = search(union_config, "--targets", "旧系统馆 GBK,上海图书馆", "發展狀況與趨勢")
    hits = {t["name"]: (t["status"], t["hits"]) for t in found["targets"]}
    assert hits == {"旧系统馆 GBK": ("ok", 1), "上海图书馆": ("ok", 1)}
    [work] = found["records"]
    assert work["title"] == "1999 年中国发展状况与趋势"
    assert {s["target"] for s in work["sources"]} == {"旧系统馆 GBK", "上海图书馆"}


def test_without_its_encoding_a_gbk_target_finds_no_chinese(union_config: Path) -> None:
    both = "旧系统馆 GBK,旧系统馆 未设编码"

    def outcome(query: str) -> tuple[dict[str, tuple[str, int]], dict[str, str], list[Any]]:
        found = search(union_config, "--targets", both, query)
        hits = {t["name"]: (t["status"], t["hits"]) for t in found["targets"]}
        errors = {t["name"]: t["error"] for t in found["targets"]}
        return hits, errors, found["records"]

    # Sent as UTF-8, the words are other characters to a target that reads GBK: nothing found,
    # or (here the bytes end in half a GBK character) refused as terms it cannot translate.
    hits, _, records = outcome("发展报告")
    assert hits == {"旧系统馆 GBK": ("ok", 2), "旧系统馆 未设编码": ("ok", 0)}
    assert {s["target"] for r in records for s in r["sources"]} == {"旧系统馆 GBK"}
    hits, errors, _ = outcome("发展状况与趋势")
    assert hits == {"旧系统馆 GBK": ("ok", 1), "旧系统馆 未设编码": ("diagnostic", 0)}
    assert "1072" in errors["旧系统馆 未设编码"]
    # Words that are ASCII are the same bytes in both: then the unset target's records come,
    # and they read right all the same, by their bytes (not UTF-8, so GB18030).
    hits, _, records = outcome("zhuang kuang yu qu shi")
    assert hits == {"旧系统馆 GBK": ("ok", 1), "旧系统馆 未设编码": ("ok", 1)}
    [work] = records
    assert work["title"] == "1999 年中国发展状况与趋势"
    assert {s["target"] for s in work["sources"]} == set(both.split(","))
