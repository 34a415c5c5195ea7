"""``mailroom digest [--now] [--json]``: the daily digest (:mod:`mailroom.reports.digest`).

Without ``--now`` it prints the digest as the team would receive it (``--json``:
its values), changing nothing. ``--now`` queues it for the team at once
(the team address, else every practitioner), whatever the time; the daemon or
``mailroom tick`` sends it. Exit 1 when there is nobody to send it to.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailroom.cli.context import open_app
from mailroom.cli.output import EXIT_ERROR, EXIT_OK, emit
from mailroom.reports.digest import build_digest, digest_context, queue_digest
from mailroom.store.db import unavailable_as_store_error


def register(sub: Any) -> None:
    digest = sub.add_parser("digest", help="the day's work for the team (print, or --now: send)")
    digest.add_argument("--now", action="store_true",
                        help="queue it for the team now (else: print it, changing nothing)")
    digest.add_argument("--json", action="store_true")
    digest.set_defaults(handler=cmd_digest)


def cmd_digest(args: argparse.Namespace) -> int:

    with open_app(args) as app:
        digest = build_digest(app)
        if args.now:
            with unavailable_as_store_error(), app.sessions.begin() as session:
                queued = queue_digest(app, session, digest)
            if not queued:
                print("mailroom: no team address and no practitioners to send the digest to",
                      file=sys.stderr)
                return EXIT_ERROR
            print("digest queued for the team", file=sys.stderr)
            return EXIT_OK
        context = digest_context(app.settings, digest)
        text, _ = app.renderer.render("practitioner/digest", context)
    emit(_plain(context), args.json, lambda _: text.rstrip("\n"))
    return EXIT_OK


def _plain(context: dict[str, Any]) -> dict[str, Any]:
    """The context with its moments as ISO strings, for --json."""
    def value(item: Any) -> Any:
        if isinstance(item, list):
            return [value(i) for i in item]
        if isinstance(item, dict):
            return {k: value(v) for k, v in item.items()}
        return item.isoformat() if hasattr(item, "isoformat") else item

    return {key: value(item) for key, item in context.items()}
