"""ISO 2709 framing and structure: real-world damage is read or rejected, never lost."""

from __future__ import annotations

import contextlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from marc.errors import RecordRejected
from marc.iso2709 import Chunk, encode_record, frame_records, parse_structure
from tests.conftest import REAL
from tests.support import cnmarc, iso


def chunks(data: bytes) -> list[Chunk]:
    return list(frame_records(io.BytesIO(data)))


def test_frames_on_terminators_and_skips_filler() -> None:
    one = iso(cnmarc("A1", "甲"))
    two = iso(cnmarc("A2", "乙"))
    framed = chunks(b"\r\n" + one + b"\n\x00\x00" + two + b"\r\n\x1a")
    assert [c.number for c in framed] == [1, 2]
    assert framed[0].offset == 2
    assert framed[1].offset == 2 + len(one) + 3
    assert all(c.terminated for c in framed)


def test_trailing_bytes_without_terminator_are_one_unterminated_record() -> None:
    data = iso(cnmarc("A1", "甲")) + b"01234nam  22"
    framed = chunks(data)
    assert len(framed) == 2
    assert not framed[1].terminated
    try:
        parse_structure(framed[1])
    except RecordRejected as rejected:
        assert "ends inside a record" in rejected.reason
    else:
        raise AssertionError("an unterminated record must be rejected")


def test_framing_does_not_depend_on_read_size() -> None:
    data = iso(*(cnmarc(f"A{i}", "标题" * 50) for i in range(300)))
    framed = chunks(data)
    assert len(framed) == 300
    assert sum(len(c.data) + 1 for c in framed) == len(data)


def test_leader_length_counted_in_characters_is_only_a_warning() -> None:
    record = iso(cnmarc("A1", "中国发展报告"))
    wrong = f"{len(record) - 12:05d}".encode() + record[5:]  # 6 CJK chars = 12 bytes too many
    raw = parse_structure(chunks(wrong)[0])
    assert any("leader says" in w.message for w in raw.warnings)
    assert dict(raw.entries)["001"] == b"A1"


def test_directory_lengths_in_characters_are_recovered() -> None:
    fields = [("001", b"X1"), ("200", "1 \x1fa中国发展报告".encode())]
    good = encode_record("00000nam0 2200000   450 ", fields)
    # Rewrite the 200 entry's length as characters (10) instead of bytes (22).
    text = bytearray(good)
    directory_200 = good.index(b"200", 24)
    text[directory_200 + 3 : directory_200 + 7] = b"0010"
    raw = parse_structure(chunks(bytes(text))[0])
    assert dict(raw.entries)["200"] == "1 \x1fa中国发展报告".encode()
    assert any("counted in characters" in w.message for w in raw.warnings)


def test_unordered_directory_keeps_every_field() -> None:
    framed = chunks((REAL / "malformed" / "marc4j_unordered-directory-entries.mrc").read_bytes())
    raw = parse_structure(framed[0])
    assert "245" in [tag for tag, _ in raw.entries]


def test_record_without_leader_is_rejected_with_reason() -> None:
    try:
        parse_structure(Chunk(1, 0, b"short"))
    except RecordRejected as rejected:
        assert "too short" in rejected.reason
    else:
        raise AssertionError


def test_encode_then_parse_round_trips() -> None:
    fields = [
        ("001", b"ID"),
        ("200", "1 \x1fa吾輩は猫である\x1ff夏目漱石".encode()),
        ("AVA", b"  \x1fax"),
    ]
    data = encode_record("00000nam0 2200000   450 ", fields)
    raw = parse_structure(chunks(data)[0])
    assert raw.entries == fields
    assert raw.warnings == []
    assert int(data[:5]) == len(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    for chunk in frame_records(io.BytesIO(data)):
        with contextlib.suppress(RecordRejected):
            parse_structure(chunk)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_records_are_parsed_or_rejected(data: st.DataObject) -> None:
    record = bytearray(iso(cnmarc("M1", "剑桥中国明代史", barcodes=("1",))))
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(record) - 1))
        record[position] = data.draw(st.integers(0, 255))
    for chunk in frame_records(io.BytesIO(bytes(record))):
        try:
            parse_structure(chunk)
        except RecordRejected as rejected:
            assert rejected.reason
