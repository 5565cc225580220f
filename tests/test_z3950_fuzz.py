"""Hostile input for the APDU decoder and the session (hypothesis).

Whatever bytes arrive, the framer returns a length, asks for more or raises BerError; the
decoder returns a request or raises BerError/ApduError; the session always answers with an
APDU (Close protocolError for what is not one, never systemProblem: that would be our bug)
and never raises. Inputs: random bytes, real APDUs mutated (bytes changed, cut, inserted;
lengths made huge or indefinite; integers made thousands of digits long), and random BER
trees nested up to well past the depth limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from gateway.z3950_codec import ber, oids
from gateway.z3950_codec.schema import ApduError
from tests import z3950_support as z
from z3950 import codec
from z3950.session import Limits, Session

SEEDS = [
    z.init(),
    z.init(charset="UTF-8"),
    z.search(z.term("猫", use=4), small=5, syntax=oids.OPAC),
    z.search(z.boolean("and-not", z.term("中国", use=1016), z.term("x", use=9999))),
    z.search(z.term("历史", use=4, relation=3, structure=1, truncation=100), small=1, medium=1),
    z.present(1, 3, syntax=oids.XML_TEXT, element_set="dc"),
    z.present(2, 1, syntax=oids.SUTRS),
    z.scan("历史", 4),
    z.sort("default", "s", (31, 1)),
    z.delete("default"),
    z.close(),
]
CLOSE_PROTOCOL_ERROR = 6
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("z3950-fuzz")
    store = open_store(f"sqlite:///{path / 'z.db'}")
    migrate(store)
    z.load_catalogue(store, path)
    yield store
    store.close()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "cut", "insert", "huge", "indefinite", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "huge":
            data[at:at] = b"\x84\xff\xff\xff\xff"
        elif kind == "indefinite" and data:
            data[at] = 0x80
        elif kind == "delete" and data:
            del data[at]
    return bytes(data)


Tree = list[tuple[bytes, "bytes | Tree"]]  # (tag bytes, contents or children)


def parse(data: bytes) -> Tree:
    """Definite-length BER → (tag bytes, contents | children) nodes: the seeds' shape."""
    nodes: Tree = []
    position = 0
    while position < len(data):
        header = ber.read_header(data, position, len(data))
        assert header is not None and header.length is not None
        tag_size = 1
        if data[position] & 0x1F == 0x1F:
            while data[position + tag_size] & 0x80:
                tag_size += 1
            tag_size += 1
        start = position + header.size
        body = data[start : start + header.length]
        tag = data[position : position + tag_size]
        nodes.append((tag, parse(body) if header.constructed else body))
        position = start + header.length
    return nodes


def unparse(nodes: Tree) -> bytes:
    out = bytearray()
    for tag, body in nodes:
        contents = body if isinstance(body, bytes) else unparse(body)
        out += tag + ber.encode_length(len(contents)) + contents
    return bytes(out)


def small_primitives(nodes: Tree) -> list[tuple[Tree, int]]:
    """(parent list, index) of each primitive of 1-4 bytes: INTEGERs, booleans, short
    strings."""
    found = []
    for index, (_, body) in enumerate(nodes):
        if isinstance(body, bytes):
            if 1 <= len(body) <= 4:
                found.append((nodes, index))
        else:
            found.extend(small_primitives(body))
    return found


@st.composite
def huge_integers(draw: st.DrawFn) -> bytes:
    """A seed with one to three small primitives made integers of up to 3000 bytes (7000+
    digits, past Python's 4300-digit str() limit), positive or negative; the lengths around
    them made right."""
    tree = parse(draw(st.sampled_from(SEEDS)))
    places = small_primitives(tree)
    for _ in range(draw(st.integers(1, 3))):
        nodes, index = draw(st.sampled_from(places))
        size = draw(st.sampled_from([5, 8, 9, 17, 1800, 3000]))
        first = draw(st.sampled_from([0x01, 0x7F, 0x80, 0xFF]))
        nodes[index] = (nodes[index][0], bytes([first]) + b"\x00" * (size - 1))
    return unparse(tree)


