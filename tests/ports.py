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

import socket
from collections.abc import Iterator
from contextlib import contextmanager

HOST = "127.0.0.1"


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
