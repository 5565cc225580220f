"""Who runs a batch: `--by NAME`, else the operating system's user."""

from __future__ import annotations

import getpass
import os


def os_user() -> str:
    """Who runs this process, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): its number
        return str(os.getuid())


def runner(by: str | None) -> str:
    return by.strip() if by and by.strip() else os_user()
