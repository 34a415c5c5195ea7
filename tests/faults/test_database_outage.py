"""PostgreSQL goes away under a running ``mailroom run`` and comes back.

Two kinds of outage, both while an MTA-like client is sending over SMTP:

- ``proxy-cut``: the daemon reaches PostgreSQL through a loopback TCP proxy
  that is cut (every connection closed, new ones refused) and restored;
- ``terminated``: from an admin connection the test database stops accepting
  connections and every backend serving it is ended with
  ``pg_terminate_backend``, then connections are allowed again.

During the outage the SMTP door answers ``451`` (the client retries) and
acknowledges nothing; afterwards the door, the inbox worker and the sender
carry on in the same process, never restarted, and every message is stored
once, acknowledged once and relayed once. The IMAP door, cut the same way,
leaves the mail in the IMAP folder until the database is back.
"""

from __future__ import annotations

import io
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from mailroom.cli import main as cli
from mailroom.errors import StoreUnavailable
from mailroom.pipeline import process_inbox
from mailroom.sending.sender import send_due
from mailroom.sending.transports import SmtpTransport
from tests.dovecot import DovecotServer, Mailbox
from tests.factories import deliver, mail, toml_value
from tests.faults.harness import (
    SEED,
    Child,
    Tally,
    Workload,
    acknowledged_keys,
    client_summary,
    mailroom,
    make_workload,
    problems_with,
    smtp_client,
    wait_for,
    write_manifest,
)
from tests.integration.smtp_sink import SmtpSink, smtp_sink_fixture  # noqa: F401
from tests.pg_server import pg_admin
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

COUNT = 300
OUTAGE_SECONDS = 3.0
FINISH_TIMEOUT = 180.0
OUTGOING = ("acknowledgement", "notification")
IMAP_COUNT = 40


