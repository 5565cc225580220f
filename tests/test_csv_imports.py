"""Copy and reader CSVs (issue 17): the encodings Excel writes, status words and item types
checked against the configuration (with synonyms), and every row's outcome in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.circulation.copy_status import CopyWords, UnknownWord
from gateway.cli import EXIT_FATAL, EXIT_OK, EXIT_REJECTED, main
from gateway.config import ConfigError, Settings, load_settings, settings_from_dict
from gateway.csv_input import GB18030, UTF8, UTF8_BOM, CsvFileError, decode_csv
from gateway.store import open_store
from tests.conftest import FIXTURES

DEMO = FIXTURES / "marc" / "demo_main.iso"
HEADER = "barcode,database,record_id,location,call_number,item_type,status\n"


def run(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def copies(config: Path) -> dict[str, tuple[str, str, str]]:
    """barcode -> (location, item type, status) of every stored copy."""
    with open_store(load_settings(str(config)).storage.url) as store, store.read() as tx:
        rows = tx.execute("SELECT barcode, location, item_type, status FROM items")
        return {row[0]: (row[1], row[2], row[3]) for row in rows}


# --- encodings --------------------------------------------------------------------------------

CHINESE = "barcode,name\nP1,张伟,本科生\nP2,佐藤花子,研究生\n"


def test_utf8_with_and_without_a_bom() -> None:
    assert decode_csv(CHINESE.encode("utf-8"), "f") == (CHINESE, UTF8)
    assert decode_csv(b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), "f") == (CHINESE, UTF8_BOM)


def test_gbk_from_excel_is_read_as_gb18030() -> None:
    data = (FIXTURES / "items" / "demo_items_gbk.csv").read_bytes()
    text, encoding = decode_csv(data, "f")
    assert encoding == GB18030
    assert text.replace("\r\n", "\n") == (FIXTURES / "items" / "demo_items.csv").read_text("utf-8")
    # Characters beyond GBK (GB18030's four-byte forms) read too.
    beyond = "P1,鲁迅与浙东文化〜ｱ𠀀\n"
    assert decode_csv(beyond.encode("gb18030"), "f") == (beyond, GB18030)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("P1,佐藤花子,山田太郎\n".encode("shift_jis"), "neither UTF-8 nor GB18030"),
        ("P1,Müller\n".encode("cp1252"), "rare characters"),
        ("P1,José Núñez\n".encode("cp1252"), "byte 0xE9 at line 1"),
        ("barcode\tname\n".encode("utf-16"), "UTF-16"),
        (b"\x00\x01\x02binary", "not text: the control character U+0000 at line 1"),
        (b"PK\x03\x04\x14\x00\x06\x00", "an Excel workbook (.xlsx)"),
    ],
)
def test_a_file_that_is_neither_is_refused_with_what_to_do(data: bytes, says: str) -> None:
    with pytest.raises(CsvFileError) as refused:
        decode_csv(data, "x.csv")
    message = str(refused.value)
    assert message.startswith("x.csv: ") and says in message
    assert "CSV UTF-8" in message


def test_utf8_with_a_few_bad_bytes_is_not_mistaken_for_gbk() -> None:
    good = ("barcode,name\n" + "".join(f"P{i},张伟{i}\n" for i in range(5))).encode("utf-8")
    with pytest.raises(CsvFileError) as refused:
        decode_csv(good + "P9,王芳\n".encode("gbk"), "x.csv")
    assert "UTF-8 text with bytes that are not UTF-8" in str(refused.value)
    assert "line 7" in str(refused.value)


def test_gbk_copies_and_readers_import(config_file: Path, tmp_path: Path, capsys) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    assert (
        run(
            config_file,
            "load",
            "--profile",
            "bnu",
            str(FIXTURES / "marc" / "real" / "cnmarc" / "bnu_cnmarc_10_utf8.iso"),
        )
        == EXIT_OK
    )
    capsys.readouterr()
    report = tmp_path / "items.json"
    items_csv = FIXTURES / "items" / "demo_items_gbk.csv"
    assert run(config_file, "items", "import", "--report", str(report), str(items_csv)) == EXIT_OK
    assert f"{items_csv} (gb18030): 3 rows: 2 added, 1 updated, 0 unchanged, 0 rejected" in (
        capsys.readouterr().out
    )
    written = json.loads(report.read_text("utf-8"))
    assert written["encoding"] == "gb18030"
    # The BNU copy loaded from 906 gets its location, type and library from the CSV.
    assert written["outcomes"][2] == {
        "line": 4,
        "barcode": "1683011",
        "outcome": "updated",
        "changed": ["library", "location", "item_type"],
    }
    assert copies(config_file)["54122100600013"] == ("中文书库", "普通外借资料", "归还")
    readers = FIXTURES / "patrons" / "demo_patrons_gbk.csv"
    assert run(config_file, "patrons", "import", str(readers)) == EXIT_OK
    assert f"{readers} (gb18030): 5 rows: 5 added" in capsys.readouterr().out
    with open_store(load_settings(str(config_file)).storage.url) as store, store.read() as tx:
        names = {row[0] for row in tx.execute("SELECT name FROM patrons")}
    assert names == {"张伟", "李娜", "王芳", "佐藤花子", "Emily Chen"}


def test_a_file_in_another_encoding_is_fatal_and_changes_nothing(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "sjis.csv"
    path.write_bytes(
        (HEADER + "J1,main,SHL000000001,日本語,K1,普通外借資料,归还\n").encode(
            "shift_jis", errors="replace"
        )
    )
    assert run(config_file, "items", "import", str(path)) == EXIT_FATAL
    assert "neither UTF-8 nor GB18030" in capsys.readouterr().err
    assert copies(config_file) == {}


# --- status words and item types --------------------------------------------------------------


def test_words_and_synonyms_from_the_config() -> None:
    words = CopyWords.from_settings(
        settings_from_dict(
            {
                "circulation": {
                    "other_status_words": ["剔除"],
                    "status_synonyms": {"在库": "归还", "Withdrawn": "剔除"},
                },
                "item_types": [
                    {"name": "普通外借资料", "synonyms": ["中文图书", "Book"]},
                    {"name": "阅览资料", "circulating": False},
                ],
            }
        )
    )
    assert words.statuses.word("归还") == "归还"
    assert words.statuses.word("在架") == "归还"  # built in
    assert words.statuses.word("在库") == "归还"
    assert words.statuses.word("withdrawn") == "剔除"
    assert words.statuses.word("剔除") == "剔除"
    assert words.statuses.word("LOST") == "lost"  # the engine's own words, any case
    assert words.item_types.word("中文图书") == "普通外借资料"
    assert words.item_types.word("book") == "普通外借资料"
    with pytest.raises(UnknownWord) as unknown:
        words.statuses.word("不知道")
    message = str(unknown.value)
    assert message.startswith(
        "status 不知道 is not a known status; known: 归还, 借出, 预约到书, 剔除, 丢失"
    )
    assert "在库 → 归还" in message and "[circulation] status_synonyms" in message
    with pytest.raises(UnknownWord) as unknown:
        words.item_types.word("期刊")
    assert str(unknown.value).startswith(
        "item type 期刊 is not a known item type; known: 普通外借资料, 阅览资料; synonyms:"
        " 中文图书 → 普通外借资料"
    )


def test_the_built_in_synonym_gives_way_to_a_status_word() -> None:
    settings = settings_from_dict({"circulation": {"on_shelf_status": "在架"}})
    words = CopyWords.from_settings(settings)
    assert words.statuses.word("在架") == "在架"
    assert words.statuses.word("在架可借") == "在架"
    assert "在架 →" not in str(pytest.raises(UnknownWord, words.statuses.word, "x").value)


@pytest.mark.parametrize(
    ("circulation", "says"),
    [
        ({"status_synonyms": {"在库": "在馆"}}, "'在馆' is not a status word"),
        ({"status_synonyms": {"借出": "归还"}}, "'借出' is empty or already a status word"),
        ({"status_synonyms": {"Lost": "归还"}}, "already a status word"),
        ({"other_status_words": ["归还"]}, "other_status_words[0]"),
        ({"other_status_words": ["剔除", "剔除"]}, "given twice"),
    ],
)
def test_bad_status_words_stop_the_config(circulation: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_dict({"circulation": circulation})
    assert says in str(error.value)


def test_an_item_type_synonym_names_one_type() -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_dict(
            {
                "item_types": [
                    {"name": "普通外借资料", "synonyms": ["图书"]},
                    {"name": "阅览资料", "synonyms": ["图书"]},
                ]
            }
        )
    assert "item_types[1].synonyms: '图书' already names '普通外借资料'" in str(error.value)
    with pytest.raises(ConfigError):
        settings_from_dict(
            {
                "item_types": [
                    {"name": "普通外借资料"},
                    {"name": "阅览资料", "synonyms": ["普通外借资料"]},
                ]
            }
        )


def test_unknown_words_are_rejected_and_synonyms_read(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    with config_file.open("a", encoding="utf-8") as config:
        config.write(
            '[circulation]\nstatus_synonyms = { "在库" = "归还" }\n'
            '[[item_types]]\nname = "普通外借资料"\nsynonyms = ["中文图书"]\n'
            '[[item_types]]\nname = "参考外借资料"\n'
            '[[item_types]]\nname = "阅览资料"\ncirculating = false\n'
        )
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    path = tmp_path / "items.csv"
    path.write_text(
        HEADER + "S1,main,SHL000000003,中文书库,I242.47/C12,普通外借资料,在架\n"
        "S2,main,SHL000000003,中文书库,I242.47/C12,中文图书,在库\n"
        "S3,main,SHL000000003,中文书库,I242.47/C12,普通外借资料,在馆\n"
        "S4,main,SHL000000003,中文书库,I242.47/C12,期刊,归还\n"
        "S5,main,SHL000000003,中文书库,I242.47/C12,,归还\n"
        "S6,main,SHL000000003,中文书库,I242.47/C12,参考外借资料,Missing\n",
        encoding="utf-8",
    )
    report_path = tmp_path / "report.json"
    capsys.readouterr()
    assert (
        run(config_file, "items", "import", "--report", str(report_path), str(path))
        == EXIT_REJECTED
    )
    out = capsys.readouterr().out
    assert f"{path}:4: status 在馆 is not a known status; known: 归还, 借出, 预约到书," in out
    assert f"{path}:5: item type 期刊 is not a known item type; known: 普通外借资料," in out
    assert f"{path}:6: item_type is empty; known: 普通外借资料, 参考外借资料, 阅览资料" in out
    stored = copies(config_file)
    assert stored["S1"] == ("中文书库", "普通外借资料", "归还")
    assert stored["S2"] == ("中文书库", "普通外借资料", "归还")
    assert stored["S6"] == ("中文书库", "参考外借资料", "missing")
    assert not {"S3", "S4", "S5"} & set(stored)
    report = json.loads(report_path.read_text("utf-8"))
    assert [(row["line"], row["outcome"]) for row in report["outcomes"]] == [
        (2, "added"),
        (3, "added"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "rejected"),
        (7, "added"),
    ]
    # The copy can be lent: the synonym was stored as the on-shelf word.
    assert (
        run(config_file, "patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv"))
        == EXIT_OK
    )
    assert run(config_file, "circ", "checkout", "P0001", "S1") == EXIT_OK


def test_a_known_copy_keeps_its_type_when_the_column_is_blank(
    config_file: Path, tmp_path: Path
) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    path = tmp_path / "items.csv"
    path.write_text(
        HEADER + "54122100600031,main,SHL000000004,中文书库,K992.6/T12/7,,\n", encoding="utf-8"
    )
    assert run(config_file, "items", "import", str(path)) == EXIT_OK
    assert copies(config_file)["54122100600031"] == ("中文书库", "阅览资料", "归还")


def test_the_status_of_a_copy_on_loan_is_the_engines(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    assert (
        run(config_file, "patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv"))
        == EXIT_OK
    )
    assert run(config_file, "circ", "checkout", "P0001", "54122100600021") == EXIT_OK
    path = tmp_path / "items.csv"
    path.write_text(
        HEADER + "54122100600021,main,SHL000000003,外国文学书库,I242.47/C12,普通外借资料,归还\n"
        "54122100600022,main,SHL000000003,外国文学书库,I242.47/C12,普通外借资料,\n",
        encoding="utf-8",
    )
    report_path = tmp_path / "r.json"
    capsys.readouterr()
    assert (
        run(config_file, "items", "import", "--report", str(report_path), str(path))
        == EXIT_REJECTED
    )
    assert (
        f"{path}:2: copy 54122100600021 is on loan: its status stays 借出 (leave status empty"
        in capsys.readouterr().out
    )
    assert copies(config_file)["54122100600021"] == ("中文书库", "普通外借资料", "借出")
    outcomes = json.loads(report_path.read_text("utf-8"))["outcomes"]
    assert outcomes[1] == {
        "line": 3,
        "barcode": "54122100600022",
        "outcome": "updated",
        "changed": ["location"],
    }
    # The same row without a status moves the lent copy and leaves its loan alone.
    path.write_text(
        HEADER + "54122100600021,main,SHL000000003,外国文学书库,I242.47/C12,普通外借资料,\n",
        encoding="utf-8",
    )
    assert run(config_file, "items", "import", str(path)) == EXIT_OK
    assert copies(config_file)["54122100600021"] == ("外国文学书库", "普通外借资料", "借出")


# --- the report ---------------------------------------------------------------------------------


def test_every_row_is_in_the_report_and_the_terminal_shows_the_first_rejects(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    bad = "".join(f"B{n},main,SHL000000003,中文书库,I1,普通外借资料,在库{n}\n" for n in range(14))
    path = tmp_path / "items.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + (
            HEADER
            + "54122100517423,main,SHL000000001,综合阅览室-1楼,K20/C178/v.7/,参考外借资料,归还\n"
            + "54122100600011,main,SHL000000002,综合阅览室-2楼,K248/M68/1,参考外借资料,归还\n"
            + ",,,,,,\n"  # Excel's empty rows are not rows
            + bad
        ).encode("utf-8")
    )
    report_path = tmp_path / "r.json"
    capsys.readouterr()
    assert (
        run(config_file, "items", "import", "--report", str(report_path), str(path))
        == EXIT_REJECTED
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"{path} (utf-8 (BOM)): 16 rows: 0 added, 1 updated, 1 unchanged, 14 rejected"
    )
    assert out[1].startswith(f"{path}:5: status 在库0 is not a known status")
    assert len(out) == 1 + 10 + 1
    assert out[-1] == f"... and 4 more rejected rows; {report_path} lists every row"
    report = json.loads(report_path.read_text("utf-8"))
    assert (report["rows"], report["added"], report["updated"], report["unchanged"]) == (
        16,
        0,
        1,
        1,
    )
    assert report["rejected"] == len(report["errors"]) == 14
    assert report["outcomes"][:2] == [
        {"line": 2, "barcode": "54122100517423", "outcome": "unchanged"},
        {"line": 3, "barcode": "54122100600011", "outcome": "updated", "changed": ["location"]},
    ]
    assert report["outcomes"][2]["line"] == 5 and report["outcomes"][2]["outcome"] == "rejected"
    assert report["errors"][0] == {
        "line": 5,
        "barcode": "B0",
        "reason": report["outcomes"][2]["reason"],
    }


def test_reader_outcomes_name_the_changed_columns(config_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "readers.csv"
    path.write_text(
        "barcode,name,pin,category,email,phone\nR1,张伟,1234,本科生,,\nR2,李娜,,研究生,,\n",
        encoding="utf-8",
    )
    assert run(config_file, "patrons", "import", str(path)) == EXIT_OK
    path.write_text(
        "barcode,name,pin,category,email,phone\n"
        "R1,张伟,4321,本科生,,\n"
        "R2,李娜,,教师,lina@example.edu.cn,\n"
        "R3,王芳,,外星人,,\n",
        encoding="utf-8",
    )
    report_path = tmp_path / "r.json"
    assert run(config_file, "patrons", "import", "--report", str(report_path), str(path)) == 3
    report = json.loads(report_path.read_text("utf-8"))
    assert report["outcomes"] == [
        {"line": 2, "barcode": "R1", "outcome": "updated", "changed": ["pin"]},
        {"line": 3, "barcode": "R2", "outcome": "updated", "changed": ["category", "email"]},
        {
            "line": 4,
            "barcode": "R3",
            "outcome": "rejected",
            "reason": "unknown category '外星人' (configured: 本科生, 研究生, 教师)",
        },
    ]
    assert report["encoding"] == "utf-8"


def test_default_settings_know_the_demo_words() -> None:
    words = CopyWords.from_settings(Settings())
    assert words.item_types.words == ("参考外借资料", "普通外借资料", "阅览资料")
    assert words.statuses.words[:3] == ("归还", "借出", "预约到书")


def test_only_circulation_gives_the_on_loan_and_hold_shelf_words(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    """A copy imported as 借出 or 预约到书 would say it is lent or trapped with no loan or hold
    behind it, and never come back to the shelf: such rows are refused, the rest imported."""
    assert run(config_file, "load", str(DEMO)) == EXIT_OK
    path = tmp_path / "items.csv"
    path.write_text(
        HEADER + "99900000000031,main,SHL000000003,外国文学书库,I242.47/C12,普通外借资料,借出\n"
        "99900000000032,main,SHL000000003,外国文学书库,I242.47/C12,普通外借资料,预约到书\n"
        "99900000000033,main,SHL000000003,外国文学书库,I242.47/C12,普通外借资料,在架\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert run(config_file, "items", "import", str(path)) == EXIT_REJECTED
    out = capsys.readouterr().out
    assert f"{path}:2: status 借出 is given by circulation only" in out
    assert f"{path}:3: status 预约到书 is given by circulation only" in out
    stored = copies(config_file)
    assert "99900000000031" not in stored and "99900000000032" not in stored
    assert stored["99900000000033"][2] == "归还"
