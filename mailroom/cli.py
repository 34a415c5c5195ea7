"""The ``mailroom`` command line (SPEC section 3).

Exit status: 0 success, 1 a handled error (one line on stderr), 2 bad usage.
Every listing has ``--json``: one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mailroom import __version__
from mailroom.errors import ConfigError, MailroomError, StoreUnavailable, UsageError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_TEMPFAIL = 0, 1, 2, 75

Handler = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message (no usage dump on stderr noise)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"mailroom: {message} (see: {self.prog} --help)\n")


def build_parser() -> Parser:
    from mailroom.cli_commands import register

    parser = Parser(prog="mailroom", description="Email-first helpline ticketing.")
    parser.add_argument("--config", help="path of the TOML config (or MAILROOM_CONFIG)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"mailroom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)
    setup_logging(args.debug)
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


def setup_logging(debug: bool) -> None:
    level = logging.DEBUG if debug else getattr(
        logging, os.environ.get("MAILROOM_LOG_LEVEL", "INFO").upper(), logging.INFO
    )
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apscheduler", "mail-parser", "mailparser", "mail_parser", "aiosmtpd",
                  "mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print ``data`` as one JSON document or as text for people."""
    if as_json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        output = text(data)
        if output:
            print(output)
