"""The files a site deploys with (issue 18): libgate.toml.example and the container config
load through the real config loader, the systemd units pass `systemd-analyze verify` (or, where
it is missing, hold the keys a service needs), a `systemd:` listen string serves SRU on a socket
handed over by socket activation, and the Containerfile and compose file hold what they must.
No image is built here: the machine has no container daemon or registry."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.config import SECTIONS, ConfigError, ServiceSettings, load_settings
from gateway.draining import STOP_MARGIN_SECONDS
from tests.serve_support import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "libgate.toml.example"
DEPLOY = ROOT / "deploy"
LIBGATE = Path(sys.executable).parent / "libgate"


# --- libgate.toml.example ---------------------------------------------------------------------


def test_example_config_loads_and_validates() -> None:
    settings = load_settings(str(EXAMPLE))
    assert settings.storage.url == "sqlite:////var/lib/libgate/libgate.db"
    assert [d.name for d in settings.databases] == ["main"]
    (account,) = settings.sip2.accounts
    # A real hash (of a password nobody knows), never a plain-text password a site might keep.
    assert account.password.startswith("scrypt$")
    assert settings.ill.partners and settings.union.targets
    assert not any(target.enabled for target in settings.union.targets)  # placeholders are off


def test_example_config_sets_up_every_section() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    present = set(re.findall(r"^\[\[?([a-z_0-9]+)[\].]", text, re.MULTILINE))
    # Holding profiles are shown commented: the built-in ones fit most sites.
    missing = set(SECTIONS) - present - {"holdings_profiles"}
    assert not missing, f"libgate.toml.example has no [{'], ['.join(sorted(missing))}]"
    assert "# [[holdings_profiles]]" in text


def test_a_wrong_key_in_the_example_is_refused(tmp_path: Path) -> None:
    """The test above would fail on a misspelt key: the loader refuses unknown keys."""
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "busy_timeout_ms = 10000", "busy_timeout = 10000", 1
    )
    broken = tmp_path / "libgate.toml"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="storage: unknown key 'busy_timeout'"):
        load_settings(str(broken))


def test_example_postgresql_alternative_validates(tmp_path: Path) -> None:
    """The commented PostgreSQL lines, uncommented in place of the SQLite url, are valid."""
    text = EXAMPLE.read_text(encoding="utf-8")
    storage, rest = text.split("# --- Catalogue databases", 1)
    sqlite_only = re.compile(r'^(url = "sqlite:.*|search_index_dir = "")$', re.M)
    assert len(sqlite_only.findall(storage)) == 2
    uncommented = re.sub(r"^# ((?:url|pool_size|search_index_dir) = )", r"\1", storage, flags=re.M)
    uncommented = sqlite_only.sub("", uncommented)
    config = tmp_path / "libgate.toml"
    config.write_text(uncommented + "# --- Catalogue databases" + rest, encoding="utf-8")
    settings = load_settings(str(config))
    assert settings.storage.url == "postgresql://libgate@localhost:5432/libgate"
    assert settings.storage.search_index_dir == "/var/lib/libgate/search"


# --- systemd ----------------------------------------------------------------------------------


def unit_keys(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and keys; a key may repeat (ListenStream=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_service_unit_holds_what_a_service_needs() -> None:
    service = unit_keys(DEPLOY / "libgate.service")["Service"]
    assert service["Type"] == ["simple"]
    assert service["ExecStart"] == [
        "/opt/libgate/bin/libgate --config /etc/libgate/libgate.toml serve"
    ]
    assert service["User"] == ["libgate"]
    assert service["Restart"] == ["on-failure"] and service["RestartSec"]
    assert service["NoNewPrivileges"] == ["yes"] and service["PrivateTmp"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    # The example's SQLite store lies in the one writable directory.
    assert service["ReadWritePaths"] == ["/var/lib/libgate"]
    assert load_settings(str(EXAMPLE)).storage.url.startswith("sqlite:////var/lib/libgate/")
    assert int(service["LimitNOFILE"][0]) >= 4096
    # A worker drains within stop_timeout, the supervisor kills what is left STOP_MARGIN_SECONDS
    # later: systemd must wait longer than both before its own SIGKILL, with the example's
    # stop_timeout and with the default.
    stop_timeout = load_settings(str(EXAMPLE)).service.stop_timeout
    assert stop_timeout == ServiceSettings().stop_timeout
    assert int(service["TimeoutStopSec"][0]) > stop_timeout + STOP_MARGIN_SECONDS
    assert service["KillMode"] == ["mixed"]  # SIGTERM to the supervisor, which forwards it
    # `systemctl reload`: SIGHUP to the main process reads the config again (gateway/reload.py).
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_units_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` warns on stderr of an unknown key or bad value (its exit code
    stays 0), and fails on a missing executable: the installed path is swapped for this
    environment's `libgate` so the rest of the unit is checked as written."""
    text = (DEPLOY / "libgate.service").read_text(encoding="utf-8")
    (tmp_path / "libgate.service").write_text(
        text.replace("/opt/libgate/bin/libgate", str(LIBGATE)), encoding="utf-8"
    )
    shutil.copy(DEPLOY / "libgate.socket", tmp_path / "libgate.socket")
    result = subprocess.run(
        ["systemd-analyze", "verify", "libgate.service", "libgate.socket"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_socket_unit_matches_the_listen_strings_it_documents() -> None:
    text = (DEPLOY / "libgate.socket").read_text(encoding="utf-8")
    streams = unit_keys(DEPLOY / "libgate.socket")["Socket"]["ListenStream"]
    documented = re.findall(r'listen = \["systemd:domain=INET:index=(\d+)"\]', text)
    assert [int(index) for index in documented] == list(range(len(streams)))


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None, reason="no systemd-socket-activate here"
)
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_takes_its_socket_from_systemd(tmp_path: Path, workers: int) -> None:
    """Socket activation as systemd does it: the socket is bound by another process and
    handed over as fd 3 (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES); `[sru] listen =
    ["systemd:domain=INET:index=0"]` serves SRU on it, in one process and under the supervisor.
    (Twisted reads the descriptors only when LISTEN_FDNAMES is set too, as systemd since
    version 227 always does; systemd-socket-activate sets it only with --fdname.)"""
    config = tmp_path / "libgate.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{tmp_path / "library.db"}"
[service]
workers = {workers}
[notices]
enabled = false
[sip2]
listen = []
[z3950]
listen = []
[sru]
listen = ["systemd:domain=INET:index=0"]
""",
        encoding="utf-8",
    )
    assert load_settings(str(config)).sru.listen == ("systemd:domain=INET:index=0",)
    port = free_port()
    command = [
        "systemd-socket-activate",
        f"--listen=127.0.0.1:{port}",
        "--fdname=libgate.socket",
        str(LIBGATE),
        "--config",
        str(config),
        "serve",
    ]
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/main?version=1.2&operation=explain"
        deadline = time.monotonic() + 30
        while True:
            try:
                # The first connection starts libgate; it waits in the socket's queue meanwhile.
                with urllib.request.urlopen(url, timeout=30) as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(log.read_text(errors="replace")) from None
                time.sleep(0.1)
        assert "explainResponse" in body
        assert "systemd:domain=INET:index=0" in log.read_text(errors="replace")
    finally:
        process.terminate()  # systemd-socket-activate has exec'd libgate: this is its pid
        process.wait(timeout=40)
    assert "Traceback" not in log.read_text(errors="replace")


# --- the container ----------------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions (continuation lines joined), comments left out."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, argument = line.partition(" ")
            result.append((keyword.upper(), argument.strip()))
    return result


def test_containerfile_installs_every_package_and_runs_as_a_user() -> None:
    steps = instructions(DEPLOY / "Containerfile")
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [argument for keyword, argument in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmd = [argument for keyword, argument in steps if keyword == "CMD"]
    assert json.loads(cmd[-1]) == ["libgate", "--config", "/etc/libgate/libgate.toml", "serve"]
    assert ("VOLUME", '["/var/lib/libgate"]') in steps
    # Every top-level package setup.cfg installs is copied into the image.
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    packages = {p.split(".")[0] for p in setup["options"]["packages"].split()}
    copied = {a.split()[0] for k, a in steps if k == "COPY" and not a.startswith("setup.cfg")}
    assert copied == packages
    copied_files = next(a for k, a in steps if k == "COPY" and a.startswith("setup.cfg"))
    assert "README.md" in copied_files  # setup.cfg's long_description reads it
    # The ports of the example config are exposed.
    exposed = {int(p) for k, a in steps if k == "EXPOSE" for p in a.split()}
    settings = load_settings(str(EXAMPLE))
    listens = settings.sip2.listen + settings.sru.listen + settings.z3950.listen
    assert {int(s.split(":")[1]) for s in listens + settings.web.listen} <= exposed


def compose_lines(path: Path) -> dict[str, list[str]]:
    """compose.yaml read without a YAML library (none is a dependency): each key's dotted path
    → its values (a scalar after the colon, or the list items under it)."""
    values: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        text = raw.split(" #", 1)[0].rstrip()
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        indent = len(text) - len(text.lstrip())
        text = text.strip()
        while stack and stack[-1][0] >= indent and not text.startswith("- "):
            stack.pop()
        if text.startswith("- "):
            values.setdefault(".".join(k for _, k in stack), []).append(text[2:].strip('"'))
            continue
        key, _, value = text.partition(":")
        stack.append((indent, key))
        if value.strip():
            values[".".join(k for _, k in stack)] = [value.strip().strip('"')]
    return values


def test_compose_runs_libgate_on_postgresql() -> None:
    compose = compose_lines(DEPLOY / "compose.yaml")
    assert compose["services.postgres.image"] == ["postgres:15"]
    assert compose["services.libgate.build.dockerfile"] == ["deploy/Containerfile"]
    assert (DEPLOY / compose["services.libgate.build.context"][0] / "setup.cfg").exists()
    # One password for both, from the environment.
    password = compose["services.postgres.environment.POSTGRES_PASSWORD"]
    assert password == compose["services.libgate.environment.PGPASSWORD"]
    assert password[0].startswith("${LIBGATE_DB_PASSWORD")
    assert compose["services.libgate.depends_on.postgres.condition"] == ["service_healthy"]
    mounts = dict(m.split(":", 1) for m in compose["services.libgate.volumes"])
    assert mounts["libgate-data"] == "/var/lib/libgate"
    config_file = next(source for source, target in mounts.items() if "/etc/libgate/" in target)
    assert mounts[config_file] == "/etc/libgate/libgate.toml:ro"

    # The mounted config is valid, reaches the postgres service as its user and database,
    # and listens inside the container on every port compose publishes.
    settings = load_settings(str(DEPLOY / config_file))
    user = compose["services.postgres.environment.POSTGRES_USER"][0]
    database = compose["services.postgres.environment.POSTGRES_DB"][0]
    assert settings.storage.url == f"postgresql://{user}@postgres:5432/{database}"
    listening = {
        int(listen.split(":")[1])
        for section in (settings.sip2, settings.sru, settings.z3950, settings.web, settings.ill)
        for listen in section.listen
    }
    assert all("interface=127.0.0.1" not in listen for listen in settings.sip2.listen)
    published = {int(port.rsplit(":", 1)[1]) for port in compose["services.libgate.ports"]}
    assert published == listening
