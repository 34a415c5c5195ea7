"""``mailroom web`` (the staff console alone) and ``mailroom users`` (who may sign in).

``mailroom web`` serves the console on ``web.listen`` until SIGTERM or SIGINT,
with a sender thread of its own, so that the sign-in links and the replies
written in the console leave even when no ``mailroom run`` is running (the
outbox's claims keep two senders from sending one mail twice).
"""

from __future__ import annotations

import argparse
import logging
import threading
from functools import partial
from typing import Any

from mailroom.app import App
from mailroom.cli.context import cli_actor, open_app
from mailroom.cli.output import EXIT_OK, emit
from mailroom.cli.run import install_signal_handlers
from mailroom.errors import StoreUnavailable
from mailroom.runtime.status import collect_status
from mailroom.sending.sender import send_due
from mailroom.vocabulary import StaffRole
from mailroom.web.server import ConsoleServer
from mailroom.web.staff import add_user, list_staff, remove_user

log = logging.getLogger("mailroom.web")
SENDER_IDLE_SECONDS = 30.0


def register(sub: Any) -> None:
    web = sub.add_parser("web", help="the staff console alone (mailroom run serves it too)")
    web.set_defaults(handler=cmd_web)

    users = sub.add_parser("users", help="who may sign in to the staff console").add_subparsers(
        dest="users_command")
    users.required = True
    add = users.add_parser("add", help="add a user, or change their role")
    add.add_argument("address", metavar="EMAIL")
    add.add_argument("--role", required=True, choices=tuple(StaffRole))
    add.set_defaults(handler=cmd_users_add)
    listing = users.add_parser("list", help="the configured practitioners and the users")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_users_list)
    remove = users.add_parser("remove", help="remove a user (their sessions end)")
    remove.add_argument("address", metavar="EMAIL")
    remove.set_defaults(handler=cmd_users_remove)


def cmd_web(args: argparse.Namespace) -> int:
    stop, wake = threading.Event(), threading.Event()
    install_signal_handlers(stop)
    with open_app(args) as app:
        # Built first: a setting it refuses (the address, the key file) stops the command
        # before any thread runs.
        server = ConsoleServer(app, on_queued=wake.set, status=partial(collect_status, app))
        sender = threading.Thread(target=_send_when_woken, args=(app, stop, wake),
                                  name="mailroom-sender", daemon=True)
        sender.start()
        server.start()
        log.info("staff console on %s", server.base_url)
        try:
            stop.wait()
        finally:
            server.stop()
            wake.set()
            sender.join(timeout=30)
    return EXIT_OK


def _send_when_woken(app: App, stop: threading.Event, wake: threading.Event) -> None:
    while not stop.is_set():
        wake.wait(SENDER_IDLE_SECONDS)
        wake.clear()
        try:
            send_due(app)
        except StoreUnavailable as exc:
            log.warning("database unavailable, sender waiting: %s", exc)
        except Exception:  # noqa: BLE001 - the sender must survive anything
            log.exception("sender error")


def cmd_users_add(args: argparse.Namespace) -> int:
    with open_app(args) as app, app.sessions.begin() as session:
        staff = add_user(session, args.address, args.role, actor=cli_actor(), at=app.now())
    print(f"{staff.address}: {staff.role}")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    with open_app(args) as app, app.sessions() as session:
        rows = [{"address": s.address, "role": s.role, "configured": s.configured,
                 "second_factor": s.has_second_factor} for s in list_staff(app.settings, session)]
    emit(rows, args.json, lambda data: "\n".join(
        f"{r['address']}  {r['role']}" + ("  (configured practitioner)" if r["configured"]
                                          else "") + ("  2FA" if r["second_factor"] else "")
        for r in data))
    return EXIT_OK


def cmd_users_remove(args: argparse.Namespace) -> int:
    with open_app(args) as app, app.sessions.begin() as session:
        remove_user(app.settings, session, args.address, actor=cli_actor(), at=app.now())
    print(f"{args.address}: removed")
    return EXIT_OK
