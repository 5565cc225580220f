"""Z39.50 with real clients: YAZ's yaz-client and zoomsh (Debian `yaz`) against `libgate serve`
running as its own process on a real TCP port, on both catalogue databases, with CJK terms.

Every operation (Init with and without character set negotiation, Search with and without
piggy-backed records, Present in every record syntax, Scan, Sort, Delete, Close) and the
diagnostics for what we do not serve; the connection survives every refusal. A checkout made
with the staff CLI shows in the next OPAC record.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import main as libgate
from tests.conftest import FIXTURES, REAL
from tests.serve_support import free_port, running_gateway
from tests.support import cnmarc, iso

YAZ = shutil.which("yaz-client") and shutil.which("zoomsh")
pytestmark = pytest.mark.skipif(
    not YAZ, reason="yaz-client and zoomsh (Debian package yaz) are not installed"
)

CAT_HISTORY = cnmarc("Z-CAT-ZH", "猫的历史", barcodes=("Z-C1", "Z-C2"), year="2005")
CAT_NOVEL = cnmarc("Z-CAT-JA", "吾輩は猫である", barcodes=("Z-J1",), year="1905")
MARC21_FILE = REAL / "cjk" / "marccharset_cjk3.marc"  # MARC 21, MARC-8: 鲁迅与浙东文化


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """(port, config) of a running `libgate serve` with both catalogues loaded."""
    home = tmp_path_factory.mktemp("z3950")
    port = free_port()
    config = home / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "z.db"}"

[service]
workers = 2  # sessions through several workers sharing the port (issue 12)

[sru]
listen = []

[sip2]
listen = []

[z3950]
listen = ["tcp:{port}:interface=127.0.0.1"]
idle_timeout = 60
""",
        encoding="utf-8",
    )
    (home / "main_extra.iso").write_bytes(iso(CAT_HISTORY))
    (home / "japanese_extra.iso").write_bytes(iso(CAT_NOVEL))
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["load", "--database", "main", str(home / "main_extra.iso")],
        ["load", "--database", "main", "--profile", "none", str(MARC21_FILE)],
        ["load", "--database", "japanese", str(FIXTURES / "marc/japanese/japanese_cnmarc.iso")],
        ["load", "--database", "japanese", str(home / "japanese_extra.iso")],
        ["patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")],
    ):
        assert libgate(["--config", str(config), *args]) == 0
    with running_gateway(config, [port]):
        yield port, config


def yaz(
    port: int, database: str, *commands: str, negotiate: bool = True, encoding: str = "utf-8"
) -> str:
    """yaz-client running `commands`; `encoding`: the bytes it is given (and so sends)."""
    script = (["charset UTF-8"] if negotiate else []) + [
        f"open tcp:127.0.0.1:{port}/{database}",
        *commands,
        "close",
        "quit",
    ]
    done = subprocess.run(
        ["yaz-client", "-f", "/dev/stdin"],
        input=("\n".join(script) + "\n").encode(encoding),
        capture_output=True,
        timeout=30,
    )
    return (done.stdout + done.stderr).decode("utf-8", "replace")


def zoomsh(port: int, database: str, *commands: str) -> str:
    done = subprocess.run(
        ["zoomsh", "set charset UTF-8", f"connect 127.0.0.1:{port}/{database}", *commands, "quit"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout + done.stderr


def hits(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"Number of hits: (\d+)", output)]


def diagnostics(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"^\s+\[(\d+)\] ", output, re.MULTILINE)]


def test_init_search_present_unimarc_close_on_both_databases(gateway: tuple[int, Path]) -> None:
    port, _ = gateway
    main = yaz(port, "main", "find @attr 1=4 历史", "format unimarc", "show 1+2")
    assert "Connection accepted by v3 target." in main
    assert "Accepted character set : UTF-8" in main
    assert hits(main) == [2]
    assert main.count("Record type: Unimarc") == 2
    assert "200 1  $a 中国历史地图集" in main and "200 1  $a 猫的历史" in main
    assert "Target has closed the association." in main and "Reason: finished" in main
    # yaz-client asks for USMARC unless told: a CNMARC catalogue is asked for UNIMARC.
    japanese = yaz(port, "japanese", "find @attr 1=4 猫", "format unimarc", "show 1")
    assert hits(japanese) == [1] and "200 1  $a 吾輩は猫である" in japanese
    assert "001 Z-CAT-JA" in japanese


def test_terms_of_a_client_that_negotiates_nothing_are_read_as_utf8(
    gateway: tuple[int, Path],
) -> None:
    port, _ = gateway
    output = yaz(
        port, "japanese", "find @attr 1=4 猫", "find @attr 1=1003 大友幸男", negotiate=False
    )
    assert "Accepted character set" not in output
    assert hits(output) == [1, 1]


