"""SIGKILL mid-ingest, through both doors, on SQLite and PostgreSQL.

``mailroom ingest DIR`` and ``mailroom run`` (fed by an MTA-like SMTP client
in its own process) are killed with SIGKILL at seeded random moments while
they work through ``COUNT`` letters, then restarted. After each kill the
database must be consistent (every processed message whole, with its
answers; every message the client got ``250`` for, stored). At the end every
letter is stored exactly once and every acknowledgement queued exactly once.

Each test runs its scenario on SQLite and on PostgreSQL side by side (one
thread per database, each driving its own processes), so the two cores of a
CI machine work at once: ``COUNT`` letters per door and per database.

``MAILROOM_FAULT_SEED`` changes the kill moments and the workload;
``MAILROOM_FAULT_COUNT`` the number of letters (default 1000, sized to the
time budget: about 20 ms of CPU per letter, mostly composing the answers).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from mailroom.pipeline import process_item
from mailroom.store.inbox import store_raw
from tests.conftest import _empty_postgres
from tests.factories import build_settings, mail, tickets
from tests.faults.harness import (
    SEED,
    Child,
    Tally,
    acknowledged_keys,
    client_summary,
    mailroom,
    make_workload,
    problems_with,
    smtp_client,
    wait_for,
    write_files,
    write_manifest,
)

# A hang guard, not a budget: 1,000 letters through three kills take minutes on a busy
# machine; each wait inside fails on its own after FINISH_TIMEOUT.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

COUNT = int(os.environ.get("MAILROOM_FAULT_COUNT", "1000"))
ROUNDS = 3  # kills per scenario; the run after the last one goes to the end
KILL_SPREAD = (0.05, 0.9)  # kills come once this share of the letters is stored ...
KILL_DELAY = (0.0, 0.5)  # ... and then this many seconds later (both seeded random)
FINISH_TIMEOUT = 240.0


@dataclass
class Lane:
    """One database with its own directory, config and tally."""

    name: str
    number: int
    root: Path
    tally: Tally

    @property
    def config(self) -> Path:
        return self.root / "mailroom.toml"

    @property
    def port_file(self) -> Path:
        """Where the SMTP client finds the port of the running ``mailroom run``, if any."""
        return self.root / "smtp.port"

    def serving(self, daemon: Child) -> None:
        """Point the SMTP client at ``daemon``, which listens on a port of its own."""
        written = self.port_file.with_suffix(".new")
        written.write_text(f"{daemon.smtp_port()}\n")
        written.replace(self.port_file)

    def not_serving(self) -> None:
        """No server: the client finds no port (as it would meet a refused connection)."""
        self.port_file.unlink(missing_ok=True)

    def rng(self, door: int) -> random.Random:
        return random.Random(SEED + 10 * door + self.number)

    def kill_points(self, rng: random.Random) -> list[int]:
        """How many letters are stored when each kill comes (then a random delay)."""
        return sorted(int(COUNT * rng.uniform(*KILL_SPREAD)) for _ in range(ROUNDS))

    @property
    def seed(self) -> str:
        return f"MAILROOM_FAULT_SEED={SEED} ({self.name})"


@pytest.fixture
def lanes(request: pytest.FixtureRequest, tmp_path: Path,
          sqlite_template: Path) -> Iterator[list[Lane]]:
    """An empty, migrated SQLite file and (when there is a server) PostgreSQL database."""
    databases = [("sqlite", f"sqlite:///{tmp_path / 'sqlite' / 'mailroom.db'}")]
    (tmp_path / "sqlite").mkdir()
    shutil.copy(sqlite_template, tmp_path / "sqlite" / "mailroom.db")
    try:
        pg_url: str = request.getfixturevalue("pg_url")  # fails, never skips, under CI
        _empty_postgres(pg_url)
        databases.append(("postgresql", pg_url))
    except pytest.skip.Exception:
        pass
    made = []
    for number, (name, url) in enumerate(databases):
        root = tmp_path / name
        root.mkdir(exist_ok=True)
        build_settings(root, url, smtp={"listen": "127.0.0.1:0"})  # a new port at each start
        made.append(Lane(name, number, root, Tally(url)))
    yield made
    for lane in made:
        lane.tally.close()


def side_by_side(scenario: Callable[[Lane], None], lanes: list[Lane]) -> None:
    """Run ``scenario`` for every lane at once; fail with the first lane that failed."""
    with ThreadPoolExecutor(len(lanes)) as pool:
        futures = [(lane, pool.submit(scenario, lane)) for lane in lanes]
    for lane, future in futures:
        error = future.exception()
        if error is not None:
            raise AssertionError(f"on {lane.name}: {error}") from error


def consistency_problems(tally: Tally) -> list[str]:
    """What must hold at every instant: processed messages are whole, answers included."""
    tally.quiesce()
    statuses, outcomes = tally.inbox_statuses(), tally.outcomes()
    done, created = statuses.get("done", 0), outcomes.get("created", 0)
    inbound = sum(tally.inbound_ids().values())
    acks = len(tally.outbox("acknowledgement"))
    notices = sum(tally.answered_ids("notification").values())
    found = []
    if set(statuses) - {"new", "done"}:
        found.append(f"inbox statuses {dict(statuses)}")
    if inbound != done:
        found.append(f"{done} inbox rows done but {inbound} messages stored")
    if tally.tickets() != created or acks != created:
        found.append(f"{created} created, {tally.tickets()} tickets, {acks} acknowledgements")
    if notices != created + outcomes.get("threaded", 0):
        found.append(f"{notices} notifications for {created} created + "
                     f"{outcomes.get('threaded', 0)} threaded")
    return found


# --------------------------------------------------------------------------- the file door


def test_ingest_killed_at_random_points(lanes: list[Lane]) -> None:
    side_by_side(ingest_killed_and_restarted, lanes)


def ingest_killed_and_restarted(lane: Lane) -> None:
    rng, tally = lane.rng(door=1), lane.tally
    workload = make_workload(COUNT, rng, tag=f"file-{lane.name}")
    folder = write_files(workload, lane.root / "mail", rng)
    logs = lane.root / "logs"
    kills: list[tuple[float, int]] = []
    child: Child | None = None
    try:
        for point in lane.kill_points(rng):
            child = mailroom(lane.config, "ingest", "--no-progress", str(folder), logs=logs,
                             name="ingest")
            running = child
            assert wait_for(lambda p=point, c=running: tally.stored() >= p or not c.alive(),
                            timeout=FINISH_TIMEOUT), "ingest made no progress"
            delay = rng.uniform(*KILL_DELAY)
            time.sleep(delay)
            assert child.kill(), f"ingest finished before the kill: {child.stderr()}"
            kills.append((round(delay, 2), tally.stored()))
            assert consistency_problems(tally) == [], f"after the kill at {kills[-1]}"
        child = mailroom(lane.config, "ingest", "--json", "--no-progress", str(folder),
                         logs=logs, name="ingest")
        assert child.wait(timeout=FINISH_TIMEOUT) == 0, child.stderr()
        summary = json.loads(child.stdout())
    finally:
        if child is not None:
            child.cleanup()
    assert summary["rejected"] == summary["pending"] == 0, summary
    assert summary["messages"] == len(workload.letters) + len(workload.copies)
    assert problems_with(tally, workload) == [], f"{lane.seed}, kills {kills}"
    assert all(0 < stored < len(workload.letters) for _, stored in kills), kills  # mid-ingest


# --------------------------------------------------------------------------- the SMTP door


def test_run_killed_while_receiving_over_smtp(lanes: list[Lane]) -> None:
    side_by_side(run_killed_and_restarted, lanes)


def run_killed_and_restarted(lane: Lane) -> None:
    rng, tally = lane.rng(door=2), lane.tally
    workload = make_workload(COUNT, rng, tag=f"smtp-{lane.name}")
    work = lane.root / "client"
    manifest = write_manifest(workload, work, rng)
    logs = lane.root / "logs"
    kills: list[tuple[float, int]] = []
    daemon = mailroom(lane.config, "run", logs=logs, name="run")
    client: Child | None = None
    try:
        lane.serving(daemon)
        client = smtp_client(lane.port_file, manifest, work)
        for point in lane.kill_points(rng):
            assert wait_for(lambda p=point: tally.stored() >= p, timeout=FINISH_TIMEOUT), \
                f"the door stopped storing: {daemon.stderr()}"
            delay = rng.uniform(*KILL_DELAY)
            time.sleep(delay)
            lane.not_serving()  # before the kill: no new connection finds the port afterwards
            assert daemon.kill(), f"mailroom run had stopped: {daemon.stderr()}"
            kills.append((round(delay, 2), tally.stored()))
            unstored = set(acknowledged_keys(work)) - {k[4:] for k in tally.inbox_keys()}
            assert not unstored, f"250 given for mail not stored: {sorted(unstored)[:5]}"
            assert consistency_problems(tally) == [], f"after the kill at {kills[-1]}"
            time.sleep(rng.uniform(0, 0.5))  # the sender finds no server meanwhile
            daemon = mailroom(lane.config, "run", logs=logs, name="run")
            lane.serving(daemon)
        assert client.wait(timeout=FINISH_TIMEOUT) == 0, client.stderr()
        expected = len(workload.letters)
        assert wait_for(lambda: tally.stored() == expected and tally.pending() == 0,
                        timeout=FINISH_TIMEOUT, interval=0.2), tally.inbox_statuses()
        assert daemon.stop() == 0, daemon.stderr()
    finally:
        daemon.cleanup()
        if client is not None:
            client.cleanup()
    sent = client_summary(work)
    assert sent["acknowledged"] == len(workload.letters) + len(workload.copies), sent
    assert sent["permanent"] == 0 and sent["dropped"] >= ROUNDS, sent
    assert "Traceback" not in daemon.stderr()
    assert problems_with(tally, workload) == [], f"{lane.seed}, kills {kills}"


# --------------------------------------------------------------------------- two workers


def test_two_workers_on_one_conversation_make_one_ticket(make_pg_app) -> None:  # type: ignore[no-untyped-def]
    """Two workers (two ``mailroom run``, or one's inbox worker and its scheduler job)
    take a case and the reply to it at the same moment. Under READ COMMITTED neither
    transaction would see the other's message, so each would open a ticket (and each
    be acknowledged) if processing of one conversation were not serialised."""
    first, second = make_pg_app(), make_pg_app()
    original = mail(sender="jo@school.example", message_id="case@school.example")
    reply = mail(sender="jo@school.example", message_id="more@school.example",
                 subject="Re: Fake account of our head teacher", in_reply_to="case@school.example")
    ids = [store_raw(first.sessions, raw, door="smtp").inbox_id for raw in (original, reply)]
    both_threaded = threading.Barrier(2, timeout=3)

    def meet_before_storing(conn, cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO MESSAGES"):
            with contextlib.suppress(threading.BrokenBarrierError):
                both_threaded.wait()  # both have decided where their message belongs

    event.listen(Engine, "before_cursor_execute", meet_before_storing)
    try:
        workers = [threading.Thread(target=process_item, args=(app, item))
                   for app, item in zip((first, second), ids, strict=True)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
    finally:
        event.remove(Engine, "before_cursor_execute", meet_before_storing)
    assert len(tickets(first)) == 1
