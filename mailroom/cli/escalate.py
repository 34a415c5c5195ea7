"""Escalations from the command line.

``mailroom escalate ID --platform P [--url URL…] [--context TEXT] [--evidence] [--json]``
opens an escalation exactly as the practitioners' ``#escalate`` command does
(:func:`mailroom.cases.escalations.open_escalation`) and queues its mail; the
daemon, ``mailroom tick`` or ``mailroom outbox flush`` sends it. Without
``--url`` the case's own URLs for that platform are reported.

``mailroom escalations list [--ticket REF] [--json]`` lists every escalation
(of one case, with the cases merged into it), oldest first.
``mailroom escalations outcome ID VALUE [--json]`` records or corrects the
outcome of escalation ID (:func:`~mailroom.cases.escalations.record_outcome`):
the case's practitioners get the confirmation, whose reply address names the
escalation.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.cases.escalations import escalation_view, open_escalation, record_outcome
from mailroom.cases.tickets import ticket_by_reference
from mailroom.cli.context import cli_actor, open_app
from mailroom.cli.options import add_json
from mailroom.cli.output import EXIT_OK, emit
from mailroom.errors import MailroomError
from mailroom.platforms import Platforms
from mailroom.store.db import unavailable_as_store_error
from mailroom.store.models import Escalation, Ticket
from mailroom.store.repository import live_ticket
from mailroom.vocabulary import EscalationOutcome


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
    _register_escalations(sub)


def _register_escalations(sub: Any) -> None:
    group = sub.add_parser("escalations", help="list escalations, record or correct an outcome")
    escalations = group.add_subparsers(dest="escalations_command")
    escalations.required = True
    listing = escalations.add_parser("list", help="every escalation, oldest first")
    listing.add_argument("--ticket", metavar="REF", help="only this case's (id or HL-000123)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_escalations_list)
    outcome = escalations.add_parser("outcome", help="record or correct an escalation's outcome")
    outcome.add_argument("escalation", metavar="ID", type=int, help="the escalation's id")
    outcome.add_argument("outcome", metavar="VALUE", help=" | ".join(EscalationOutcome))
    outcome.add_argument("--json", action="store_true")
    outcome.set_defaults(handler=cmd_escalations_outcome)


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


def cmd_escalations_list(args: argparse.Namespace) -> int:
    with open_app(args) as app, unavailable_as_store_error(), app.sessions() as session:
        query = select(Escalation).order_by(Escalation.id)
        if args.ticket:
            ticket = ticket_by_reference(session, args.ticket)
            if ticket is None:
                raise MailroomError(f"no ticket {args.ticket}")
            query = query.where(Escalation.ticket_id.in_(case_family(session, ticket.id)))
        views = [listed_view(app.platforms, session, row)
                 for row in session.execute(query).scalars()]
    emit(views, args.json, escalations_text)
    return EXIT_OK


def cmd_escalations_outcome(args: argparse.Namespace) -> int:
    value = args.outcome.strip().lower().replace("-", "_")
    with open_app(args) as app, unavailable_as_store_error(), app.sessions.begin() as session:
        escalation = session.get(Escalation, args.escalation)
        if escalation is None:
            raise MailroomError(f"no escalation {args.escalation}")
        before = escalation.outcome
        changed = record_outcome(app, session, escalation, value, actor=cli_actor())
        view = {**listed_view(app.platforms, session, escalation), "before": before,
                "changed": changed}
    emit(view, args.json, outcome_text)
    return EXIT_OK


def case_family(session: Session, ticket_id: int) -> list[int]:
    """The case and the cases merged into it (their escalations came along)."""
    family, found = [ticket_id], [ticket_id]
    while found:
        found = list(session.execute(
            select(Ticket.id).where(Ticket.merged_into.in_(found))).scalars())
        family += found
    return family


def listed_view(platforms: Platforms, session: Session,
                escalation: Escalation) -> dict[str, Any]:
    ticket = session.get(Ticket, live_ticket(session, escalation.ticket_id))
    platform = platforms.get(escalation.platform)
    return {**escalation_view(escalation), "reference": ticket.reference if ticket else None,
            "platform_name": platform.name if platform else escalation.platform}


def escalations_text(views: list[dict[str, Any]]) -> str:
    if not views:
        return "no escalations"
    lines = [f"{'ID':>5}  {'CASE':<10} {'PLATFORM':<12} {'STATUS':<12} {'OUTCOME':<11} "
             f"{'OPENED':<16} THEIR REF"]
    for view in views:
        lines.append(
            f"{view['id']:>5}  {view['reference'] or '-':<10} {view['platform_name']:<12} "
            f"{view['status']:<12} {view['outcome'] or '-':<11} "
            f"{(view['opened_at'] or '')[:16]:<16} {view['platform_ref'] or '-'}")
    return "\n".join(lines)


def outcome_text(view: dict[str, Any]) -> str:
    what = (f"now {view['outcome']} (was {view['before']})" if view["changed"] and view["before"]
            else view["outcome"] if view["changed"] else f"already {view['outcome']}, unchanged")
    return (f"escalation {view['id']} of {view['reference']} to {view['platform_name']}: "
            f"outcome {what}; the confirmation is queued for the case's practitioners")
