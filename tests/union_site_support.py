"""A library for the portal's union tab tests: SRU, Z39.50 and the portal of one `libgate serve`
on free ports, its catalogue the demo's, and [union] targets the test writes (usually its own
Z39.50 and SRU, a silent library and a closed port)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import FIXTURES
from tests.ill_serve_support import run
from tests.serve_support import free_port, running_gateway


@dataclass(frozen=True)
class UnionSite:
    config: Path
    sru: int
    z3950: int
    web: int

    @property
    def portal(self) -> str:
        return f"http://127.0.0.1:{self.web}"

    @contextmanager
    def serving(self) -> Iterator[None]:
        with running_gateway(self.config, [self.sru, self.z3950, self.web]):
            yield


def union_site(home: Path, union_timeout: int, targets: Callable[[UnionSite], str]) -> UnionSite:
    """The library's config and loaded store in `home`; `targets` writes its
    [[union.targets]] tables, given the site's ports."""
    site = UnionSite(home / "libgate.toml", free_port(), free_port(), free_port())
    site.config.write_text(
        f"""
[storage]
url = "sqlite:///{home / "library.db"}"
[service]
workers = 1
[sru]
listen = ["tcp:{site.sru}:interface=127.0.0.1"]
[z3950]
listen = ["tcp:{site.z3950}:interface=127.0.0.1"]
[notices]
enabled = false
[web]
listen = ["tcp:{site.web}:interface=127.0.0.1"]
[union]
timeout = {union_timeout}
{targets(site)}""",
        encoding="utf-8",
    )
    for step in (("init",), ("load", "--database", "main", str(FIXTURES / "marc/demo_main.iso"))):
        code, out = run(site.config, *step)
        assert code == 0, out
    return site
