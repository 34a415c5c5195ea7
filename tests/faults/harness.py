"""What the fault tests share: a workload of letters, mailroom as a child process,
and a tally of what the database holds, read without mailroom's own code paths.

A *workload* is a seeded list of letters of three kinds: ``new`` (a new case
from a sender of its own: one ticket, one acknowledgement, one notification),
``follow_up`` (a reply to an earlier new case: threaded, one notification, no
acknowledgement) and ``automatic`` (an out-of-office reply: kept, never
answered). ``expected`` says what the database must hold once every letter
went through, however often mailroom was killed on the way.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from mailroom.store.models import InboxItem, Message, OutboxItem, Ticket
from tests.factories import REPO, mail
from tests.ports import announced_smtp_port

HELPLINE = "helpline@helpline.example"
SEED = int(os.environ.get("MAILROOM_FAULT_SEED", "20260302"))
# A reply comes well after its case: one processed at the same moment as its case
# (two workers on PostgreSQL) is a known race, see test_kill.test_two_workers_…
FOLLOW_UP_DISTANCE = 50


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Letter:
    key: str  # the Message-ID, without angle brackets
    kind: str  # new, follow_up, automatic
    sender: str
    raw: bytes


@dataclass
class Workload:
    letters: list[Letter]
    copies: list[Letter] = field(default_factory=list)  # the same Message-ID again

    @property
    def keys(self) -> set[str]:
        return {letter.key for letter in self.letters}

    def count(self, kind: str) -> int:
        return sum(1 for letter in self.letters if letter.kind == kind)

    @property
    def expected(self) -> dict[str, int]:
        new, follow_up, automatic = (self.count(k) for k in ("new", "follow_up", "automatic"))
        return {"inbox": len(self.letters), "tickets": new, "acknowledgements": new,
                "notifications": new + follow_up, "created": new, "threaded": follow_up,
                "automatic": automatic}


def handle(number: int) -> str:
    """A different account name for each case, in letters: reports that differ only in
    their digits are the same content to the acknowledgement circuit breaker."""
    return "fake" + "".join("abcdefghij"[int(digit)] for digit in str(number))


def make_workload(count: int, rng: random.Random, *, tag: str, copies: float = 0.03) -> Workload:
    """``count`` distinct letters (about 80% new cases) and a few second copies."""
    letters: list[Letter] = []
    today = datetime.now(UTC)  # written today: mail imported from files is acknowledged
    for i in range(count):
        key = f"{tag}-{i}@school.example"
        roll = rng.random()
        earlier = [x for x in letters[: max(0, i - FOLLOW_UP_DISTANCE)] if x.kind == "new"]
        if roll < 0.1 and earlier:
            case = rng.choice(earlier)
            raw = mail(sender=case.sender, message_id=key, subject=f"Re: case {case.key}",
                       in_reply_to=case.key, body=f"More about it ({i}).\n", date=today)
            letters.append(Letter(key, "follow_up", case.sender, raw))
        elif roll < 0.2:
            sender = f"away{i}@school.example"
            raw = mail(sender=sender, message_id=key, subject=f"Out of office {i}",
                       body="I am away until Monday.\n",
                       headers={"Auto-Submitted": "auto-replied"}, date=today)
            letters.append(Letter(key, "automatic", sender, raw))
        else:
            sender = f"t{i}@school.example"
            raw = mail(sender=sender, message_id=key, subject=f"case {i}",
                       body=f"Someone posted this: https://www.tiktok.com/@{handle(i)}\n",
                       date=today)
            letters.append(Letter(key, "new", sender, raw))
    extra = rng.sample(letters, k=int(count * copies))
    # the same message again: as delivered to a second address, a header added on the way
    copied = [Letter(x.key, x.kind, x.sender, b"X-Delivered-To: help@helpline.example\r\n" + x.raw)
              for x in extra]
    return Workload(letters, copied)


def write_files(workload: Workload, folder: Path, rng: random.Random) -> Path:
    """One ``.eml`` per letter, in order, the copies at random places after their original."""
    folder.mkdir(parents=True)
    names = [(float(i), letter) for i, letter in enumerate(workload.letters)]
    index = {letter.key: i for i, letter in enumerate(workload.letters)}
    n = len(workload.letters)
    names += [(rng.uniform(index[c.key], n) + 0.5, c) for c in workload.copies]
    for position, (_, letter) in enumerate(sorted(names, key=lambda pair: pair[0])):
        (folder / f"{position:06d}.eml").write_bytes(letter.raw)
    return folder


def write_manifest(workload: Workload, folder: Path, rng: random.Random) -> Path:
    """The SMTP client's queue: each letter (and each copy) with its envelope."""
    folder.mkdir(parents=True)
    entries: list[tuple[float, dict[str, Any]]] = []
    index = {letter.key: i for i, letter in enumerate(workload.letters)}
    n = len(workload.letters)
    for i, letter in enumerate([*workload.letters, *workload.copies]):
        path = folder / f"{i:06d}.eml"
        path.write_bytes(letter.raw)
        mail_from = "" if letter.kind == "automatic" and i % 2 else letter.sender
        rcpt = HELPLINE if i < n else "help@helpline.example"
        position = float(i) if i < n else rng.uniform(index[letter.key], n) + 0.5
        entries.append((position, {"mail_from": mail_from, "rcpt_to": [rcpt],
                                   "path": str(path), "key": letter.key}))
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps([e for _, e in sorted(entries, key=lambda p: p[0])]))
    return manifest


