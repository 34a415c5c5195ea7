"""The outbound relay down, refusing, slow; the sending process killed mid-send.

What the outbox guarantees (SPEC section 5), and what these tests hold it to:

- A temporary failure (connection refused, ``421``) is retried with
  exponential backoff until the relay takes the mail. Nothing is lost and,
  when no process dies, nothing is relayed twice (counted by Message-ID at
  the relay).
- A row is claimed (``sending``, with a lease of ``LEASE``) before it is
  handed to the relay, and marked ``sent`` right after the relay's ``250``.
  A sender killed in between leaves its claimed rows ``sending``; a restart
  within the lease does not touch them, and after the lease they are sent
  again with the Message-ID and the bytes fixed when they were queued.
- So delivery is *at-least-once*: a message the relay accepted right before
  the kill (the ``250`` never read) is relayed a second time, byte for byte
  the same, same Message-ID (so the recipient's mail client shows it once).
  A message the relay had not accepted yet is relayed exactly once.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailroom.sending.sender import LEASE, send_due
from mailroom.sending.transports import SmtpTransport
from tests.factories import deliver, mail
from tests.faults.harness import (
    SEED,
    Child,
    Tally,
    mailroom,
    make_workload,
    problems_with,
    smtp_client,
    wait_for,
    write_manifest,
)
from tests.faults.relay import Relay

pytestmark = pytest.mark.slow

LETTERS = 40
HELD = 3  # the relay holds the third message it is given
BEFORE_THE_KILL = 5  # letters queued before the sender starts: 10 outbox rows


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A relay on a port of its own, down until the test brings it up."""
    relay = Relay()
    yield relay
    relay.close()


@pytest.fixture
def tally(db_url: str) -> Iterator[Tally]:
    """Counts from the test's database (the one ``make_app`` builds on)."""
    watcher = Tally(db_url)
    yield watcher
    watcher.close()


def statuses(tally: Tally) -> Counter[str]:
    return Counter(row.status for row in tally.outgoing())


def failed_with(tally: Tally, words: str) -> int:
    return sum(1 for row in tally.outgoing()
               if row.status == "queued" and words in (row.last_error or ""))


def test_relay_down_then_refusing_then_back_relays_each_message_once(  # type: ignore[no-untyped-def]
    make_app, relay: Relay, tally: Tally, tmp_path: Path
) -> None:
    make_app(smtp={"listen": "127.0.0.1:0"},
             outbound={"url": f"smtp://127.0.0.1:{relay.port}?timeout=10",
                       "retry_seconds": 1, "max_attempts": 50})
    rng = random.Random(SEED + 4)
    workload = make_workload(LETTERS, rng, tag="relay", copies=0)
    work = tmp_path / "client"
    manifest = write_manifest(workload, work, rng)
    daemon = mailroom(tmp_path / "mailroom.toml", "run", logs=tmp_path / "logs", name="run")
    client: Child | None = None
    try:
        client = smtp_client(daemon.smtp_port(), manifest, work, pause=0.1)  # mail keeps coming
        assert wait_for(lambda: failed_with(tally, "cannot connect") >= 5, timeout=60), \
            daemon.stderr()
        relay.refuse(421)
        relay.up()
        assert wait_for(lambda: relay.refused[421] >= 5, timeout=60), statuses(tally)
        relay.accept()
        assert client.wait(timeout=120) == 0, client.stderr()
        assert wait_for(lambda: tally.pending() == 0 and set(statuses(tally)) == {"sent"},
                        timeout=120, interval=0.3), statuses(tally)
        assert daemon.stop() == 0, daemon.stderr()
    finally:
        daemon.cleanup()
        if client is not None:
            client.cleanup()
    rows = tally.outgoing()
    expected = workload.expected
    assert len(rows) == expected["acknowledgements"] + expected["notifications"]
    assert relay.message_ids() == Counter(row.message_id for row in rows)  # each once
    retried = [row for row in rows if row.attempts > 1]
    assert len(retried) >= 10, [row.attempts for row in rows]  # 5 refused, 5 met a 421
    assert problems_with(tally, workload) == []


@pytest.mark.parametrize("stage", ["data", "rcpt"],
                         ids=["relay-had-accepted", "relay-had-not-accepted"])
def test_sender_killed_mid_send_relays_again_after_the_lease(  # type: ignore[no-untyped-def]
    make_app, relay: Relay, tally: Tally, tmp_path: Path, stage: str
) -> None:
    sections = {"smtp": {"enabled": False},
                "outbound": {"url": f"smtp://127.0.0.1:{relay.port}"},
                # letters from several senders, all the same mail: past the circuit breaker
                "acknowledgements": {"same_content_per_window": 1000}}
    app = make_app(**sections)
    for i in range(BEFORE_THE_KILL):
        deliver(app, mail(sender=f"k{i}@school.example", message_id=f"k{i}@school.example"))
    relay.hold(stage, HELD)
    relay.up()
    config, logs = tmp_path / "mailroom.toml", tmp_path / "logs"
    daemon = mailroom(config, "run", logs=logs, name="run")
    try:
        assert relay.held.wait(60), daemon.stderr()  # the third message is with the relay
        assert daemon.kill()
        claimed = {row.message_id for row in tally.outgoing() if row.status == "sending"}
        at_kill = statuses(tally)
        assert at_kill["sent"] == HELD - 1 and at_kill["sending"] >= 1, at_kill
        relay.accept()
        # restarted within the lease: it sends what is new, not what the dead one claimed
        daemon = mailroom(config, "run", logs=logs, name="run")
        deliver(app, mail(sender="after@school.example", message_id="after@school.example"))
        later_sent = HELD - 1 + at_kill["queued"] + 2  # and the new letter's two mails
        assert wait_for(lambda: statuses(tally)["sent"] == later_sent, timeout=60), \
            daemon.stderr()
        assert {r.message_id for r in tally.outgoing() if r.status == "sending"} == claimed
        assert daemon.stop() == 0, daemon.stderr()
    finally:
        daemon.cleanup()
    before_lease = relay.message_ids()
    later = datetime.now(UTC) + LEASE + timedelta(minutes=1)
    sender = make_app(clock=lambda: later, **sections)
    sender.transport_override = SmtpTransport("127.0.0.1", relay.port, security="none",
                                              timeout=10)
    assert send_due(sender) == {"sent": len(claimed)}
    rows = tally.outgoing()
    relayed = relay.message_ids()
    assert {row.status for row in rows} == {"sent"}
    assert set(relayed) == {row.message_id for row in rows}  # nothing lost
    twice = {mid for mid, n in relayed.items() if n > 1}
    if stage == "data":
        held = relay.deliveries[HELD - 1]
        assert held.message_id in before_lease and held.message_id in claimed
        assert twice == {held.message_id}, relayed
        copies = [d.data for d in relay.deliveries if d.message_id == held.message_id]
        assert copies[0] == copies[1]  # the same bytes, the same Message-ID
    else:
        assert twice == set(), relayed
