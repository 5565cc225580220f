"""What `pip install .` ships: setup.cfg lists its packages by hand (so tests and fixtures stay
out), and a package missing from that list works in the editable development install but is
absent from a real one. Every package of ours must be listed, and nothing else."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("gateway", "marc", "sip2", "sru", "z3950", "ill", "web", "union")


def listed_packages(setup_cfg: Path) -> set[str]:
    config = configparser.ConfigParser()
    config.read(setup_cfg, encoding="utf-8")
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def packages_on_disk(root: Path) -> set[str]:
    found = set()
    for top in TOP_LEVEL:
        for init in (root / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(root).parts))
    return found


def test_setup_cfg_lists_every_package_we_ship() -> None:
    assert listed_packages(REPO / "setup.cfg") == packages_on_disk(REPO)


def test_the_packaging_check_sees_a_missing_package(tmp_path: Path) -> None:
    for package in ("gateway", "gateway/retrieval"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "setup.cfg").write_text("[options]\npackages =\n    gateway\n")
    assert packages_on_disk(tmp_path) - listed_packages(tmp_path / "setup.cfg") == {
        "gateway.retrieval"
    }
