"""What the tests of the ops listener share: GET a path, parse /metrics, and a SIP2 + SRU +
ops config for a real `libgate serve`."""

from __future__ import annotations

import http.client
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.serve_support import free_port, sip2_and_sru_config

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def samples(port: int) -> Samples:
    status, body = get(port, "/metrics")
    assert status == 200
    return parse(body)


def parse(body: bytes) -> Samples:
    found = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            if sample.name.startswith("libgate_"):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for one not exported (a labelled counter never counted)."""
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def serving_config(
    home: Path, storage_url: str | None = None, workers: int = 1
) -> tuple[Path, list[int]]:
    sip2_port, sru_port, ops_port = free_port(), free_port(), free_port()
    config = sip2_and_sru_config(home, sip2_port, sru_port, workers=workers)
    text = config.read_text("utf-8")
    if storage_url is not None:
        text = text.replace(f'url = "sqlite:///{home / "library.db"}"', f'url = "{storage_url}"')
    text += f'\n[ops]\nlisten = ["tcp:{ops_port}:interface=127.0.0.1"]\n'
    config.write_text(text, encoding="utf-8")
    return config, [sip2_port, sru_port, ops_port]


def wait_for_status(port: int, path: str, status: int, seconds: float = 15) -> bytes:
    """The body of `path` once it answers `status` (a dropped store is seen on the next check)."""
    deadline = time.monotonic() + seconds
    while True:
        answered, body = get(port, path)
        if answered == status or time.monotonic() > deadline:
            assert answered == status, body
            return body
        time.sleep(0.2)
