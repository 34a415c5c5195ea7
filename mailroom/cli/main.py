"""The ``mailroom`` command line (SPEC section 3).

Exit status: 0 success, 1 a handled error (one line on stderr), 2 bad usage.
Every listing has ``--json``: one JSON document on stdout.

Every command runs with the umask 077 (:data:`PRIVATE_UMASK`), put back when
:func:`main` returns. mailroom's own files do not need it: they are made
0600/0700 explicitly, whatever the umask (:mod:`mailroom.private`). It is
there for the files that something else makes: SQLite's rollback journal and
temporary files, a report written with ``--out``, a log file a handler opens,
a library that writes where it was told. The cost: such a file (a report to
hand on, say) is readable by its owner only until they ``chmod`` it, which is
the right default for a service whose every file may name a child.

Log lines pass through one redaction filter (:mod:`mailroom.privacy.redaction`), on
the handler :func:`mailroom.cli.logs.setup_logging` installs, as text or JSON lines,
on stderr or in a file (``--log-format``, ``--log-file``, or ``[logging]``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mailroom import __version__
from mailroom.cli import backup, commands, escalate, hashes, jobs, reports, run
from mailroom.cli.logs import setup_logging
from mailroom.cli.output import EXIT_ERROR, EXIT_USAGE
from mailroom.errors import ConfigError, MailroomError, StoreUnavailable, UsageError
from mailroom.privacy.redaction import own_addresses
from mailroom.settings import LOG_FORMATS, Settings, load_settings

PRIVATE_UMASK = 0o077

Handler = Callable[[argparse.Namespace], int]
# Every subcommand module, in the order ``--help`` lists them: each adds its parsers.
SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (
    commands.register, run.register, jobs.register, escalate.register, reports.register,
    hashes.register, backup.register,
)


class Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message (no usage dump on stderr noise)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"mailroom: {message} (see: {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="mailroom", description="Email-first helpline ticketing.")
    parser.add_argument("--config", help="path of the TOML config (or MAILROOM_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                        help="log lines as text or JSON lines (or [logging] format)")
    parser.add_argument("--log-file", type=Path, default=None, metavar="PATH",
                        help="append log lines to PATH instead of stderr (or [logging] file)")
    parser.add_argument("--version", action="version", version=f"mailroom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    previous = os.umask(PRIVATE_UMASK)
    try:
        return run_command(argv)
    finally:
        os.umask(previous)


def run_command(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)
    _start_logging(args)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"mailroom: config: {problem}", file=sys.stderr)
        # `ingest -` under an MTA: a configuration to fix is no reason to return the mail
        return getattr(args, "tempfail_status", EXIT_ERROR)
    except UsageError as exc:
        print(f"mailroom: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnavailable as exc:
        print(f"mailroom: database unavailable: {exc}", file=sys.stderr)
        return getattr(args, "tempfail_status", EXIT_ERROR)
    except MailroomError as exc:
        print(f"mailroom: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks
        if args.debug:
            raise
        logging.getLogger("mailroom").debug("internal error", exc_info=True)
        print(f"mailroom: internal error: {type(exc).__name__}: {exc} (run with --debug)",
              file=sys.stderr)
        return EXIT_ERROR


def _start_logging(args: argparse.Namespace) -> None:
    """Logging as the options, else the ``[logging]`` settings, ask (:mod:`mailroom.cli.logs`).

    The helpline's addresses, which log lines keep, come from the settings too;
    none when the configuration cannot be read (the command then says why).
    """
    try:
        settings: Settings | None = load_settings(getattr(args, "config", None))
    except (MailroomError, OSError):
        settings = None
    log_format = args.log_format or (settings.log_format if settings else "text")
    log_file = args.log_file or (settings.log_file if settings else None)
    setup_logging(args.debug, own_addresses(settings) if settings else (),
                  log_format=log_format, log_file=log_file)


