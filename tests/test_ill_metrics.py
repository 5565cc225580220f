"""The ILL metrics of a real `libgate serve` (with [ill] and [ops]) talking ISO 18626 to the
mock partner (tests/ill_mock_partner.py) on each engine: the messages partners POST, by kind
and the confirmation answered (OK, an ERROR's errorType, an unreadable body); the messages we
send, by kind and outcome; and the retries of one sent to a partner that is down at first."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.circulation.ill_types import (
    BibliographicInfo,
    ErrorType,
    PatronInfo,
    Request,
    ServiceInfo,
    SupplyingAgencyMessage,
)
from gateway.store import open_store
from tests.conftest import FIXTURES
from tests.ill_mock_partner import MockPartner, requesting_header
from tests.ill_serve_support import ill_config, run, run_json, until, until_state
from tests.ops_support import Samples, samples, value
from tests.serve_support import free_port, running_gateway

US = "ISIL:CN-SHL"  # libgate, as lender and as borrower
MOCK = "ISIL:US-MOCKA"  # a partner that answers
LATE = "ISIL:US-LATE"  # a lender whose server is down at first
RECORD = "SHL000000001"  # our one lendable copy
READER = "P0001"
RECEIVED, SENT = "libgate_ill_messages_received_total", "libgate_ill_messages_sent_total"
RETRIES = "libgate_ill_retries_total"

pytestmark = pytest.mark.slow


def attempts_at(store_url: str, url: str) -> int:
    """How many failed attempts the outbox has made at its message to `url` (0: none)."""
    store = open_store(store_url)
    try:
        with store.read() as tx:
            row = tx.one("SELECT max(attempts) FROM ill_outbox WHERE url = ?", (url,))
        return int(row[0] or 0) if row else 0
    finally:
        store.close()


def test_ill_messages_received_sent_and_retried_are_counted(tmp_path: Path, store_url: str) -> None:
    ill_port, ops_port = free_port(), free_port()
    ours = f"http://127.0.0.1:{ill_port}/iso18626"
    mock, late = MockPartner(free_port(), ours), MockPartner(free_port(), ours)
    config = ill_config(
        tmp_path,
        store_url=store_url,
        agency=US,
        ill_port=ill_port,
        partners=[(MOCK, "Mock", mock.url), (LATE, "Late", late.url)],
    )
    text = config.read_text("utf-8").replace(
        "[storage]\n", f'[storage]\nsearch_index_dir = "{tmp_path / "index"}"\n'
    )
    text += f'\n[ops]\nlisten = ["tcp:{ops_port}:interface=127.0.0.1"]\n'
    config.write_text(text, encoding="utf-8")
    for args in (
        ["init"],
        ["load", "--database", "main", str(FIXTURES / "marc" / "demo_main.iso")],
        ["patrons", "import", str(FIXTURES / "patrons" / "demo_patrons.csv")],
        ["ill", "readers", "confirm", READER],
    ):
        assert run(config, *args)[0] == 0, args
    mock.start()
    try:
        with running_gateway(config, [ill_port, ops_port]):
            # As lender: a partner's request (OK, answered WillSupply), the same id again
            # (ERROR), and a body that is no ISO 18626 message at all.
            request = Request(
                header=requesting_header("M-1", MOCK, US),
                bibliographic=BibliographicInfo(supplier_unique_record_id=RECORD),
                service=ServiceInfo(note="#seq:1#"),
                patron=PatronInfo(patron_id="MOCK-READER", name="Ann Reader"),
            )
            assert mock.send(request).confirmation.ok
            again = mock.send(request).confirmation
            assert again.error_type is ErrorType.UNRECOGNISED_DATA_VALUE
            mock.post(b"<not-iso18626/>")
            until(lambda: mock.messages("M-1", SupplyingAgencyMessage), "our WillSupply")

            # As borrower: a request to a lender that is down, tried again until it is up.
            args = ["ill", "request", READER, "--title", "明代政治史", "--recipient", "张伟"]
            args += [
                "--email",
                "zhangwei@example.edu.cn",
                "--note",
                "#WILLSUPPLY#",
                "--lender",
                LATE,
            ]
            code, filed = run_json(config, *args)
            assert code == 0, filed
            number = str(filed["request"]["number"])
            until(lambda: attempts_at(store_url, late.url) >= 2, "two failed attempts")
            late.start()
            until_state(config, number, "will_supply")

            def counted() -> Samples | None:
                found = samples(ops_port)
                done = value(found, SENT, message="request", outcome="delivered")
                received = value(found, RECEIVED, message="supplyingAgencyMessage", outcome="ok")
                return found if done and received else None

            found = until(counted, "the delivered request in /metrics")
            # Counted once recorded: the outbox's attempts now include the delivered one.
            failed_attempts = attempts_at(store_url, late.url) - 1
            assert value(found, RECEIVED, message="request", outcome="ok") == 1
            assert value(found, RECEIVED, message="request", outcome="UnrecognisedDataValue") == 1
            assert value(found, RECEIVED, message="unknown", outcome="BadlyFormedMessage") == 1
            assert value(found, RECEIVED, message="supplyingAgencyMessage", outcome="ok") == 1
            assert value(found, SENT, message="supplyingAgencyMessage", outcome="delivered") == 1
            assert value(found, SENT, message="request", outcome="delivered") == 1
            assert failed_attempts >= 2
            assert value(found, SENT, message="request", outcome="retry") == failed_attempts
            # Every attempt after the first failed one is a retry, the delivered one included.
            assert value(found, RETRIES, message="request") == failed_attempts
            assert value(found, SENT, message="request", outcome="failed") == 0
            assert value(found, "libgate_connections_accepted_total", protocol="ill") >= 4
    finally:
        mock.stop()
        late.stop()
    assert mock.invalid == [] and late.invalid == []
