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
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mailroom import __version__
from mailroom.cli.logs import setup_logging
from mailroom.cli.output import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_USAGE
from mailroom.errors import ConfigError, MailroomError, StoreUnavailable, UsageError
from mailroom.privacy.redaction import own_addresses
from mailroom.settings import LOG_FORMATS, Settings, load_settings

PRIVATE_UMASK = 0o077

Handler = Callable[[argparse.Namespace], int]
# Every subcommand module, in the order ``--help`` lists them, with the commands its
# ``register(sub)`` adds (a test holds the two together). A command line that names one
# of them imports that module only: ``mailroom ingest -``, run by an MTA for every
# message, starts without the console's, the daemon's and the reports' libraries. Any
# other (``--help``, a mistake) imports them all.
SUBCOMMANDS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (f"mailroom.cli.{module}", frozenset(names)) for module, names in (
        ("commands", ("db", "check-config", "tickets", "inbox")),
        ("ingest", ("ingest",)),
        ("run", ("run",)),
        ("status", ("status",)),
        ("jobs", ("tick", "outbox")),
        ("escalate", ("escalate", "escalations")),
        ("reports", ("report", "export", "erase", "retention")),
        ("hashes", ("hashes",)),
        ("digest", ("digest",)),
        ("backup", ("backup", "restore")),
        ("web", ("web", "users")),
        ("templates", ("templates",)),
    ))
# The global options that take a value: what follows them is not the command.
_VALUED = ("--config", "--log-format", "--log-file")


class Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message (no usage dump on stderr noise).

    Every parser, the top one and each subcommand's, takes the global options,
    so that they work before the subcommand and after it alike
    (``mailroom --config F tickets list`` and ``mailroom tickets list --config F``).
    A subcommand's parser leaves them unset when not given (``SUPPRESS``), so it
    never overwrites what was given before the subcommand.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_global_options(self, default=argparse.SUPPRESS)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"mailroom: {message} (see: {self.prog} --help)\n")


def add_global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="the TOML configuration (default: MAILROOM_CONFIG, else "
                             "mailroom.toml in the data directory, else built-in defaults)")
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show tracebacks and debug logs")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default=default,
                        help="log lines as text or JSON lines (default: [logging] format, "
                             "else text)")
    parser.add_argument("--log-file", type=Path, default=default, metavar="PATH",
                        help="append log lines to PATH instead of stderr (default: "
                             "[logging] file)")


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser for ``argv`` (default: this process's arguments): with the
    subcommands of the module of the command it names, else with all of them."""
    parser = Parser(prog="mailroom", description="Email-first helpline ticketing.")
    parser.set_defaults(config=None, debug=False, log_format=None, log_file=None)
    parser.add_argument("--version", action="version", version=f"mailroom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in modules_for(command_named(sys.argv[1:] if argv is None else argv)):
        importlib.import_module(module).register(sub)
    return parser


def command_named(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word that is neither an option nor an
    option's value."""
    words = iter(argv)
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def modules_for(command: str | None) -> tuple[str, ...]:
    """The subcommand module that adds ``command``; every one when none does."""
    named = tuple(module for module, names in SUBCOMMANDS if command in names)
    return named or tuple(module for module, _ in SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    previous = os.umask(PRIVATE_UMASK)
    try:
        status = run_command(argv)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return reader_went_away()
    finally:
        os.umask(previous)


def reader_went_away() -> int:
    """Whoever read our output stopped (``mailroom outbox list | head -3``): stop quietly,
    as a command killed by SIGPIPE does. What is still buffered goes to /dev/null, so
    that Python's flush at exit does not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def run_command(argv: Sequence[str] | None) -> int:
    parser = build_parser(argv)
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
    except BrokenPipeError:
        raise  # main() stops quietly
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


