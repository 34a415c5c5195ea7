"""The subcommands: each parses its arguments and calls into the package."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer, sessionmaker

from mailroom.app import App
from mailroom.cases.participants import allow, remove
from mailroom.cases.practitioner import merge_case_into
from mailroom.cases.tickets import ticket_by_reference
from mailroom.cases.views import inbox_view, list_tickets, ticket_detail, ticket_summary
from mailroom.cli.context import cli_actor, open_app, settings_from
from mailroom.cli.options import add_json, add_limit, say_truncated, words
from mailroom.cli.output import EXIT_ERROR, EXIT_OK, emit
from mailroom.errors import MailroomError
from mailroom.pipeline import process_item
from mailroom.resources import EXAMPLE_CONFIG, PLATFORMS, shipped_text
from mailroom.runtime.describe import config_warnings, describe_settings
from mailroom.runtime.wiring import read_platforms
from mailroom.store.db import make_engine, unavailable_as_store_error
from mailroom.store.migrate import upgrade
from mailroom.store.models import InboxItem, Ticket
from mailroom.vocabulary import InboxStatus, TicketStatus


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command")
    db.required = True
    db.add_parser("upgrade", help="apply the migrations").set_defaults(handler=cmd_db_upgrade)

    check = sub.add_parser("check-config", help="validate the config, say what would run and "
                           "warn about what to fix")
    add_json(check)
    shipped = check.add_mutually_exclusive_group()
    shipped.add_argument("--example", action="store_const", const=EXAMPLE_CONFIG,
                         dest="shipped", help="print the example configuration (every key "
                         "with its default) instead")
    shipped.add_argument("--platforms", action="store_const", const=PLATFORMS, dest="shipped",
                         help="print the shipped platform directory instead")
    check.set_defaults(handler=cmd_check_config)

    _register_tickets(sub)
    _register_inbox(sub)


def _register_tickets(sub: Any) -> None:
    tickets = sub.add_parser("tickets", help="list and show tickets").add_subparsers(
        dest="tickets_command")
    tickets.required = True
    listing = tickets.add_parser("list", help="tickets, newest first (merged ones left out)")
    listing.add_argument("--status", type=words(TicketStatus, "status"), default=(),
                         help=f"only these: {', '.join(TicketStatus)} (comma-separated; "
                              "default: every status)")
    add_limit(listing, "tickets")
    add_json(listing)
    listing.set_defaults(handler=cmd_tickets_list)
    show = tickets.add_parser("show", help="one ticket with messages, participants, events")
    show.add_argument("ticket", metavar="ID", help="id or reference (HL-000123)")
    add_json(show)
    show.set_defaults(handler=cmd_tickets_show)
    allow = tickets.add_parser("allow", help="let an address receive a case's answers")
    allow.add_argument("ticket", metavar="ID", help="id or reference (HL-000123)")
    allow.add_argument("address", metavar="ADDRESS", help="an address, or 'all' pending ones")
    allow.set_defaults(handler=cmd_tickets_allow)
    remove = tickets.add_parser("remove", help="stop an address receiving anything of a case")
    remove.add_argument("ticket", metavar="ID", help="id or reference (HL-000123)")
    remove.add_argument("address", metavar="ADDRESS")
    remove.set_defaults(handler=cmd_tickets_remove)
    merge = tickets.add_parser("merge", help="merge cases into one (their people come along)")
    merge.add_argument("ticket", metavar="ID", help="the case that stays")
    merge.add_argument("others", nargs="+", metavar="OTHER", help="the cases merged into it")
    merge.set_defaults(handler=cmd_tickets_merge)


def _register_inbox(sub: Any) -> None:
    inbox = sub.add_parser("inbox", help="inbound messages and their processing").add_subparsers(
        dest="inbox_command")
    inbox.required = True
    failed = f"{InboxStatus.BAD},{InboxStatus.SHUNT}"
    listing = inbox.add_parser(
        "list", help=f"inbound messages: by default only those that failed ({failed})")
    listing.add_argument("--status", type=words(InboxStatus, "status"),
                         default=(InboxStatus.BAD, InboxStatus.SHUNT),
                         help=f"only these: {', '.join(InboxStatus)} (comma-separated; "
                              f"default {failed}: the messages that need an admin)")
    add_limit(listing, "messages")
    add_json(listing)
    listing.set_defaults(handler=cmd_inbox_list)
    retry = inbox.add_parser("retry", help="process a bad or shunted message again")
    retry.add_argument("ids", nargs="+", metavar="ID")
    retry.set_defaults(handler=cmd_inbox_retry)


# --- helpers ---------------------------------------------------------------------


# --- commands --------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    engine = make_engine(settings.database_url)
    try:
        with unavailable_as_store_error():
            before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"database already at {after}")
    else:
        print(f"database upgraded from {before or 'empty'} to {after}")
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    if args.shipped:
        sys.stdout.write(shipped_text(args.shipped))
        return EXIT_OK
    settings = settings_from(args)
    platforms = read_platforms(settings)
    report = describe_settings(settings, platforms)
    report["warnings"] = config_warnings(settings, platforms)
    emit(report, args.json, _check_text)
    return EXIT_OK


def _check_text(report: dict[str, Any]) -> str:
    lines = [f"{k}: {v}" for k, v in report.items() if k != "warnings"]
    return "\n".join(lines + [f"warning: {w}" for w in report["warnings"]])


def cmd_tickets_list(args: argparse.Namespace) -> int:

    with open_app(args) as app, app.sessions() as session:
        found = list_tickets(session, args.status, args.limit + 1)
        tickets = [ticket_summary(t) for t in found[: args.limit]]
    emit(tickets, args.json, _tickets_table)
    say_truncated(len(tickets), args.limit, len(found) > args.limit, "tickets")
    return EXIT_OK


def _tickets_table(tickets: list[dict[str, Any]]) -> str:
    if not tickets:
        return "no tickets"
    rows = [f"{'REFERENCE':<11} {'STATUS':<12} {'PRIORITY':<8} {'CATEGORY':<16} "
            f"{'REQUESTER':<32} SUBJECT"]
    for t in tickets:
        rows.append(f"{t['reference']:<11} {t['status']:<12} {t['priority']:<8} "
                    f"{(t['category'] or '-'):<16} "
                    f"{(t['requester'] or '-')[:32]:<32} {t['subject'][:60]}")
    return "\n".join(rows)


def cmd_tickets_show(args: argparse.Namespace) -> int:

    with open_app(args) as app, app.sessions() as session:
        ticket = ticket_by_reference(session, args.ticket)
        if ticket is None:
            raise MailroomError(f"no ticket {args.ticket}")
        detail = ticket_detail(session, ticket)
    emit(detail, args.json, _ticket_text)
    return EXIT_OK


def _ticket_text(t: dict[str, Any]) -> str:
    lines = [f"{t['reference']}  {t['status']}  {t['subject']}",
             f"requester: {t['requester']}  category: {t['category'] or '-'}  "
             f"role: {t['role'] or '-'}  assignee: {t['assignee'] or '-'}  "
             f"priority: {t['priority']}  country: {t['country'] or '-'}",
             "participants: " + ", ".join(
                 f"{p['address']} ({p['role']}, {p['state']}"
                 + (f", failing since {p['failing_since']}" if p.get("failing_since") else "")
                 + ")" for p in t["participants"])]
    if t.get("related"):
        lines.append("related cases (not merged): "
                     + ", ".join(r["reference"] for r in t["related"]))
    lines += [f"also reported in {', '.join(r['references'])}: {r['url']}"
              for r in t.get("repeats", [])]
    for e in t["escalations"]:
        lines.append(f"escalation {e['id']} {e['platform']}: {e['status']} "
                     f"ref={e['platform_ref'] or '-'}"
                     f" follow-ups={e['follow_ups']} outcome={e['outcome'] or '-'}")
    for m in t["messages"]:
        flags = f"  [{', '.join(m['flags'])}]" if m["flags"] else ""
        lines += ["", f"--- {m['direction']} {m['kind']} from {m['sender']} at {m['date']}{flags}",
                  (m["text"] or "").strip()]
        lines += [f"[attachment] {a['filename']} ({a['content_type']}, {a['size']} bytes)"
                  for a in m["attachments"]]
    lines += ["", "events:"] + [f"  {e['at']} {e['actor']} {e['action']}" for e in t["events"]]
    return "\n".join(lines)


@contextlib.contextmanager
def _changing_ticket(args: argparse.Namespace) -> Iterator[tuple[App, Session, Ticket]]:

    with open_app(args) as app, app.sessions.begin() as session:
        ticket = ticket_by_reference(session, args.ticket)
        if ticket is None:
            raise MailroomError(f"no ticket {args.ticket}")
        if ticket.merged_into is not None:
            raise MailroomError(f"{ticket.reference} was merged into another case; "
                                "give the case it was merged into")
        yield app, session, ticket


def cmd_tickets_allow(args: argparse.Namespace) -> int:

    with _changing_ticket(args) as (app, session, ticket):
        changed = allow(session, ticket, args.address, actor=cli_actor(), at=app.now())
        reference = ticket.reference
    print(f"{reference}: allowed {', '.join(changed)}" if changed
          else f"{reference}: nobody was waiting to be allowed")
    return EXIT_OK


def cmd_tickets_remove(args: argparse.Namespace) -> int:

    with _changing_ticket(args) as (app, session, ticket):
        removed = remove(session, ticket, args.address, actor=cli_actor(), at=app.now())
        reference = ticket.reference
    print(f"{reference}: removed {args.address.lower()}" if removed
          else f"{reference}: {args.address.lower()} was not on the case")
    return EXIT_OK


def cmd_tickets_merge(args: argparse.Namespace) -> int:

    with _changing_ticket(args) as (app, session, ticket):
        merged = [merge_case_into(app.settings, app.blobs, session, ticket, ref, clock=app.clock,
                                  actor=cli_actor()).reference for ref in args.others]
        reference = ticket.reference
    print(f"{reference}: merged {', '.join(str(m) for m in merged)}")
    return EXIT_OK


def cmd_inbox_list(args: argparse.Namespace) -> int:

    with open_app(args) as app, app.sessions() as session:
        items = list(session.execute(
            select(InboxItem).options(defer(InboxItem.raw))
            .where(InboxItem.status.in_(args.status))
            .order_by(InboxItem.id).limit(args.limit + 1)
        ).scalars())
        views = [inbox_view(i) for i in items[: args.limit]]
    emit(views, args.json, lambda found: _inbox_table(found, args.status))
    say_truncated(len(views), args.limit, len(items) > args.limit, "messages")
    return EXIT_OK


def _inbox_table(items: list[dict[str, Any]], statuses: tuple[str, ...]) -> str:
    if not items:
        return f"no {' or '.join(statuses)} messages (--status chooses others)"
    return "\n".join(
        f"{i['id']:>6} {i['status']:<6} {i['door']:<5} {(i['door_ref'] or '')[:40]:<40} "
        f"{_first_line(i['error'] or i['outcome'])}"
        for i in items
    )


def _first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


def cmd_inbox_retry(args: argparse.Namespace) -> int:

    status = EXIT_OK
    with open_app(args) as app:
        for ident in args.ids:
            if not ident.isdigit() or not _reset(app.sessions, int(ident)):
                print(f"mailroom: no bad or shunted inbox message {ident}", file=sys.stderr)
                status = EXIT_ERROR
                continue
            print(f"{ident}: {process_item(app, int(ident))}")
    return status


def _reset(sessions: sessionmaker[Session], item_id: int) -> bool:
    with sessions.begin() as session:
        item = session.get(InboxItem, item_id)
        if item is None or item.status not in (InboxStatus.BAD, InboxStatus.SHUNT):
            return False
        item.status = InboxStatus.NEW
        return True


