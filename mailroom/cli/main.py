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
the handler :func:`setup_logging` installs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from mailroom import __version__
from mailroom.cli import commands, escalate, hashes, jobs, reports, run, web
from mailroom.cli.output import EXIT_ERROR, EXIT_USAGE
from mailroom.errors import ConfigError, MailroomError, StoreUnavailable, UsageError
from mailroom.privacy.redaction import RedactionFilter, own_addresses
from mailroom.settings import load_settings

PRIVATE_UMASK = 0o077
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Handler = Callable[[argparse.Namespace], int]
# Every subcommand module, in the order ``--help`` lists them: each adds its parsers.
SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (
    commands.register, run.register, jobs.register, escalate.register, reports.register,
    hashes.register, web.register,
)


class Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message (no usage dump on stderr noise)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"mailroom: {message} (see: {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="mailroom", description="Email-first helpline ticketing.")
    parser.add_argument("--config", help="path of the TOML config (or MAILROOM_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
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
    setup_logging(args.debug, _own_addresses(args))
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"mailroom: config: {problem}", file=sys.stderr)
        return EXIT_ERROR
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


def setup_logging(debug: bool, own_addresses: Iterable[str] = ()) -> None:
    """Log to stderr through the redaction filter (:mod:`mailroom.privacy.redaction`).

    A process whose root logger has handlers already (a host program, pytest)
    keeps them as they are: they are its own, and so is what they write.
    """
    level = logging.DEBUG if debug else getattr(
        logging, os.environ.get("MAILROOM_LOG_LEVEL", "INFO").upper(), logging.INFO
    )
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(RedactionFilter(own_addresses))
        root.addHandler(handler)
        root.setLevel(level)
    for noisy in ("apscheduler", "mail-parser", "mailparser", "mail_parser", "aiosmtpd",
                  "mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _own_addresses(args: argparse.Namespace) -> frozenset[str]:
    """The helpline's addresses, which log lines keep; none when the configuration
    cannot be read (the command then says why)."""
    try:
        return own_addresses(load_settings(getattr(args, "config", None)))
    except (MailroomError, OSError):
        return frozenset()


