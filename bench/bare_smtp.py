"""A bare aiosmtpd server that stores nothing: the reference for the SMTP door.

Same controller settings as mailroom's ``SmtpDoor`` (size limit, SMTPUTF8,
no decoding), a handler that accepts every recipient and answers ``250`` to
DATA at once. Whatever the door costs beyond this is mailroom's.

``python -m bench.bare_smtp --port 2526`` runs it on its own until Ctrl-C.
"""

from __future__ import annotations

import argparse
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

OK = "250 2.0.0 Message accepted (and forgotten)"


class BareHandler:
    """Accept everything, keep nothing."""

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return OK


class _AnyPortController(Controller):
    """aiosmtpd's controller, able to listen on port 0: :attr:`port` becomes the port
    the system gave, read from the bound socket before the first connection to itself."""

    def _trigger_server(self) -> None:
        sockets = getattr(self.server, "sockets", None)  # an asyncio.Server once bound
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        super()._trigger_server()


def bare_controller(host: str, port: int, max_size: int) -> Controller:
    """The bare server on ``port`` (0: any free port; ``.port`` says which once started)."""
    return _AnyPortController(BareHandler(), hostname=host, port=port, data_size_limit=max_size,
                              decode_data=False, ready_timeout=10.0, enable_SMTPUTF8=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="bare aiosmtpd server (stores nothing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2526)
    args = parser.parse_args()
    controller = bare_controller(args.host, args.port, 36 * 1024 * 1024)
    controller.start()
    print(f"bare SMTP server on {args.host}:{args.port}; Ctrl-C stops it")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        controller.stop()


if __name__ == "__main__":
    main()
