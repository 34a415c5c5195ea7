"""Fixtures for the IMAP door: a real Dovecot on loopback.

Without the ``dovecot`` binary (package ``dovecot-imapd``) these tests are
skipped, except under CI (``CI=true``), where that is an error: CI must never
silently skip the IMAP door.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dovecot import DovecotServer, Mailbox

NO_IDLE_NO_MOVE = (
    "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS NAMESPACE"
)


@pytest.fixture(scope="session")
def dovecot(dovecot_binary: str) -> Iterator[DovecotServer]:
    """One Dovecot for the whole run; each test takes its own user (``mailbox``)."""
    server = DovecotServer.create(binary=dovecot_binary)
    yield server
    server.close()


@pytest.fixture(scope="session")
def dovecot_without_idle_or_move(dovecot_binary: str) -> Iterator[DovecotServer]:
    """A Dovecot that offers neither IDLE nor MOVE, like many older servers."""
    server = DovecotServer.create(binary=dovecot_binary, extra_config=NO_IDLE_NO_MOVE)
    yield server
    server.close()


@pytest.fixture
def private_dovecot(dovecot_binary: str) -> Iterator[DovecotServer]:
    """A Dovecot of the test's own, for tests that stop and start it."""
    server = DovecotServer.create(binary=dovecot_binary)
    yield server
    server.close()


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> Mailbox:
    """A fresh user with an empty INBOX on the shared server."""
    return dovecot.add_mailbox()

