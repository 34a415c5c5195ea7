"""``mailroom ingest PATH…``: ``.eml`` files, Maildirs, mbox files, or ``-`` (one message
on stdin, for an MTA's pipe) through the inbox and the pipeline (:mod:`mailroom.runtime.ingest`).

Behind an MTA it runs once for every message delivered, so it starts with what it needs
only: the command line imports this module alone for it (:data:`mailroom.cli.main.SUBCOMMANDS`).
With ``-`` every temporary failure (the database, the configuration) exits 75, so that the
MTA keeps the message and tries again; the exit status is 0 once the message is held.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailroom.cli.context import open_app
from mailroom.cli.options import add_json
from mailroom.cli.output import EXIT_ERROR, EXIT_OK, EXIT_TEMPFAIL, emit
from mailroom.errors import UsageError
from mailroom.runtime.ingest import ingest_paths


def register(sub: Any) -> None:
    ingest = sub.add_parser("ingest", help="ingest .eml files, Maildirs, mbox files or - (stdin)")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    add_json(ingest)
    ingest.add_argument("--no-progress", action="store_true",
                        help="no progress bar on stderr (there is none with --json either)")
    ingest.add_argument("--mail-from", metavar="ADDRESS",
                        help="with -: the envelope sender (an MTA pipe's ${sender})")
    ingest.add_argument("--rcpt-to", metavar="ADDRESS", action="append", default=[],
                        help="with -: an envelope recipient (an MTA pipe's ${recipient}); "
                             "repeat for several")
    ingest.set_defaults(handler=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    stdin_only = args.paths == ["-"]
    if stdin_only:
        args.tempfail_status = EXIT_TEMPFAIL
    if (args.mail_from is not None or args.rcpt_to) and "-" not in args.paths:
        raise UsageError("--mail-from and --rcpt-to describe the message on stdin: give -")
    with open_app(args) as app:
        summary = ingest_paths(app, args.paths, stdin=sys.stdin.buffer,
                               progress=not args.no_progress and not args.json,
                               stdin_envelope=(args.mail_from, tuple(args.rcpt_to)))
    emit(summary, args.json, lambda s: ", ".join(f"{k}: {v}" for k, v in s.items()))
    return EXIT_OK if not summary.get("unreadable") else EXIT_ERROR