class Outage:
    """Takes the daemon's database away and brings it back."""

    def __init__(self, kind: str, pg_url: str, proxy: TcpProxy) -> None:
        self.kind, self.proxy = kind, proxy
        self.database = make_url(pg_url).database

    def begin(self) -> None:
        if self.kind == "proxy-cut":
            self.proxy.down()
            return
        pg_admin(f'ALTER DATABASE "{self.database}" WITH ALLOW_CONNECTIONS false')
        pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{self.database}' AND pid <> pg_backend_pid()")

    def end(self) -> None:
        if self.kind == "proxy-cut":
            self.proxy.up()
            return
        pg_admin(f'ALTER DATABASE "{self.database}" WITH ALLOW_CONNECTIONS true')

    @contextmanager
    def held(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        finally:
            self.end()


def relay_settled(tally: Tally, sink: SmtpSink) -> bool:
    """Every row is sent and the relay holds each of them."""
    statuses = Counter(row.status for kind in OUTGOING for row in tally.outbox(kind))
    return tally.pending() == 0 and set(statuses) == {"sent"} and \
        len(sink.deliveries) >= statuses["sent"]


def check_relayed_exactly_once(tally: Tally, sink: SmtpSink, workload: Workload) -> None:
    """What the outbox guarantees across an outage, stated row by row.

    A row is claimed (``sending``, a claim token, a lease) before it is
    relayed and marked ``sent`` right after the relay's 250. When the
    database vanished in between, the sender remembered what the relay had
    accepted and which claimed rows it never tried, and wrote both at its
    next contact with the database: no row waited for its lease to run out
    and none went to the relay twice, without a restart.
    """
    rows = [row for kind in OUTGOING for row in tally.outbox(kind)]
    assert len(rows) == workload.expected["acknowledgements"] + workload.expected["notifications"]
    assert {row.status for row in rows} == {"sent"}, Counter(row.status for row in rows)
    relayed = Counter(delivery_ids(sink))
    assert max(relayed.values()) == 1, f"relayed twice: {relayed.most_common(3)}"
    assert set(relayed) == {row.message_id for row in rows}


def delivery_ids(sink: SmtpSink) -> list[str]:
    return [str(d.message["Message-ID"]).strip("<>") for d in sink.deliveries]


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    url = make_url(pg_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as cut:
        yield cut


def via(proxy: TcpProxy, pg_url: str) -> str:
    return make_url(pg_url).set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)


@pytest.fixture
def tally(pg_url: str) -> Iterator[Tally]:
    """Counts read straight from the server, never through the proxy."""
    watcher = Tally(pg_url)
    yield watcher
    watcher.close()


def test_smtp_door_says_451_through_two_outages_and_recovers_in_process(  # type: ignore[no-untyped-def]
    make_pg_app, pg_url: str, proxy: TcpProxy, tally: Tally, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """One ``mailroom run``, two outages while mail streams in: the proxy cut, then
    the backends terminated. The same process carries on after each."""
    make_pg_app(database={"url": via(proxy, pg_url)}, smtp={"listen": "127.0.0.1:0"},
                outbound={"url": f"smtp://127.0.0.1:{smtp_sink.port}"})
    rng = random.Random(SEED + 2)
    workload = make_workload(COUNT, rng, tag="outage")
    work = tmp_path / "client"
    manifest = write_manifest(workload, work, rng)
    windows: dict[str, tuple[float, float, int]] = {}  # kind: (start, end, 250s meanwhile)
    daemon = mailroom(tmp_path / "mailroom.toml", "run", logs=tmp_path / "logs", name="run")
    client: Child | None = None
    try:
        client = smtp_client(daemon.smtp_port(), manifest, work)
        for kind, share in (("proxy-cut", 0.2), ("terminated", 0.6)):
            assert wait_for(lambda s=share: tally.stored() >= COUNT * s, timeout=90), \
                daemon.stderr()
            with Outage(kind, pg_url, proxy).held():
                time.sleep(0.5)  # a reply already on its way when the cut came may land
                started, acked = time.time(), len(acknowledged_keys(work))
                time.sleep(OUTAGE_SECONDS)
                windows[kind] = (started, time.time(), len(acknowledged_keys(work)) - acked)
            assert daemon.alive(), f"mailroom run died in the {kind} outage: {daemon.stderr()}"
        assert client.wait(timeout=FINISH_TIMEOUT) == 0, client.stderr()
        assert wait_for(lambda: relay_settled(tally, smtp_sink), timeout=FINISH_TIMEOUT,
                        interval=0.5), tally.inbox_statuses()
        assert daemon.alive(), "mailroom run died: " + daemon.stderr()
        assert daemon.stop() == 0, daemon.stderr()
    finally:
        daemon.cleanup()
        if client is not None:
            client.cleanup()
    sent = client_summary(work)
    for kind, (start, end, acked_during) in windows.items():
        assert acked_during == 0, f"{acked_during} got 250 while the database was down ({kind})"
        refusals = [code for at, code in sent["refusals"] if start <= at <= end]
        assert refusals and set(refusals) == {451}, (kind, refusals)  # "try again later"
    assert sent["acknowledged"] == COUNT + len(workload.copies), sent
    assert problems_with(tally, workload) == []
    check_relayed_exactly_once(tally, smtp_sink, workload)


@pytest.fixture
def imap_mailbox(dovecot_binary: str) -> Iterator[Mailbox]:
    """A Dovecot of this test's own on loopback, with one empty mailbox."""
    server = DovecotServer.create(binary=dovecot_binary)
    try:
        yield server.add_mailbox()
    finally:
        server.close()


def add_imap_account(config: Path, mailbox: Mailbox) -> None:
    account = mailbox.account()
    table = {"name": "main", "host": account.host, "port": account.port,
             "username": account.username, "password": account.password,
             "security": "none", "poll_interval": 2, "batch_size": 10}
    lines = ["", "[[imap]]", *(f"{key} = {toml_value(value)}" for key, value in table.items())]
    with config.open("a") as handle:
        handle.write("\n".join(lines) + "\n")


def test_imap_door_leaves_mail_in_the_folder_while_postgres_is_cut(  # type: ignore[no-untyped-def]
    make_pg_app, pg_url: str, proxy: TcpProxy, tally: Tally, imap_mailbox: Mailbox,
    tmp_path: Path
) -> None:
    make_pg_app(database={"url": via(proxy, pg_url)}, smtp={"enabled": False})
    config = tmp_path / "mailroom.toml"
    add_imap_account(config, imap_mailbox)
    rng = random.Random(SEED + 3)
    workload = make_workload(IMAP_COUNT, rng, tag="imap")
    half = IMAP_COUNT // 2
    before, during = workload.letters[:half], [*workload.letters[half:], *workload.copies]
    imap_mailbox.deliver(*(letter.raw for letter in before))
    daemon = mailroom(config, "run", logs=tmp_path / "logs", name="run")
    try:
        assert wait_for(lambda: tally.stored() == half and not imap_mailbox.message_ids(),
                        timeout=60, interval=0.3), daemon.stderr()
        with Outage("proxy-cut", pg_url, proxy).held():
            imap_mailbox.deliver(*(letter.raw for letter in during))
            time.sleep(OUTAGE_SECONDS)  # IDLE announces them; storing fails; they stay
            waiting = imap_mailbox.message_ids()
            filed = imap_mailbox.message_ids("Processed")
        assert wait_for(lambda: not imap_mailbox.message_ids() and tally.pending() == 0
                        and tally.stored() == IMAP_COUNT, timeout=90, interval=0.3), \
            daemon.stderr()
        assert daemon.alive(), daemon.stderr()
        assert daemon.stop() == 0, daemon.stderr()
    finally:
        daemon.cleanup()
    assert sorted(waiting) == sorted(f"<{letter.key}>" for letter in during)
    assert sorted(filed) == sorted(f"<{letter.key}>" for letter in before)
    processed = Counter(imap_mailbox.message_ids("Processed"))
    assert processed == Counter(f"<{letter.key}>" for letter in [*workload.letters,
                                                                 *workload.copies])
    assert problems_with(tally, workload) == []


def test_ingest_from_an_mta_pipe_reports_stored_when_the_cut_comes_mid_pipeline(  # type: ignore[no-untyped-def]
    make_pg_app, pg_url: str, proxy: TcpProxy, tally: Tally, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``| mailroom ingest -``: the raw message committed, then the database went away
    inside the pipeline's transaction. The message is stored, so the MTA must hear 0
    (not 1, which makes it bounce a message we hold); the worker processes it later."""
    make_pg_app(database={"url": via(proxy, pg_url)})
    raw = mail(message_id="piped@school.example")
    cuts: list[str] = []

    def cut_at_the_first_message_insert(conn, cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if not cuts and statement.lstrip().upper().startswith("INSERT INTO MESSAGES"):
            cuts.append(statement)
            proxy.down()

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    event.listen(Engine, "before_cursor_execute", cut_at_the_first_message_insert)
    try:
        status = cli.main(["--config", str(tmp_path / "mailroom.toml"), "ingest", "--json", "-"])
    finally:
        event.remove(Engine, "before_cursor_execute", cut_at_the_first_message_insert)
        proxy.up()
    assert cuts, "the pipeline never reached the messages table"
    assert status == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["pending"] == 1
    assert tally.inbox_statuses() == Counter({"new": 1})
    worker = make_pg_app()
    assert process_inbox(worker) == {"created": 1}


class CutAfter:
    """A relay client that takes the database away right after the n-th 250."""

    def __init__(self, transport: SmtpTransport, proxy: TcpProxy, n: int) -> None:
        self.transport, self.proxy, self.n, self.accepted = transport, proxy, n, 0

    def send(self, msg, *, mail_from, rcpt_to) -> None:  # type: ignore[no-untyped-def]
        self.transport.send(msg, mail_from=mail_from, rcpt_to=rcpt_to)
        self.accepted += 1
        if self.accepted == self.n:
            self.proxy.down()


def test_sender_settles_what_it_knew_when_the_database_comes_back(  # type: ignore[no-untyped-def]
    make_pg_app, pg_url: str, proxy: TcpProxy, tally: Tally, smtp_sink: SmtpSink
) -> None:
    """The database vanishes right after the relay accepted the third mail of a
    claimed batch: that mail is not marked sent, the rest of the batch is not
    tried. At the next contact the sender marks the third sent and gives the
    rest back: each mail reaches the relay once, with no lease to wait for."""
    # five senders of the same mail: more than the circuit breaker acknowledges
    app = make_pg_app(database={"url": via(proxy, pg_url)},
                      acknowledgements={"same_content_per_window": 1000})
    for n in range(5):
        deliver(app, mail(sender=f"teacher{n}@school.example", message_id=f"s{n}@school.example"))
    relay = SmtpTransport("127.0.0.1", smtp_sink.port, security="none", timeout=10)
    app.transport_override = CutAfter(relay, proxy, 3)
    with pytest.raises(StoreUnavailable):
        send_due(app)
    statuses = Counter(row.status for kind in OUTGOING for row in tally.outbox(kind))
    assert statuses == Counter({"sent": 2, "sending": 8}), statuses
    assert len(smtp_sink.deliveries) == 3
    with pytest.raises(StoreUnavailable):  # still down: nothing is lost by trying
        send_due(app)
    proxy.up()
    assert send_due(app) == {"sent": 7}
    assert {row.status for kind in OUTGOING for row in tally.outbox(kind)} == {"sent"}
    relayed = Counter(delivery_ids(smtp_sink))
    assert len(relayed) == 10 and max(relayed.values()) == 1
