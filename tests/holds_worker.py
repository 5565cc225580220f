"""`libgate holds process` in its own process, started on a signal so that several runs really
overlap: imports and connects first, waits for the start file, then runs the command's own
entry point and exits with its status.

    python -m tests.holds_worker <start-file> <libgate arguments…>
"""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.cli import main
from tests.outbox_worker import wait_for

if __name__ == "__main__":
    wait_for(Path(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