def test_gbk_terms_of_a_client_that_negotiates_nothing(gateway: tuple[int, Path]) -> None:
    # An older Chinese client sends GBK. 猫 in GBK (C3 A8) is also valid UTF-8 ("è"), and
    # 历史 (C0 FA CA B7) is not: both are read as GBK.
    port, _ = gateway
    output = yaz(
        port,
        "main",
        "find @attr 1=4 猫",
        "find @attr 1=4 历史",
        "find @attr 1=4 猫的历史",
        negotiate=False,
        encoding="gbk",
    )
    assert "Accepted character set" not in output
    assert hits(output) == [1, 2, 1]


def test_more_searches_than_result_sets_in_one_session(gateway: tuple[int, Path]) -> None:
    # yaz-client names each search's result set anew ("1", "2", …): the 11th and later
    # searches go on being answered (the least recently used sets make room), and Present
    # reads the latest set.
    port, _ = gateway
    terms = ["历史", "猫", "中国"] * 5
    output = yaz(port, "main", *(f"find @attr 1=4 {t}" for t in terms), "format unimarc", "show 1")
    assert diagnostics(output) == []
    assert hits(output) == [{"历史": 2, "猫": 1, "中国": 3}[t] for t in terms]
    assert "Search was a bloomin' failure." not in output
    assert "Record type: Unimarc" in output and "中国" in output.split("Record type:")[-1]


def test_every_record_syntax(gateway: tuple[int, Path]) -> None:
    port, _ = gateway
    output = yaz(
        port,
        "main",
        "find @attr 1=12 Z-CAT-ZH",
        "format opac",
        "show 1",
        "format xml",
        "elements marcxml",
        "show 1",
        "elements dc",
        "show 1",
        "elements marcxchange",
        "show 1",
        "format sutrs",
        "elements F",
        "show 1",
        "format usmarc",
        "show 1",
        "find @attr 1=4 浙东",
        "show 1",
        "format unimarc",
        "show 1",
        "format opac",
        "show 1",
    )
    assert hits(output) == [1, 1]
    # OPAC: the CNMARC record labelled UNIMARC, one holding per copy with circulation data.
    assert "Record type: OPAC\nRecord type: Unimarc" in output
    assert "itemId: Z-C1" in output and "itemId: Z-C2" in output
    assert "availableNow: 1" in output and "localLocation: 中文书库" in output
    assert "callNumber: I247/1" in output
    # XML in three element sets
    assert '<controlfield tag="001">Z-CAT-ZH</controlfield>' in output
    assert "<dc:title>猫的历史</dc:title>" in output
    assert 'format="UNIMARC"' in output
    # SUTRS (yaz-client prints it as text)
    assert "Record type: SUTRS" in output and "Record id: Z-CAT-ZH" in output
    # USMARC: a CNMARC record is not available in it (238); the MARC 21 record is, as is.
    assert "[238] Record not available in requested syntax -- v3 addinfo 'UNIMARC'" in output
    assert "Record type: USmarc" in output and "245 1" in output
    # The MARC 21 record asked for as UNIMARC is converted; its OPAC bib record says USMARC.
    assert re.search(r"Record type: Unimarc\n\d{5}nam", output)
    assert "Record type: OPAC\nRecord type: USmarc" in output


def test_piggy_backed_records_in_small_and_medium_sets(gateway: tuple[int, Path]) -> None:
    port, _ = gateway
    output = yaz(
        port,
        "main",
        "ssub 5",
        "lslb 10",
        "mspn 2",
        "format unimarc",
        "elements B",
        "find @attr 1=4 历史",  # 2 hits: a small set, all piggy-backed, brief
        "ssub 0",
        "find @attr 1=1016 中国",  # a medium set: 2 records piggy-backed
    )
    assert re.findall(r"records returned: (\d+)", output) == ["2", "2"]
    # Brief records carry no holdings fields (a field line, not "Elapsed: 0.001995").
    assert not re.search(r"^995 ", output, re.MULTILINE)
    assert "200 1  $a 猫的历史" in output


def test_scan_title_author_subject_series(gateway: tuple[int, Path]) -> None:
    port, _ = gateway
    output = yaz(
        port,
        "main",
        "scan @attr 1=4 历史",
        "scan @attr 1=1003 谭",
        "scan @attr 1=21 历史",
        "scan @attr 1=5 剑桥",
        "scan @attr 1=1016 x",
    )
    assert "* 猫的历史 (1)" not in output  # 猫 files under m, after 历史 (li)
    assert re.search(r"^\* 谭其骧 \(1\)$", output, re.MULTILINE)
    assert re.search(r"历史地图 -- 中国 \(1\)", output)
    assert re.search(r"剑桥中国史 \(\d+\)", output)
    assert "[114] Unsupported Use attribute" in output
    assert output.count("Received ScanResponse") == 5


