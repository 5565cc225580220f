"""The front-ends' own `libgate` commands (union search), wired here as app.py wires their
listeners: the one CLI module that imports front-ends. Each is imported only when `libgate`
builds its parser, and costs the other commands nothing else."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from union.cli import add_commands as union_commands

    union_commands(commands)


__all__ = ["add_commands"]
