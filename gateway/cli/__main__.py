"""`python -m gateway.cli …` is `libgate …`."""

import sys

from gateway.cli import main

sys.exit(main())
