"""An SMTP client that behaves like a sending MTA, run as its own process.

    python -m tests.faults.smtp_client HOST PORT MANIFEST ACK_LOG SUMMARY [PAUSE]

``PORT`` is a number, or the path of a file holding one: then the file is read
again at every connection, so a server restarted on another port is found
there, and a missing file means no server (as a refused connection does).

``MANIFEST`` is a JSON list of ``{"mail_from", "rcpt_to", "path", "key"}``.
Each message is sent until the server says ``250``; a ``4xx`` reply, a refused
connection or a dropped one (the server was killed) mean "not acknowledged":
the client waits a moment, reconnects and sends the same bytes again, as a
real MTA retries its queue. A ``5xx`` is final and recorded. After each
``250`` the message's ``key`` is appended to ``ACK_LOG`` and flushed, so a
test can compare what the server acknowledged with what it stored at any
moment. ``PAUSE`` (seconds, default 0) spaces the messages out, as mail
trickles in. At the end ``SUMMARY`` gets the counts as JSON, with the time
(``time.time()``) and code of every refusal. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import smtplib
import sys
import time
from pathlib import Path
from typing import Any

RETRY_PAUSE = 0.1  # seconds between attempts: a test-sized MTA queue run
GIVE_UP_AFTER = 600.0  # the whole run; a test's own timeout is shorter


class Client:
    def __init__(self, host: str, port: str) -> None:
        self.host, self.port = host, port
        self.conn: smtplib.SMTP | None = None
        self.counts: dict[str, Any] = {"acknowledged": 0, "dropped": 0, "tempfail": 0,
                                       "permanent": 0, "attempts": 0, "codes": {}}
        self.replies: list[tuple[float, int]] = []  # (time.time(), code) of each refusal

    def send(self, mail_from: str, rcpt_to: list[str], raw: bytes) -> int:
        """Send until a final answer; return its code (250 or a 5xx)."""
        deadline = time.monotonic() + GIVE_UP_AFTER
        while time.monotonic() < deadline:
            self.counts["attempts"] += 1
            code = self._attempt(mail_from, rcpt_to, raw)
            if code is not None and (code < 400 or code >= 500):
                return code
            self._disconnect()
            time.sleep(RETRY_PAUSE)
        raise SystemExit(f"gave up after {GIVE_UP_AFTER} s")

    def _attempt(self, mail_from: str, rcpt_to: list[str], raw: bytes) -> int | None:
        """One try: the reply code, or None when the connection failed or dropped."""
        try:
            if self.conn is None:
                self.conn = smtplib.SMTP(self.host, self._current_port(), timeout=30)
                self.conn.ehlo("client.faults.example")
            refused = self.conn.sendmail(mail_from, rcpt_to, raw)
            return 550 if refused else 250
        except smtplib.SMTPRecipientsRefused as exc:
            return self._note(min(code for code, _ in exc.recipients.values()))
        except smtplib.SMTPResponseException as exc:
            return self._note(exc.smtp_code)
        except (OSError, smtplib.SMTPException):
            self.counts["dropped"] += 1
            self.conn = None
            return None

    def _current_port(self) -> int:
        """The port given, or the one its file names now (OSError while there is none)."""
        if self.port.isdigit():
            return int(self.port)
        text = Path(self.port).read_text().strip()
        if not text.isdigit():
            raise ConnectionRefusedError(f"no port in {self.port} yet")
        return int(text)

    def _note(self, code: int) -> int:
        codes = self.counts["codes"]
        codes[str(code)] = codes.get(str(code), 0) + 1
        self.counts["tempfail" if 400 <= code < 500 else "permanent"] += 1
        self.replies.append((time.time(), code))
        return code

    def _disconnect(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None


def main(argv: list[str]) -> int:
    host, port, manifest, ack_log, summary = argv[:5]
    pause = float(argv[5]) if len(argv) > 5 else 0.0
    messages = json.loads(Path(manifest).read_text())
    client = Client(host, port)
    with open(ack_log, "a", encoding="utf-8") as log:
        for entry in messages:
            raw = Path(entry["path"]).read_bytes()
            code = client.send(entry["mail_from"], entry["rcpt_to"], raw)
            if code == 250:
                client.counts["acknowledged"] += 1
                log.write(entry["key"] + "\n")
                log.flush()
            time.sleep(pause)
    client._disconnect()
    Path(summary).write_text(json.dumps({**client.counts, "refusals": client.replies}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
