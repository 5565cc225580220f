"""The exit codes of every `libgate` command and the one error type that ends a command.

Exit codes (documented in the README): 0 success; 1 a fatal error (bad config, database
unreachable, unreadable input); 2 bad command-line usage; 3 the command finished but some
records or rows were rejected (see the report), or the engine refused a circulation action.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_REFUSED = EXIT_REJECTED  # the staff commands' name for 3: the engine said no
EXIT_INTERRUPTED = 130  # what a shell reports for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away (| head)


class CliError(Exception):
    """A fatal problem to report in one line with exit code 1."""
