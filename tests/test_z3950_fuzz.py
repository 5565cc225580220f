"""Hostile input for the APDU decoder and the session (hypothesis).

Whatever bytes arrive, the framer returns a length, asks for more or raises BerError; the
decoder returns a request or raises BerError/ApduError; the session always answers with an
APDU (Close for what is not one) and never raises. Inputs: random bytes, real APDUs mutated
(bytes changed, cut, inserted; lengths made huge or indefinite), and random BER trees nested
up to well past the depth limit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.store import Store, open_store
from gateway.store.migrate import migrate
from tests import z3950_support as z
from z3950 import ber, codec, oids
from z3950.codec import ApduError
from z3950.session import Limits, Session

SEEDS = [
    z.init(),
    z.init(charset="UTF-8"),
    z.search(z.term("猫", use=4), small=5, syntax=oids.OPAC),
    z.search(z.boolean("and-not", z.term("中国", use=1016), z.term("x", use=9999))),
    z.present(1, 3, syntax=oids.XML_TEXT, element_set="dc"),
    z.scan("历史", 4),
    z.sort("default", "s", (31, 1)),
    z.delete("default"),
    z.close(),
]
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


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_the_session_always_answers(catalogue: Store, data: bytes) -> None:
    session = Session(z.catalogue_service(catalogue), Limits())
    session.handle(z.init())
    reply = session.handle(data)
    assert reply.data or reply.outcome == "ignored"
    name, value = z.answer(reply.data) if reply.data else ("none", {})
    if reply.close:
        # A Close, or an Init refused for want of a common version (which ends the association).
        assert name == "close" or (name == "initResponse" and value["result"] is False), name
    else:  # the session took it: the next request is still answered
        after = session.handle(z.search(z.term("猫", use=4)))
        assert after.data


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
