"""A clean start and a clean refusal (issue 18): every listen string and TLS file is checked
before anything is bound (`check-config`, and `serve` first of all), a bad one stops `serve`
with exit 1 and one line and never a hang; "listening" is printed only after the bind;
read-only commands never create a database; `--version`."""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import __version__
from gateway.cli import main
from gateway.config import CONFIG_ENV
from tests.tls_support import self_signed_certificate

# Long enough for a busy machine to start Python; a hang (the bug this guards) hits it.
SERVE_TIMEOUT = 30


def write_config(home: Path, sip2_listen: list[str], workers: int = 1, extra: str = "") -> Path:
    """A config over a SQLite library in `home` whose only listeners are `sip2_listen`."""
    listen = ", ".join(f'"{text}"' for text in sip2_listen)
    config = home / "libgate.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{home / "library.db"}"\n'
        f"[service]\nworkers = {workers}\n"
        "[notices]\nenabled = false\n"
        f"[sip2]\nlisten = [{listen}]\n"
        "[sru]\nlisten = []\n[z3950]\nlisten = []\n" + extra,
        encoding="utf-8",
    )
    return config


def serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        timeout=SERVE_TIMEOUT,
    )


def assert_refused_in_one_line(done: subprocess.CompletedProcess[str], words: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("libgate: ") and words in lines[0], lines[0]
    assert "listening" not in done.stdout


# --- serve refuses a bad listener in one line, one process or several -------------------------


@pytest.mark.parametrize(
    ("listen", "workers", "words"),
    [
        ("tcp:99999:interface=127.0.0.1", 1, "port 99999 is not 0..65535"),
        ("tcp:99999:interface=127.0.0.1", 2, "port 99999 is not 0..65535"),
        ("6001", 1, "needs an endpoint type: write 'tcp:6001'"),
        ("nonsense:6001", 1, "Unknown endpoint type: 'nonsense'"),
    ],
)
def test_serve_refuses_a_bad_listen_string(
    tmp_path: Path, listen: str, workers: int, words: str
) -> None:
    done = serve(write_config(tmp_path, [listen], workers))
    assert_refused_in_one_line(done, f"sip2.listen[0]: {listen!r}")
    assert words in done.stderr


def test_serve_refuses_a_missing_certificate(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-key.pem"
    done = serve(write_config(tmp_path, [f"ssl:0:privateKey={missing}:interface=127.0.0.1"]))
    assert_refused_in_one_line(done, f"privateKey file {missing} does not exist")


def test_serve_stops_on_a_port_in_use_and_never_said_listening(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve(write_config(tmp_path, [f"tcp:{port}:interface=127.0.0.1"]))
    assert_refused_in_one_line(done, f"cannot listen: Couldn't listen on 127.0.0.1:{port}")


# --- check-config ----------------------------------------------------------------------------


def test_check_config_accepts_a_good_config_with_tls(tmp_path: Path, capsys) -> None:
    key, cert = self_signed_certificate(tmp_path)
    config = write_config(
        tmp_path,
        ["tcp:0:interface=127.0.0.1", f"ssl:0:privateKey={key}:certKey={cert}"],
        workers=2,
    )
    assert main(["--config", str(config), "check-config"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"config OK ({config})"
    assert err == ""
    assert not (tmp_path / "library.db").exists()  # checking binds and creates nothing


def test_check_config_names_every_problem_in_a_line_each(tmp_path: Path, capsys) -> None:
    key, _ = self_signed_certificate(tmp_path)
    not_pem = tmp_path / "not-a-certificate.pem"
    not_pem.write_text("just text\n", encoding="utf-8")
    missing = tmp_path / "missing.pem"
    config = write_config(
        tmp_path,
        ["tcp:99999", "6001", f"ssl:7000:privateKey={missing}", "tcp:6001:colour=blue"],
        extra=(
            f'[web]\nlisten = ["ssl:7001:privateKey={key}:certKey={not_pem}", "tcp:99999"]\n'
            '[ill]\nlisten = ["tcp:0:interface=127.0.0.1"]\n'
        ),
    )
    assert main(["--config", str(config), "check-config"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "libgate: sip2.listen[0]: 'tcp:99999': port 99999 is not 0..65535",
        "libgate: sip2.listen[1]: '6001' needs an endpoint type: write 'tcp:6001'",
        f"libgate: sip2.listen[2]: 'ssl:7000:privateKey={missing}': privateKey file {missing}"
        " does not exist",
        "libgate: sip2.listen[3]: 'tcp:6001:colour=blue': unknown option 'colour'",
        f"libgate: web.listen[0]: 'ssl:7001:privateKey={key}:certKey={not_pem}': the TLS key"
        " or certificate does not load as PEM" + err.splitlines()[4].split("as PEM", 1)[1],
        "libgate: web.listen[1]: 'tcp:99999' is already sip2.listen[0]",
    ]


def test_check_config_reports_a_bad_setting_in_one_line(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, [], extra="[service]\n")  # a table defined twice
    assert main(["--config", str(config), "check-config"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "not valid TOML" in lines[0]


def test_a_unix_listener_needs_one_worker(tmp_path: Path, capsys) -> None:
    listen = f"unix:{tmp_path / 'sip2.sock'}"
    assert main(["--config", str(write_config(tmp_path, [listen], 1)), "check-config"]) == 0
    capsys.readouterr()
    assert main(["--config", str(write_config(tmp_path, [listen], 2)), "check-config"]) == 1
    assert "set [service] workers = 1" in capsys.readouterr().err


# --- --version -------------------------------------------------------------------------------


def test_version_is_the_installed_distributions(capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    installed = importlib.metadata.version("libgate")
    assert installed == __version__
    assert capsys.readouterr().out == f"libgate {installed}\n"


# --- read-only commands open only an existing database ---------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["search", "长城"],
        ["browse", "长"],
        ["export", "--output", "out.iso"],
        ["circ", "status", "R0001"],
        ["circ", "fees", "R0001"],
        ["batches", "list"],
        ["batches", "show", "1"],
        ["notices", "list"],
        ["ill", "list"],
        ["ill", "show", "1"],
        ["ill", "stats"],
    ],
)
def test_a_read_only_command_creates_no_database(
    tmp_path: Path, monkeypatch, capsys, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert main(command) == 1
    assert capsys.readouterr().err == (
        f"libgate: no database at {Path('var/libgate.db')}; use --config\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_writing_command_still_creates_the_database(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert main(["init"]) == 0
    assert (tmp_path / "var" / "libgate.db").is_file()
    assert main(["search", "长城"]) == 0
    assert "0 hits in main" in capsys.readouterr().out


# --- only what is configured listens ----------------------------------------------------------


def test_a_protocol_whose_section_is_absent_does_not_listen() -> None:
    from gateway.config import Settings, settings_from_dict

    storage_only = settings_from_dict({"storage": {"url": "sqlite:///x.db"}})
    assert storage_only.sip2.listen == storage_only.sru.listen == storage_only.z3950.listen == ()
    assert Settings().sip2.listen == ()  # no config file at all: nothing listens either
    # A section without a listen key asks for the protocol on its default port.
    sru_only = settings_from_dict({"sru": {"default_records": 20}})
    assert sru_only.sru.listen == ("tcp:8080:interface=127.0.0.1",)
    assert sru_only.sip2.listen == sru_only.z3950.listen == ()


def test_serve_opens_only_the_configured_protocol(tmp_path: Path) -> None:
    config = tmp_path / "libgate.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "library.db"}"\n'
        '[notices]\nenabled = false\n[sru]\nlisten = ["tcp:0:interface=127.0.0.1"]\n',
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner: list[str] = []
        for line in process.stdout:
            banner.append(line.rstrip())
            if line.startswith("  listening:"):
                break
        listening = [line for line in banner if line.startswith("  listening:")]
        assert len(listening) == 1 and "SRU" in listening[0], banner
    finally:
        process.terminate()
        process.communicate(timeout=SERVE_TIMEOUT)


def test_workers_that_cannot_share_metrics_stop_in_one_line(tmp_path: Path) -> None:
    # The supervisor's metrics directory goes under systemd's RuntimeDirectory; one that is
    # not there is a line and exit 1, never a traceback or a supervisor left waiting.
    config = write_config(tmp_path, ["tcp:0:interface=127.0.0.1"], workers=2)
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
        capture_output=True,
        text=True,
        timeout=SERVE_TIMEOUT,
        env={**os.environ, "RUNTIME_DIRECTORY": str(tmp_path / "not-there")},
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("libgate: cannot start the workers: ") and "not-there" in lines[0]