# --------------------------------------------------------------------------- processes


class Child:
    """A child process (``mailroom …`` or the SMTP client) with its output in files."""

    def __init__(self, name: str, command: list[str], *, logs: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        logs.mkdir(parents=True, exist_ok=True)
        serial = len(list(logs.glob(f"{name}-*.out")))
        self.out_path = logs / f"{name}-{serial}.out"
        self.err_path = logs / f"{name}-{serial}.err"
        self._out: IO[bytes] = self.out_path.open("wb")
        self._err: IO[bytes] = self.err_path.open("wb")
        # only the settings given here: a MAILROOM_DATABASE_URL in the developer's
        # shell would otherwise point the child at another database
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        self.proc = subprocess.Popen(command, cwd=REPO, env={**environ, **(env or {})},
                                     stdout=self._out, stderr=self._err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> bool:
        """SIGKILL; True when it was still running (so the kill landed mid-work)."""
        was_alive = self.alive()
        if was_alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()
        return was_alive

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; the exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._close()

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._close()

    def stderr(self, tail: int = 3000) -> str:
        return self.err_path.read_text(errors="replace")[-tail:]

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def smtp_port(self) -> int:
        """The port ``mailroom run`` said its SMTP listener got (``listen`` ending ``:0``)."""
        try:
            return announced_smtp_port(self.out_path, self.alive)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.stderr()}") from None

    def _close(self) -> None:
        for handle in (self._out, self._err):
            if not handle.closed:
                handle.close()

    def cleanup(self) -> None:
        """For ``finally``: make sure nothing is left running."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._close()


def mailroom(config: Path, *args: str, logs: Path, name: str = "mailroom") -> Child:
    env = {"MAILROOM_CONFIG": str(config), "MAILROOM_LOG_LEVEL": "WARNING"}
    return Child(name, [sys.executable, "-m", "mailroom", *args], logs=logs, env=env)


def smtp_client(port: int | Path, manifest: Path, work: Path, *, pause: float = 0.0) -> Child:
    """The sending MTA, to ``port``: a number, or a file naming the port of the moment."""
    command = [sys.executable, "-m", "tests.faults.smtp_client", "127.0.0.1", str(port),
               str(manifest), str(work / "acked.log"), str(work / "client.json"), str(pause)]
    return Child("client", command, logs=work)


def acknowledged_keys(work: Path) -> list[str]:
    """What the SMTP client got ``250`` for so far (complete lines only)."""
    path = work / "acked.log"
    if not path.exists():
        return []
    text = path.read_text()
    return text.split("\n")[:-1] if not text.endswith("\n") else text.splitlines()


def client_summary(work: Path) -> dict[str, Any]:
    return json.loads((work / "client.json").read_text())


# --------------------------------------------------------------------------- the tally


class Tally:
    """Counts straight from the tables, on an engine of its own.

    A plain engine (no mailroom session settings): on SQLite it reads the WAL
    without taking the write lock, so watching never slows the writers down.
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        args: dict[str, Any] = {"timeout": 30} if parsed.get_backend_name() == "sqlite" else {
            "connect_timeout": 5}
        self.engine: Engine = create_engine(url, connect_args=args, pool_pre_ping=True)

    def close(self) -> None:
        self.engine.dispose()

    def scalar(self, stmt: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    def rows(self, stmt: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).all())

    def stored(self) -> int:
        return int(self.scalar(select(func.count()).select_from(InboxItem)))

    def quiesce(self, timeout: float = 60.0) -> None:
        """On PostgreSQL, wait until no other session of the database is working: a killed
        client's last COMMIT may still be completing on the server, and counts read by
        separate queries before and after it would disagree."""
        if self.engine.dialect.name != "postgresql":
            return  # SQLite: a killed writer's transaction is gone with the process
        busy = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                    " AND state IN ('active', 'idle in transaction')")
        deadline = time.monotonic() + timeout
        while self.scalar(busy) and time.monotonic() < deadline:
            time.sleep(0.05)

    def pending(self) -> int:
        return int(self.scalar(select(func.count()).select_from(InboxItem)
                               .where(InboxItem.status == "new")))

    def inbox_keys(self) -> set[str]:
        return {k for (k,) in self.rows(select(InboxItem.dedup_key))}

    def inbox_statuses(self) -> Counter[str]:
        return Counter(dict(self.rows(select(InboxItem.status, func.count())
                                      .group_by(InboxItem.status))))

    def outcomes(self) -> Counter[str]:
        return Counter(dict(self.rows(select(InboxItem.outcome, func.count())
                                      .group_by(InboxItem.outcome))))

    def inbound_ids(self) -> Counter[str]:
        rows = self.rows(select(Message.message_id).where(Message.direction == "in"))
        return Counter(mid for (mid,) in rows)

    def tickets(self) -> int:
        return int(self.scalar(select(func.count()).select_from(Ticket)))

    def outbox(self, kind: str) -> list[Any]:
        """(id, ticket_id, to_addr, status, message_id) of every outbox row of ``kind``."""
        return self.rows(select(OutboxItem.id, OutboxItem.ticket_id, OutboxItem.to_addr,
                                OutboxItem.status, OutboxItem.message_id)
                         .where(OutboxItem.kind == kind).order_by(OutboxItem.id))

    def outgoing(self) -> list[Any]:
        """Every outbox row: (id, kind, status, attempts, last_error, message_id)."""
        return self.rows(select(OutboxItem.id, OutboxItem.kind, OutboxItem.status,
                                OutboxItem.attempts, OutboxItem.last_error,
                                OutboxItem.message_id).order_by(OutboxItem.id))

    def answered_ids(self, kind: str) -> Counter[str]:
        """For each outgoing mail of ``kind``: the Message-ID it answers (In-Reply-To)."""
        rows = self.rows(select(Message.in_reply_to).where(
            Message.direction == "out", Message.kind == kind))
        return Counter(r for (r,) in rows)


