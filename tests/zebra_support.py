"""A real Zebra (Debian idzebra-2.0) as a partner's Z39.50 target for the union clients: CNMARC
records indexed with UNIMARC rules of our own (Zebra ships MARC 21 rules only; the same rules,
more fully, are bench/load_bench.py's), served on a TCP port until the block ends."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ZEBRA = shutil.which("zebrasrv") and shutil.which("zebraidx")
ZEBRA_TAB = Path("/usr/share/idzebra-2.0/tab")
ZEBRA_MODULES = Path("/usr/lib/x86_64-linux-gnu/idzebra-2.0/modules")
START_SECONDS = 30

UNIMARC_ABS = """\
name unimarc
attset bib1.att
esetname F @
esetname B @
marc unimarc.mar
encoding utf-8
xpath disable
all any
melm 001        Local-number:0
melm 010$a      ISBN:w
melm 010        -
melm 100        -
melm 200$a      Title,Title:p
melm 200$f      Author
melm 200        Title
melm 210$c      Publisher
melm 210$d      Date-of-publication
melm 210        -
melm 606        Subject-heading
melm 701$a      Author,Author:p
melm 701        -
"""


@contextmanager
def running_zebra(home: Path, records: list[Path], port: int) -> Iterator[int]:
    """Index `records` (ISO 2709, UNIMARC) into a Zebra database `Default` under `home` and
    serve it on 127.0.0.1:`port`; stops it (by its pid) when the block ends."""
    for name in ("reg", "lock", "tmp"):
        (home / name).mkdir()
    (home / "unimarc.abs").write_text(UNIMARC_ABS, encoding="utf-8")
    (home / "unimarc.mar").write_text("name unimarc\nreference UNIMARC\n", encoding="utf-8")
    config = home / "zebra.cfg"
    config.write_text(
        "\n".join(
            [
                f"profilePath: {home}:{ZEBRA_TAB}",
                f"modulePath: {ZEBRA_MODULES}",
                "attset: bib1.att",
                "attset: explain.att",
                "recordType: grs.marcxml.unimarc",
                "encoding: utf-8",
                "index: icu.idx",  # the shipped ICU chain: CJK words split as readers type
                f"register: {home / 'reg'}:1G",
                f"lockDir: {home / 'lock'}",
                f"setTmpDir: {home / 'tmp'}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    for command in (["init"], ["update", *map(str, records)], ["commit"]):
        subprocess.run(
            ["zebraidx", "-c", str(config), "-l", str(home / "index.log"), *command],
            cwd=home,
            check=True,
            timeout=120,
        )
    server = subprocess.Popen(
        ["zebrasrv", "-c", str(config), "-l", str(home / "server.log"), f"tcp:127.0.0.1:{port}"],
        cwd=home,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((home / "server.log").read_text()) from None
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
