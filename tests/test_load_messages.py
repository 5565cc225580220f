"""What `libgate load` tells a cataloger, on real files: warnings counted by kind with the fix
and the first records of each; rejects that name the record (number, place, 001, title, the
format it was read as, the field at fault); --format and FILE:PROFILE; XML positions; no
Python exception text anywhere. The terminal (stderr) and the JSON report say the same."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.catalogue.loading.prepare import Prepared, prepare_or_reject
from gateway.cli import EXIT_FATAL, EXIT_OK, EXIT_REJECTED, main
from gateway.config import BUILTIN_PROFILES
from gateway.store import open_store
from marc.errors import RecordRejected
from marc.iso2709 import frame_records
from marc.xml_input import looks_like_xml, read_xml_records
from tests.conftest import FIXTURES, REAL

LOADING = FIXTURES / "marc" / "loading"
BNU_UTF8 = REAL / "cnmarc" / "bnu_cnmarc_10_utf8.iso"
LC_SAMPLE = REAL / "large" / "mrrc-testbed_loc_bib_sample.mrc"
TAIWAN = LOADING / "taiwan_cmarc_17.mrc"
DEMO = FIXTURES / "marc" / "demo_main.iso"


def load(config: Path, tmp_path: Path, capsys, *args: str) -> tuple[int, dict[str, Any], str, str]:
    """Run `libgate load --report …`; the exit code, the JSON report, stdout and stderr."""
    report_path = tmp_path / "report.json"
    code = main(["--config", str(config), "load", "--report", str(report_path), *args])
    printed = capsys.readouterr()
    return code, json.loads(report_path.read_text("utf-8")), printed.out, printed.err


def test_bnu_file_under_the_default_profile_says_to_try_bnu(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    code, report, out, err = load(config_file, tmp_path, capsys, str(BNU_UTF8))
    assert code == EXIT_OK
    fix = "is this a Beijing Normal University (Aleph) CNMARC file? try `--profile bnu`"
    assert f"995 has no barcode on 2 records: {fix}" in err
    assert f"copies in 906 that profile libgate does not read on 3 records: {fix}" in err
    # The first records of each kind, with their numbers and 001.
    assert "      record 1 (001 990002180740203961): 995 #1 has no barcode; copy skipped" in err
    assert "      record 7 (001 990001379140203961): 995 #1 has no barcode; copy skipped" in err
    assert (
        "      record 2 (001 990002181190203961): profile libgate finds no copy in 995, but"
        " profile bnu finds 1 copy in 906 (barcode 1708903)"
    ) in err
    # A declared character set that was wrong: counted once, three records shown.
    assert "the character set declared in 100$a/26-29 was wrong on 7 records: " in err
    assert "      record 1 (001 990002180740203961): declared '0120' but the bytes are utf-8" in err
    assert "      … and 4 more records" in err
    assert "12 warnings" in out  # stdout keeps the counts

    kinds = {"charset_mismatch": 7, "copies_in_other_profile": 3, "copy_without_barcode": 2}
    file_report = report["files"][0]
    assert file_report["warnings_by_kind"] == kinds
    assert report["total"]["warnings_by_kind"] == kinds
    assert file_report["profile"] == "libgate"
    assert {w["code"] for w in file_report["warnings"]} == set(kinds)
    assert {(w["code"], w["field"]) for w in file_report["warnings"]} == {
        ("charset_mismatch", "100"),
        ("copies_in_other_profile", "906"),
        ("copy_without_barcode", "995"),
    }
    summary = {g["code"]: g for g in file_report["warning_summary"]}
    assert summary["copy_without_barcode"]["records"] == 2
    assert summary["copy_without_barcode"]["fix"] == fix
    assert [e["record"] for e in summary["charset_mismatch"]["examples"]] == [1, 5, 6]


def test_the_right_profile_leaves_no_copy_warning(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    code, report, _, err = load(config_file, tmp_path, capsys, "--profile", "bnu", str(BNU_UTF8))
    assert code == EXIT_OK
    assert report["total"]["items"]["added"] == 7
    assert report["total"]["warnings_by_kind"] == {"charset_mismatch": 7}
    assert "--profile bnu" not in err


def test_lc_sample_under_the_bnu_profile_is_told_its_906_is_no_barcode(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    _, report, _, err = load(config_file, tmp_path, capsys, "--profile", "bnu", str(LC_SAMPLE))
    assert (
        "906 gives barcodes without a digit on 386 records: those copies were not made; is"
        " --profile bnu right for this file? if its 906 is not about copies, load it with"
        " --profile none"
    ) in err
    assert "      record 2 (001 16901760): 906 #1: “cbc” has no digit, so it is not a copy" in err
    assert report["total"]["warnings_by_kind"]["barcode_implausible"] == 386
    # No ghost copy is made, so none clashes with another record's.
    assert report["total"]["items"]["added"] == 0
    # Whatever the store refuses of it is named: record, 001, title, format, field.
    for reject in report["files"][0]["rejects"]:
        assert reject["control_number"] and reject["title"] and reject["format"] == "marc21"
        if "barcode" in reject["reason"]:
            assert reject["field"] == "906"


def test_lc_sample_under_its_own_profile_is_clean(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    code, report, _, err = load(config_file, tmp_path, capsys, str(LC_SAMPLE))
    assert code == EXIT_OK
    assert report["total"]["loaded"] == 386 and report["total"]["warning_count"] == 0
    assert err == ""


def test_a_corrected_leader_is_a_warning_kind_with_its_words(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    _, report, _, err = load(
        config_file,
        tmp_path,
        capsys,
        str(REAL / "large" / "catmandu_bu_bibs.mrc"),
        str(REAL / "malformed" / "pymarc_bad_records.mrc"),
    )
    bu, bad = report["files"]
    assert bu["warnings_by_kind"] == {
        "charset_mismatch": 16,
        "directory_lengths": 16,
        "record_length": 16,
    }
    assert "the leader's record length (leader/00-04) is wrong on 16 records: nothing to do" in err
    assert "the character set declared in leader/09 was wrong on 16 records" in err
    assert (
        "      record 3 (001 99177327110001161): leader says 1914 bytes, the record has 1918"
    ) in err
    assert bad["warnings_by_kind"] == {"base_address": 2}
    assert (
        "the leader's base address (leader/12-16) was wrong and was corrected on 2 records" in err
    )


def test_taiwanese_cmarc_with_an_008_is_read_as_unimarc(
    config_file: Path, tmp_path: Path, capsys, store_url: str
) -> None:
    code, report, _, _ = load(config_file, tmp_path, capsys, str(TAIWAN))
    # Read as UNIMARC, all of them; one repeats the 001 of an earlier record of the file
    # (a later duplicate is rejected unless --on-duplicate last).
    assert code == EXIT_REJECTED
    assert report["format"] == "auto"
    assert report["total"]["rejected"] == 1 and report["total"]["framed"] == 17
    rejects = report["files"][0]["rejects"]
    assert all(r["field"] == "001" and r["format"] == "unimarc" for r in rejects)
    with open_store(store_url) as store, store.read() as tx:
        formats = tx.execute("SELECT DISTINCT format FROM bib_records")
        title = tx.scalar("SELECT title FROM bib_records WHERE record_id = ?", ("00085390",))
    assert [tuple(row) for row in formats] == [("unimarc",)]
    assert title == "傲慢與偏見"


def test_forced_marc21_rejects_name_the_record_and_suggest_the_format(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    code, report, _, err = load(config_file, tmp_path, capsys, "--format", "marc21", str(TAIWAN))
    assert code == EXIT_REJECTED
    assert report["format"] == "marc21"
    rejects = report["files"][0]["rejects"]
    assert len(rejects) == 17
    hint = "no title: field 245 $a is missing or empty; it has 200 $a: is it UNIMARC/CNMARC? try --format unimarc"
    assert all(r["reason"] == hint and r["field"] == "245" for r in rejects)
    assert all(r["format"] == "marc21" for r in rejects)
    assert rejects[1] | {"reason": ""} == {
        "record": 2,
        "offset": 791,
        "reason": "",
        "control_number": "00085390",
        "title": "傲慢與偏見",
        "format": "marc21",
        "field": "245",
    }
    assert f"  record 2 at byte 791 (001 00085390, 《傲慢與偏見》, read as MARC 21): {hint}" in err
    assert (
        f"  record 1 at byte 0 (001 1074414, 《Pride and prejudice》, read as MARC 21): {hint}"
        in err
    )


def test_forced_unimarc_on_marc21_suggests_marc21(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    path = REAL / "cjk" / "yaz_marccol1.u8.marc"
    code, report, _, err = load(config_file, tmp_path, capsys, "--format", "unimarc", str(path))
    assert code == EXIT_REJECTED
    first = report["files"][0]["rejects"][0]
    assert first["reason"] == (
        "no title: field 200 $a is missing or empty; it has 245 $a: is it MARC 21?"
        " try --format marc21"
    )
    assert (first["field"], first["format"]) == ("200", "unimarc")
    assert first["title"]  # read from its 245
    assert "read as UNIMARC/CNMARC): no title: field 200 $a" in err


def test_a_profile_per_file(config_file: Path, tmp_path: Path, capsys, store_url: str) -> None:
    code, report, _, _ = load(config_file, tmp_path, capsys, f"{BNU_UTF8}:bnu", str(DEMO))
    assert code == EXIT_OK
    bnu, demo = report["files"]
    assert (bnu["profile"], demo["profile"]) == ("bnu", "libgate")
    assert bnu["items"]["added"] == 7  # the BNU file's 906 copies
    assert demo["items"]["added"] > 0  # the demo file's 995 copies
    assert "copy_without_barcode" not in bnu["warnings_by_kind"]
    with open_store(store_url) as store, store.read() as tx:
        owner = tx.scalar(
            "SELECT r.record_id FROM items i JOIN bib_records r ON r.id = i.record_pk"
            " WHERE i.barcode = ?",
            ("1708903",),
        )
    assert owner == "990002181190203961"


def test_a_file_profile_must_be_known(config_file: Path, capsys) -> None:
    code = main(["--config", str(config_file), "load", f"{BNU_UTF8}:nope"])
    assert code == EXIT_FATAL
    assert "unknown holdings profile 'nope'" in capsys.readouterr().err


def test_xml_rejects_name_the_record_and_its_line(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    truncated = LOADING / "dp2_bnu_cnmarcxml_truncated.xml"
    no_title = LOADING / "dp2_bnu_cnmarcxml_no_title.xml"
    code, report, _, err = load(config_file, tmp_path, capsys, str(truncated), str(no_title))
    assert code == EXIT_REJECTED
    cut, untitled = report["files"]
    assert (cut["loaded"], cut["rejected"]) == (2, 1)
    assert cut["rejects"] == [
        {
            "record": 3,
            "offset": None,
            "reason": "the XML is not well-formed at line 451 (Premature end of data in tag"
            " datafield); records after record 2 were not read",
            "control_number": None,
            "title": None,
            "format": None,
            "field": None,
            "line": 451,
        }
    ]
    assert (untitled["framed"], untitled["rejected"]) == (10, 1)
    reject = untitled["rejects"][0]
    assert (reject["record"], reject["line"], reject["field"]) == (2, 193, "200")
    assert reject["control_number"] == "990002181190203961"
    assert "None" not in err
    assert "  record 3 at line 451: the XML is not well-formed at line 451" in err
    assert (
        "  record 2 at line 193 (001 990002181190203961, read as UNIMARC/CNMARC):"
        " no title: field 200 $a is missing or empty"
    ) in err


def test_broken_marc8_is_a_reject_in_plain_words(config_file: Path, tmp_path: Path, capsys) -> None:
    path = REAL / "malformed" / "marc4j_incomplete_esc_seq.mrc"
    code, report, _, err = load(config_file, tmp_path, capsys, str(path))
    assert code == EXIT_REJECTED
    reject = report["files"][0]["rejects"][0]
    assert reject["reason"] == (
        "field 880: the MARC-8 text is broken (an escape sequence or a CJK character is cut"
        " off), so it cannot be read; correct the record in the source system or export it"
        " as UTF-8"
    )
    assert (reject["field"], reject["control_number"], reject["format"]) == (
        "880",
        "ocn436459302",
        "marc21",
    )
    assert "(001 ocn436459302, 《Qie ting feng yun》, read as MARC 21): field 880:" in err


def test_damaged_marc8_is_one_warning_per_field_in_plain_words(
    config_file: Path, tmp_path: Path, capsys
) -> None:
    path = REAL / "cjk" / "marc4j_chinese_mangled_multibyte.mrc"
    _, report, _, err = load(config_file, tmp_path, capsys, str(path))
    # Its four records share one 001: the three later ones are rejected as duplicates.
    assert report["files"][0]["warnings_by_kind"] == {"marc8_damaged": 1, "duplicate_001": 3}
    assert report["files"][0]["warnings"][0]["message"] == (
        "field 880: 77 MARC-8 CJK (EACC) characters could not be read and became spaces"
    )
    assert (
        "880 has MARC-8 characters that could not be read (they became spaces) on 1 record" in err
    )


# What Python says when it fails, and what pymarc prints: none of it may reach a cataloger.
PYTHON_TEXT = re.compile(
    r"codec can't|index out of range|ord\(\)|KeyError|TypeError|ValueError|Traceback"
    r"|object has no attribute|b'|b\"|\\x[0-9a-f]{2}|g0=|Unable to parse|exceeds length"
)


def every_message(path: Path) -> list[str]:
    """Every reject reason and warning of a real file, as the loader words them."""
    profile = next(p for p in BUILTIN_PROFILES if p.name == "libgate")
    messages: list[str] = []
    if looks_like_xml(path.read_bytes()[:64]):
        for item in read_xml_records(path):
            if isinstance(item.record, RecordRejected):
                messages.append(item.record.reason)
        return messages
    with path.open("rb") as handle:
        for chunk in frame_records(handle):
            outcome = prepare_or_reject(
                chunk, "auto", "auto", profile, other_profiles=BUILTIN_PROFILES
            )
            if isinstance(outcome, Prepared):
                messages += [w.message for w in outcome.mapped.warnings]
            else:
                messages.append(outcome.reason)
    return messages


MESSAGE_FILES = sorted(
    path
    for folder in (REAL, LOADING)
    for path in folder.rglob("*")
    if path.is_file() and path.suffix not in (".md", ".txt")
)


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_python_exception_text_in_any_message(path: Path) -> None:
    leaked = [m for m in every_message(path) if PYTHON_TEXT.search(m)]
    assert leaked == []


def test_copies_are_read_against_the_librarys_words(
    config_file: Path, store_url: str, tmp_path: Path, capsys
) -> None:
    """A 995 status 在架 is the on-shelf word (a synonym); a status or an item type the
    library does not use, or a word only circulation gives, loads with a warning naming the
    copy and what to do, never silently."""
    from marc.record import Field
    from tests.support import cnmarc, iso

    def copy(barcode: str, status: str, item_type: str) -> Field:
        subfields = [("e", "中文书库"), ("r", item_type), ("s", status), ("f", barcode)]
        return Field("995", "  ", subfields)

    record = cnmarc("W-1", "史记选读")
    record.fields += [
        copy("88000001", "在架", "普通外借资料"),
        copy("88000002", "在库待上架", "普通外借资料"),
        copy("88000003", "借出", "普通外借资料"),
        copy("88000004", "归还", "珍本"),
    ]
    path = tmp_path / "copies.iso"
    path.write_bytes(iso(record))
    code, report, _, err = load(config_file, tmp_path, capsys, str(path))
    assert code == EXIT_OK
    kinds = report["total"]["warnings_by_kind"]
    assert (kinds["unknown_copy_status"], kinds["circulation_status"]) == (1, 1)
    assert kinds["unknown_item_type"] == 1
    assert "995 #2 (barcode 88000002): status “在库待上架” is not one of the library's words" in err
    assert "map the word in the profile's status_map or in [circulation] status_synonyms" in err
    assert "995 #4 (barcode 88000004): item type “珍本” is not an [[item_types]] name" in err
    with open_store(store_url) as store, store.read() as tx:
        statuses: dict[str, str] = dict(
            tx.execute("SELECT barcode, status FROM items ORDER BY barcode")
        )
    assert statuses == {
        "88000001": "归还",  # 在架, the usual word, is the on-shelf word
        "88000002": "在库待上架",
        "88000003": "借出",
        "88000004": "归还",
    }
