"""The SMTP door under load: mailroom's real door beside a bare server.

The servers run in this process (their own threads, as in ``mailroom
run``); the load comes from ``bench.smtp_load`` in a separate process, so
client and server do not share an interpreter lock. The mailroom door is
``HelplineHandler`` + ``SmtpDoor`` with the doors' inbox, as the daemon wires
it, but with room for every client: the clients stand for as many sending
servers, yet all come from 127.0.0.1, which ``max_connections_per_client``
would otherwise turn away. The inbox worker is not running, so the figure is
the door's own.
"""

from __future__ import annotations

import contextlib
import json
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


@contextlib.contextmanager
def bare_server(max_size: int) -> Iterator[int]:
    controller = bare_controller(HOST, 0, max_size)  # any free port
    controller.start()
    try:
        yield int(controller.port)
    finally:
        controller.stop()


@contextlib.contextmanager
def mailroom_door(site: Site, *, clients: int) -> Iterator[int]:
    """The real door storing into ``site``'s database, on any free port (it says which)."""
    app = site.app()
    s = site.settings
    handler = HelplineHandler(door_inbox(app.door_sessions), s.domains,
                              max_recipients=s.smtp_max_recipients)
    door = SmtpDoor(handler, host=HOST, port=0, max_size=s.smtp_max_size, hostname=s.domain,
                    max_connections_per_client=max(clients, s.smtp_max_connections_per_client),
                    idle_timeout=s.smtp_idle_timeout)
    door.start()
    try:
        yield door.port
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
