"""A poller in a process of its own, for the test that SIGKILLs it mid-run.

    python -m tests.imap.poller_child HOST PORT USER PASSWORD STORE_DIR DELAY

runs ``ImapPoller.run`` for the account with a :class:`FileStore` inbox that
takes ``DELAY`` seconds per message, until it is killed: most likely while a
message is half-accepted, the moment that must not lose it.
The password comes from the command line because the child is a test helper
on loopback with a throwaway account.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from email import message_from_bytes
from pathlib import Path

from mailroom.doors.contract import Arrival
from mailroom.doors.imap import ImapPoller, MemoryImapState, PollerTiming
from mailroom.settings import ImapAccount
from mailroom.store.inbox import Stored


class FileStore:
    """A durable, de-duplicating inbox (the door contract): one file per Message-ID.

    Every call is appended to ``calls.log`` first, so a call killed half-way
    still counts as a call; ``delay`` (seconds) passes before the message is written.
    """

    def __init__(self, root: Path, delay: float = 0.0) -> None:
        self.root = root
        self.delay = delay
        root.mkdir(parents=True, exist_ok=True)

    def receive(self, arrival: Arrival) -> Stored:
        raw, door_ref = arrival.raw, arrival.envelope.ref
        message_id = str(message_from_bytes(raw)["Message-ID"])
        with (self.root / "calls.log").open("a") as log:
            log.write(f"{message_id} {door_ref}\n")
        time.sleep(self.delay)
        target = self.root / (hashlib.sha256(message_id.encode()).hexdigest() + ".eml")
        if target.exists():
            return Stored(0, duplicate=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(raw)
        os.replace(partial, target)  # atomic: a file is there whole or not at all
        return Stored(0, duplicate=False)

    def stored(self) -> list[str]:
        """The Message-IDs stored, sorted."""
        return sorted(
            str(message_from_bytes(path.read_bytes())["Message-ID"])
            for path in self.root.glob("*.eml")
        )

    def calls(self) -> list[str]:
        path = self.root / "calls.log"
        return path.read_text().splitlines() if path.exists() else []


def main(argv: list[str]) -> None:
    host, port, user, password, store_dir, delay = argv
    account = ImapAccount(name=user, host=host, port=int(port), username=user,
                          password=password, security="none", batch_size=5)
    inbox = FileStore(Path(store_dir), delay=float(delay))
    poller = ImapPoller(account, inbox, MemoryImapState(), timing=PollerTiming(timeout=10))
    poller.run(threading.Event())


if __name__ == "__main__":
    main(sys.argv[1:])
