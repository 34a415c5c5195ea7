"""Subcommands for the scheduler and the outbox: ``tick``, ``outbox list|flush``.

``tick`` first polls each IMAP account once, through the doors' wiring and
under the account's lock (:func:`mailroom.runtime.doors.poll_accounts_once`:
an account a running daemon polls is skipped, and said so), then runs every
job that is due (:data:`mailroom.runtime.jobs.EVERY_JOB`), so that mail
fetched in a tick is processed and answered in the same tick.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import defer

from mailroom.cases.views import outbox_view
from mailroom.cli.context import open_app
from mailroom.cli.options import add_json, add_limit, say_truncated, words
from mailroom.cli.output import EXIT_OK, emit
from mailroom.errors import UsageError
from mailroom.runtime.doors import poll_accounts_once
from mailroom.runtime.jobs import EVERY_JOB
from mailroom.runtime.scheduler import run_due_jobs
from mailroom.sending.sender import send_due
from mailroom.store.models import OutboxItem
from mailroom.vocabulary import OutboxStatus


def register(sub: Any) -> None:
    tick = sub.add_parser("tick", help="poll each IMAP account once, run every due job "
                          "once, then exit")
    tick.add_argument("--now", help="pretend it is this time (ISO-8601)")
    add_json(tick)
    tick.set_defaults(handler=cmd_tick)

    outbox = sub.add_parser("outbox", help="outgoing mail").add_subparsers(dest="outbox_command")
    outbox.required = True
    listing = outbox.add_parser("list", help="queued, sent and failed outgoing mail, "
                                "newest first")
    listing.add_argument("--status", type=words(OutboxStatus, "status"), default=(),
                         help=f"only these: {', '.join(OutboxStatus)} (comma-separated; "
                              "default: every status)")
    add_limit(listing, "messages")
    add_json(listing)
    listing.set_defaults(handler=cmd_outbox_list)
    flush = outbox.add_parser("flush", help="send what is due now")
    add_json(flush)
    flush.set_defaults(handler=cmd_outbox_flush)


def parse_now(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--now: not an ISO-8601 time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_tick(args: argparse.Namespace) -> int:

    now = parse_now(args.now)
    with open_app(args) as app:
        if now is not None:
            app.clock = lambda: now
        results: dict[str, Any] = dict(poll_accounts_once(app))
        results.update(run_due_jobs(app, EVERY_JOB))
    emit(results, args.json, lambda r: "\n".join(f"{k}: {v}" for k, v in r.items()))
    return EXIT_OK


def cmd_outbox_list(args: argparse.Namespace) -> int:

    with open_app(args) as app, app.sessions() as session:
        stmt = select(OutboxItem).options(defer(OutboxItem.rendered)) \
            .order_by(OutboxItem.id.desc()).limit(args.limit + 1)
        if args.status:
            stmt = stmt.where(OutboxItem.status.in_(args.status))
        found = list(session.execute(stmt).scalars())
        items = [outbox_view(i) for i in found[: args.limit]]
    emit(items, args.json, _outbox_table)
    say_truncated(len(items), args.limit, len(found) > args.limit, "messages")
    return EXIT_OK


def _outbox_table(items: list[dict[str, Any]]) -> str:
    if not items:
        return "the outbox is empty"
    return "\n".join(
        f"{i['id']:>6} {i['status']:<7} {i['kind']:<16} {', '.join(i['to'])[:40]:<40} "
        f"{i['subject'][:60]}" for i in items
    )


def cmd_outbox_flush(args: argparse.Namespace) -> int:

    with open_app(args) as app:
        counts = send_due(app, limit=100_000)
    emit(counts, args.json, lambda c: ", ".join(f"{k}: {v}" for k, v in c.items()) or
         "nothing due")
    return EXIT_OK
