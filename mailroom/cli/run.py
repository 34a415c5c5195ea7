"""``mailroom run``: the daemon in the foreground, until SIGTERM or SIGINT.

Once every part runs, it prints ``SMTP listening on HOST:PORT`` on stdout
(flushed): with ``listen = "HOST:0"`` the system picks a free port, and this
line says which, for whoever started the daemon. A signal sets the daemon's
stop event and every part winds down, so the process exits with status 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from mailroom.cli.context import open_app
from mailroom.runtime.daemon import Daemon

log = logging.getLogger("mailroom.runtime.daemon")


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="the daemon: SMTP listener, IMAP pollers, scheduler")
    run.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    install_signal_handlers(stop)
    with open_app(args) as app:
        Daemon(app, stop).run(ready=_announce)
    return 0


def _announce(daemon: Daemon) -> None:
    if daemon.smtp_address is not None:
        print(f"SMTP listening on {daemon.smtp_address}", flush=True)


def install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, _frame: Any) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
