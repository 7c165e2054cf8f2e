"""Command line: ``python run_bench.py [run|list|report|parity|scaling|compare|history] ...``.

One module per command, each with ``add_parser(sub)`` and ``cmd(args) -> exit status``. Bad
input stops before any work with exit status 2. Only this package knows about argparse: the
library below it raises ordinary exceptions and never imports it.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys

from ..files import StoreWriteError
from ..painter import command_line
from . import compare, history, listing, parity, report, run, scaling
from .common import EXIT_FAILED_JOBS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG, UsageError

COMMANDS = {
    "run": run,
    "list": listing,
    "report": report,
    "parity": parity,
    "scaling": scaling,
    "compare": compare,
    "history": history,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command (each one's own parser in ``parser.commands``)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train the same MLP on several backends and compare accuracy, loss curves, time and memory. "
        "Without a command, runs the default suite (every installed backend on xor, digits, diabetes, 3 seeds).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = {name: module.add_parser(sub) for name, module in COMMANDS.items()}  # type: ignore[attr-defined]
    return parser


def _unrecognized(extras: list[str], command: argparse.ArgumentParser) -> str:
    """What the command does not know, with the options whose names come closest (``--seed``: ``--seeds``)."""
    known = [s for action in command._actions for s in action.option_strings if s.startswith("--")]
    hints = []
    for extra in extras:
        name = extra.split("=", 1)[0]
        close = difflib.get_close_matches(name, known, n=2, cutoff=0.75) if name.startswith("--") else []
        if close:
            hints.append(f"{name}: did you mean {' or '.join(close)}?")
    text = f"unrecognized arguments: {' '.join(extras)}"
    return text + "".join(f"\n  {h}" for h in hints) + f"\n  see {command.prog} --help"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    args, extras = parser.parse_known_args(argv)
    if extras:  # said by the command's own parser: its usage, not the top-level one
        command = parser.commands[args.command]  # type: ignore[attr-defined]
        command.error(_unrecognized(extras, command))
    try:
        with command_line():  # the report's figures may be drawn in processes that import the main module
            return COMMANDS[args.command].cmd(args)
    except BrokenPipeError:  # `run_bench.py list | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreWriteError as exc:  # a full disk: what happened, where, how to continue; no traceback
        print(f"{PROG} {args.command}: error: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED_JOBS
    except KeyboardInterrupt:  # after every results file was written (those are shielded)
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
