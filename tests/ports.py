"""Loopback ports a test holds for as long as it needs them.

A test never picks a number, lets go of it and hands it on (``bind(0)``,
``close()``, reuse): another process may take the port in between. Servers
that can bind port 0 do so and report the port they got (the SMTP door,
``mailroom run``, the SMTP sink). For the others, and for "nothing listens
there", :class:`PortReservation` keeps a socket bound to the port, without
listening, for the whole test:

- connections to it are refused (nothing listens), reliably;
- no other process can bind it: the holder has ``SO_REUSEPORT`` and no
  ``SO_REUSEADDR``, so only a socket that also sets ``SO_REUSEPORT`` under the
  same user may join it, which is what our own listeners do
  (:meth:`PortReservation.listener`, Dovecot's ``reuse_port = yes``);
- a server on it can go down and come back on the same port (an outage)
  without the port ever being free for someone else.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
ANNOUNCED = re.compile(r"^SMTP listening on .*:(\d+)$", re.MULTILINE)
START_TIMEOUT = 60.0  # for `mailroom run` to come up: generous, a busy machine is slow


class PortReservation:
    """A loopback port bound (not listening) until :meth:`close`."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self._holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._holder.bind((host, 0))
        self.port = int(self._holder.getsockname()[1])

    def listener(self, backlog: int = 64) -> socket.socket:
        """A socket listening on the reserved port (joining the holder)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.host, self.port))
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        self._holder.close()

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def refused_port() -> Iterator[int]:
    """A port where nothing listens and nothing can start listening: connection refused."""
    with PortReservation() as reservation:
        yield reservation.port


def announced_smtp_port(stdout: Path, running: Callable[[], bool],
                        timeout: float = START_TIMEOUT) -> int:
    """The port ``mailroom run`` (with ``listen = "127.0.0.1:0"``) says it listens on,
    read from the file its stdout goes to; fails when it stopped or never said."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = ANNOUNCED.search(stdout.read_text() if stdout.exists() else "")
        if found:
            return int(found.group(1))
        if not running():
            raise AssertionError(f"mailroom run stopped before listening: {stdout}")
        time.sleep(0.05)
    raise AssertionError(f"mailroom run did not say where it listens within {timeout} s")
