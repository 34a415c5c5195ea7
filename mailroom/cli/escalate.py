"""``mailroom escalate ID --platform P [--url URL…] [--context TEXT] [--evidence] [--json]``.

Opens an escalation exactly as the practitioners' ``#escalate`` command does
(:func:`mailroom.cases.escalations.open_escalation`) and queues its mail; the
daemon, ``mailroom tick`` or ``mailroom outbox flush`` sends it. Without
``--url`` the case's own URLs for that platform are reported.
"""

from __future__ import annotations

import argparse
from typing import Any

from mailroom.cases.escalations import escalation_view, open_escalation
from mailroom.cases.tickets import ticket_by_reference
from mailroom.cli.context import cli_actor, open_app
from mailroom.cli.options import add_json
from mailroom.cli.output import EXIT_OK, emit
from mailroom.errors import MailroomError
from mailroom.store.db import unavailable_as_store_error
from mailroom.store.models import Ticket
from mailroom.store.repository import live_ticket


def register(sub: Any) -> None:
    escalate = sub.add_parser("escalate", help="escalate a case to a platform's trust-and-safety "
                                               "team")
    escalate.add_argument("ticket", metavar="ID", help="ticket id or reference (HL-000123)")
    escalate.add_argument("--platform", required=True, metavar="P",
                          help="platform key from the directory, e.g. tiktok")
    escalate.add_argument("--url", dest="urls", action="extend", nargs="+", default=[],
                          metavar="URL", help="URL to report (default: the case's URLs on P)")
    escalate.add_argument("--context", metavar="TEXT",
                          help="what the platform should know that it cannot see")
    escalate.add_argument("--evidence", action="store_true",
                          help="attach the requester's files (never for illegal content)")
    add_json(escalate)
    escalate.set_defaults(handler=cmd_escalate)


def cmd_escalate(args: argparse.Namespace) -> int:

    with open_app(args) as app, unavailable_as_store_error(), app.sessions.begin() as session:
        ticket = ticket_by_reference(session, args.ticket)
        if ticket is None:
            raise MailroomError(f"no ticket {args.ticket}")
        ticket = session.get(Ticket, live_ticket(session, ticket.id)) or ticket  # merged
        escalation = open_escalation(app, session, ticket, args.platform, urls=args.urls,
                                     context=args.context, actor=cli_actor(),
                                     evidence=args.evidence)
        platform = app.platforms[escalation.platform]
        view = {**escalation_view(escalation), "reference": ticket.reference,
                "platform_name": platform.name, "to": platform.address}
    emit(view, args.json, escalation_text)
    return EXIT_OK


def escalation_text(view: dict[str, Any]) -> str:
    lines = [f"escalation {view['id']} of {view['reference']} to {view['platform_name']} "
             f"<{view['to']}>: {view['status']} (queued; sent by the daemon, `mailroom tick` "
             "or `mailroom outbox flush`)"]
    lines += [f"  url: {url}" for url in view["urls"]]
    lines.append(f"  first follow-up due: {view['next_follow_up_at']}")
    return "\n".join(lines)