def problems_with(tally: Tally, workload: Workload) -> list[str]:
    """Every way the database differs from "each letter once, each answer once"."""
    expected, found = workload.expected, []
    statuses = tally.inbox_statuses()
    if statuses != Counter({"done": expected["inbox"]}):
        found.append(f"inbox statuses {dict(statuses)}, expected {expected['inbox']} done")
    keys = tally.inbox_keys()
    if keys != {f"mid:{k}" for k in workload.keys}:
        found.append(f"inbox keys: {len(keys)} stored, {len(workload.keys)} letters")
    outcomes = tally.outcomes()
    for name in ("created", "threaded", "automatic"):
        if outcomes.get(name, 0) != expected[name]:
            found.append(f"{outcomes.get(name, 0)} {name}, expected {expected[name]}")
    inbound = tally.inbound_ids()
    twice = [mid for mid, n in inbound.items() if n > 1]
    if set(inbound) != workload.keys or twice:
        found.append(f"messages: {len(inbound)} ids, {len(twice)} stored twice: {twice[:5]}")
    if tally.tickets() != expected["tickets"]:
        found.append(f"{tally.tickets()} tickets, expected {expected['tickets']}")
    acks = tally.outbox("acknowledgement")
    per_ticket = Counter(ticket for _, ticket, *_ in acks)
    if len(acks) != expected["acknowledgements"] or max(per_ticket.values(), default=1) > 1:
        found.append(f"{len(acks)} acknowledgements for {len(per_ticket)} tickets, "
                     f"expected {expected['acknowledgements']}, one each")
    notices = tally.answered_ids("notification")
    if sum(notices.values()) != expected["notifications"] or max(notices.values(), default=1) > 1:
        found.append(f"{sum(notices.values())} notifications for {len(notices)} messages, "
                     f"expected {expected['notifications']}, one each")
    return found
