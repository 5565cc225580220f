"""The ops listener of a real `libgate serve`: /metrics counts exactly the traffic sent over
SIP2 and SRU sockets, /health answers, /ready passes, and fails (503) once the store is gone."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from tests.ops_support import get, samples, serving_config, wait_for_status
from tests.serve_support import running_gateway
from tests.sip2_support import sip2_session


def test_metrics_count_the_traffic_sent_and_ready_fails_without_the_store(tmp_path) -> None:
    config, ports = serving_config(tmp_path)
    sip2_port, sru_port, ops_port = ports
    with running_gateway(config, ports):  # it opens (and closes) one connection to each port
        status, body = get(ops_port, "/health")
        assert status == 200
        health = json.loads(body)
        assert health["status"] == "ok" and isinstance(health["pid"], int) and health["version"]

        status, body = get(ops_port, "/ready")
        assert status == 200, body
        ready = json.loads(body)
        assert {name for name, check in ready["checks"].items() if check["ok"]} == {
            "store",
            "search_index",
            "notice_backlog",
        }

        now = time.strftime("%Y%m%d    %H%M%S")
        for _ in range(3):
            login, patron_status = sip2_session(
                sip2_port,
                b"9300CNkiosk|COkiosk-pw|",
                f"23000{now}AOMAIN|AAP0001|AC|".encode(),
            )
            assert login.startswith(b"941") and patron_status.startswith(b"24"), patron_status
        for title in ("万历十五年", "红楼梦"):
            status, _ = get(sru_port, "/main?" + urlencode({"query": f"dc.title = {title}"}))
            assert status == 200
        status, _ = get(sru_port, "/main?" + urlencode({"query": "dc.title = ("}))
        assert status == 200  # a CQL syntax error: diagnostic 10

        # The last SIP2 connection's close reaches the server a moment after its answer.
        deadline = time.monotonic() + 10
        while (found := samples(ops_port))[
            ("libgate_connections_open", (("protocol", "sip2"),))
        ] != 0 and time.monotonic() < deadline:
            time.sleep(0.1)

        def value(name: str, **labels: str) -> float:
            return found.get((name, tuple(sorted(labels.items()))), 0.0)

        assert value("libgate_connections_accepted_total", protocol="sip2") == 1 + 3
        assert value("libgate_connections_open", protocol="sip2") == 0
        assert value("libgate_connections_accepted_total", protocol="sru") == 1 + 3
        assert value("libgate_sip2_messages_total", command="93", outcome="ok") == 3
        patron_status_count = sum(
            count
            for (name, labels), count in found.items()
            if name == "libgate_sip2_messages_total" and ("command", "23") in labels
        )
        assert patron_status_count == 3
        assert value("libgate_sip2_message_seconds_count", command="93") == 3
        assert value("libgate_sip2_message_seconds_count", command="23") == 3
        assert value("libgate_sru_requests_total", operation="searchRetrieve", outcome="ok") == 2
        assert (
            value("libgate_sru_requests_total", operation="searchRetrieve", outcome="diagnostic")
            == 1
        )
        assert value("libgate_sru_diagnostics_total", operation="searchRetrieve", diagnostic="10")
        assert value("libgate_z3950_requests_total", operation="searchRequest", outcome="ok") == 0

        # The store's file removed (a cleaned-up var/, a volume gone): not ready, yet alive.
        (tmp_path / "library.db").unlink()
        body = wait_for_status(ops_port, "/ready", 503)
        checks = json.loads(body)["checks"]
        assert checks["store"]["ok"] is False and "missing" in checks["store"]["detail"]
        assert get(ops_port, "/health")[0] == 200


def test_ready_fails_when_the_postgresql_database_goes_away(
    tmp_path, own_postgres_database
) -> None:
    url, admin, name = own_postgres_database
    config, ports = serving_config(tmp_path, url)
    text = config.read_text("utf-8")
    config.write_text(
        text.replace("[storage]\n", f'[storage]\nsearch_index_dir = "{tmp_path / "index"}"\n'),
        encoding="utf-8",
    )
    ops_port = ports[2]
    with running_gateway(config, ports) as process:
        wait_for_status(ops_port, "/ready", 200)
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        body = wait_for_status(ops_port, "/ready", 503)
        assert json.loads(body)["checks"]["store"]["ok"] is False
        assert get(ops_port, "/health")[0] == 200
        # A gateway without its store stops at [service] stop_timeout with exit 75
        # (tests/test_stop_drain.py); that wait is not this test's subject, so it ends here.
        process.kill()