def ber_tree(max_leaves: int = 30) -> st.SearchStrategy[bytes]:
    """Well-formed BER of random shape: context-tagged primitives and constructed values with
    definite or indefinite lengths."""
    leaf = st.builds(
        lambda tag, body: bytes([0x80 | tag]) + ber.encode_length(len(body)) + body,
        st.integers(0, 30),
        st.binary(max_size=6),
    )

    def constructed(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
        def wrap(tag: int, parts: list[bytes], indefinite: bool) -> bytes:
            body = b"".join(parts)
            if indefinite:
                return bytes([0xA0 | tag, 0x80]) + body + b"\x00\x00"
            return bytes([0xA0 | tag]) + ber.encode_length(len(body)) + body

        return st.builds(wrap, st.integers(0, 30), children, st.booleans())

    return st.recursive(
        leaf, lambda inner: constructed(st.lists(inner, max_size=3)), max_leaves=max_leaves
    )


def check_framing(data: bytes) -> None:
    try:
        length = ber.apdu_length(data, 4096)
    except ber.BerError:
        return
    assert length is None or 0 < length <= len(data)


def check_decoding(data: bytes) -> None:
    with contextlib.suppress(ber.BerError, ApduError):  # the only ways it may fail
        codec.decode(data)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    check_framing(data)
    check_decoding(data)


@FUZZ
@given(mutated())
def test_mutated_apdus_decode_or_fail_cleanly(data: bytes) -> None:
    check_framing(data)
    check_decoding(data)


@FUZZ
@given(huge_integers())
def test_huge_integers_decode_or_fail_cleanly(data: bytes) -> None:
    assert ber.apdu_length(data, 1 << 16) == len(data)
    check_decoding(data)


def check_session(catalogue: Store, data: bytes) -> None:
    session = Session(z.catalogue_service(catalogue), Limits())
    session.handle(z.init())
    session.handle(z.search(z.term("中国", use=1016)))  # a default set for Present and Sort
    reply = session.handle(data)
    assert reply.data or reply.outcome == "ignored"
    name, value = z.answer(reply.data) if reply.data else ("none", {})
    if reply.close:
        # A Close for a protocol error (never systemProblem: that is an exception of ours),
        # a Close answering a Close, or an Init refused for want of a common version.
        if name == "close":
            assert value["closeReason"] == CLOSE_PROTOCOL_ERROR or reply.operation == "close", value
            assert reply.outcome != "system-error"
        else:
            assert name == "initResponse" and value["result"] is False, name
    else:  # the session took it: the next request is still answered
        after = session.handle(z.search(z.term("猫", use=4)))
        assert after.data and not after.close


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_the_session_always_answers(catalogue: Store, data: bytes) -> None:
    check_session(catalogue, data)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(huge_integers())
def test_the_session_answers_huge_integers_without_a_system_error(
    catalogue: Store, data: bytes
) -> None:
    check_session(catalogue, data)


@FUZZ
@given(ber_tree(), st.integers(20, 50))
def test_random_trees_frame_and_normalise(tree: bytes, tag: int) -> None:
    apdu = bytes([0xBF, tag]) + b"\x80" + tree + b"\x00\x00"  # an indefinite APDU around it
    assert ber.apdu_length(apdu + b"\x00", 1 << 20) == len(apdu)
    clean = ber.normalise(apdu)
    assert ber.apdu_length(clean, 1 << 20) == len(clean)
    assert b"\xa0\x80" not in clean[:2]
    assert ber.normalise(clean) == clean  # definite already: unchanged
    check_decoding(apdu)


@given(st.integers(ber.MAX_DEPTH + 1, 400), st.booleans())
@settings(max_examples=30, deadline=None)
def test_nesting_past_the_limit(levels: int, indefinite: bool) -> None:
    body = b"\x80\x00"
    for _ in range(levels):
        body = (
            (b"\xa0\x80" + body + b"\x00\x00")
            if indefinite
            else (b"\xa0" + ber.encode_length(len(body)) + body)
        )
    apdu = b"\xb6" + ber.encode_length(len(body)) + body
    with pytest.raises(ber.BerError, match="nested"):
        codec.decode(apdu)