def test_sort_and_delete(gateway: tuple[int, Path]) -> None:
    port, _ = gateway
    output = yaz(
        port,
        "main",
        "find @attr 1=1016 中国",
        "sort 1=31 <",
        "format sutrs",
        "elements B",
        "show 1+5",
        "sort 1=31 >",
        "show 1+5",
        "sort 1=1016 <",
        "delete 1",
        "show 1",
    )
    years = [int(y) for y in re.findall(r"^Date: (\d{4})", output, re.MULTILINE)]
    assert len(years) == 10
    assert years[:5] == sorted(years[:5]) and years[5:] == sorted(years[5:], reverse=True)
    assert "[207] Cannot sort according to sequence -- v3 addinfo '1=1016'" in output
    assert "[30] Specified result set does not exist" in output


@pytest.mark.parametrize(
    ("command", "condition"),
    [
        ("find @attr 1=9999 x", 114),
        ("find @attr 2=1 @attr 1=4 x", 117),
        ("find @attr 2=100 @attr 1=4 x", 117),
        ("find @attr 4=104 @attr 1=4 x", 118),
        ("find @attr 3=1 @attr 1=4 x", 119),
        ("find @attr 5=2 @attr 1=4 x", 120),
        ("find @attr 5=101 @attr 1=4 a#b", 120),
        ("find @attrset gils @attr 1=4 x", 121),
        ("find @attr 6=3 @attr 1=1016 x", 122),
        ("find @attr 7=1 @attr 1=4 x", 113),
        ("find @prox 0 3 1 2 k 2 a b", 110),
    ],
)
def test_search_diagnostics(gateway: tuple[int, Path], command: str, condition: int) -> None:
    port, _ = gateway
    output = yaz(port, "main", command, "find @attr 1=4 历史")
    assert diagnostics(output) == [condition]
    assert "Search was a bloomin' failure." in output
    assert hits(output)[-1] == 2  # the association goes on


def test_retrieval_and_database_diagnostics(gateway: tuple[int, Path]) -> None:
    port, _ = gateway
    output = yaz(
        port,
        "main",
        "find @attr 1=4 历史",
        "format grs-1",
        "show 1",
        "format unimarc",
        "elements Z",
        "show 1",
        "elements F",
        "show 3",
        "show 1+1+nosuch",
        "base nosuch",
        "find @attr 1=4 历史",
        "base main",
        "find @attr 5=1 @attr 1=4 历",
        "find @attr 5=104 @attr 1=4 历?",
    )
    assert diagnostics(output) == [239, 25, 13, 30, 235]
    assert hits(output) == [2, 0, 3, 3]  # 历 is in 万历十五年 too


def test_a_checkout_shows_in_the_next_opac_record(gateway: tuple[int, Path]) -> None:
    port, config = gateway
    before = yaz(port, "japanese", "find @attr 1=12 Z-CAT-JA", "format opac", "show 1")
    assert "itemId: Z-J1" in before and "availableNow: 1" in before
    assert libgate(["--config", str(config), "circ", "checkout", "P0004", "Z-J1"]) == 0
    after = yaz(port, "japanese", "find @attr 1=12 Z-CAT-JA", "format opac", "show 1")
    assert "availableNow: 0" in after
    # availablityDate (the standard's spelling); yaz-client prints it "availabiltyDate"
    assert re.search(r"availab\w*Date: \d{4}-\d{2}-\d{2}", after)
    assert "publicNote: 借出" in after and "restrictions" not in after
    assert libgate(["--config", str(config), "circ", "checkin", "Z-J1"]) == 0


def test_zoomsh_searches_presents_scans_and_sorts(gateway: tuple[int, Path]) -> None:
    port, _ = gateway
    output = zoomsh(
        port,
        "main",
        "search @attr 1=4 历史",
        "show 0 2",
        "set preferredRecordSyntax opac",
        "show 0 1",
        "set preferredRecordSyntax xml",
        "set elementSetName dc",
        "show 0 1",
        "set preferredRecordSyntax sutrs",
        "set elementSetName B",
        "show 0 1",
        "set preferredRecordSyntax unimarc",
        "set elementSetName F",
        "search @attr 1=1016 中国",
        "sort 1=31 >",
        "show 0 5",
        "scan @attr 1=1003 谭",
    )
    assert f"127.0.0.1:{port}/main: 2 hits" in output
    assert "syntax=Unimarc" in output and "200 1  $a 猫的历史" in output
    assert "syntax=OPAC" in output and "<itemId>" in output
    assert "<dc:title>" in output and "syntax=SUTRS" in output
    years = [int(y) for y in re.findall(r"^210 .*\$d (\d{4})", output, re.MULTILINE)]
    assert years[-5:] == sorted(years[-5:], reverse=True)
    assert "谭其骧 1" in output
    assert "error" not in output.lower()


def test_zoomsh_on_the_japanese_catalogue(gateway: tuple[int, Path]) -> None:
    port, _ = gateway
    output = zoomsh(
        port,
        "japanese",
        "search @attr 1=4 猫",
        "show 0 1",
        'search @attr 1=4 @attr 4=1 "タイトル"',
        "scan @attr 1=4 タ",
    )
    assert "吾輩は猫である" in output
    assert f"127.0.0.1:{port}/japanese: 2 hits" in output
    assert "タイトル 2" in output
