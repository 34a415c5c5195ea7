"""The SMTP door under load: mailroom's real door beside a bare server.

The servers run in this process (their own threads, as in ``mailroom
run``); the load comes from ``bench.smtp_load`` in a separate process, so
client and server do not share an interpreter lock. The mailroom door is
``HelplineHandler`` + ``SmtpDoor`` handing each message to the doors' inbox
(``runtime.doors.door_inbox``: ``store_raw``),
exactly as the daemon wires it; the inbox worker is not running, so the
figure is the door's own.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.bare_smtp import bare_controller
from bench.env import Site
from mailroom.doors.smtp import HelplineHandler, SmtpDoor
from mailroom.runtime.doors import door_inbox

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MAX_CLIENTS = 100  # connections the door takes from the load generator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def bare_server(max_size: int) -> Iterator[int]:
    port = free_port()
    controller = bare_controller(HOST, port, max_size)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextlib.contextmanager
def mailroom_door(site: Site) -> Iterator[int]:
    """The real door storing into ``site``'s database, on a free port."""
    app = site.app()
    settings = site.settings
    port = free_port()
    # The load's clients all come from 127.0.0.1: the per-client limit would refuse most.
    door = SmtpDoor(HelplineHandler(door_inbox(app), settings.domains), host=HOST, port=port,
                    max_size=settings.smtp_max_size, hostname=settings.domain,
                    max_connections_per_client=MAX_CLIENTS)
    door.start()
    try:
        yield port
    finally:
        door.stop()
        app.close()


def run_load(port: int, mail_dir: Path, *, clients: int, seconds: float) -> dict[str, Any]:
    """Run ``bench.smtp_load`` in a child process against ``port``; its JSON result."""
    command = [sys.executable, "-m", "bench.smtp_load", "--port", str(port),
               "--mail-dir", str(mail_dir), "--clients", str(clients), "--seconds", str(seconds)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          timeout=seconds * 10 + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"smtp_load failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
