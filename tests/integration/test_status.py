"""``mailroom status``: each limit passed is one line under needs_admin, and exit status 1."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailroom.cli.main import main
from mailroom.runtime.jobs import SCHEDULED
from mailroom.runtime.scheduler import run_due_jobs
from mailroom.runtime.status import collect_status
from mailroom.settings import ImapAccount
from mailroom.store.imap_state import DatabaseImapState
from mailroom.store.inbox import store_raw
from mailroom.store.models import InboxItem
from mailroom.vocabulary import InboxStatus
from tests.factories import FixedClock, build_settings, deliver, mail
from tests.ports import refused_port

QUIET = {"disk_min_free_mb": 0}  # whatever disk the test runs on
# The clock is the real now: a digest queued at opening time would be unsent mail here.
NO_DIGEST = {"enabled": False}


@pytest.fixture
def clock() -> FixedClock:
    """Now, as the rows stamped by the database's own default have it."""
    return FixedClock(datetime.now(UTC))


def test_a_helpline_at_work_needs_no_admin(make_app, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=clock, status=QUIET, digest=NO_DIGEST)
    run_due_jobs(app, SCHEDULED)
    report = collect_status(app)
    assert report["needs_admin"] == []
    assert report["database"]["reachable"] and report["database"]["schema_current"]
    assert [j["name"] for j in report["jobs"]] == [j.name for j in SCHEDULED]
    assert all(j["last_run_at"] == clock.now.isoformat() for j in report["jobs"])


def test_jobs_that_never_ran_or_are_late(make_app, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=clock, status=QUIET, digest=NO_DIGEST)
    assert [p.split(":")[0] for p in collect_status(app)["needs_admin"]] == \
        [f"job {job.name}" for job in SCHEDULED]
    run_due_jobs(app, SCHEDULED)
    clock.advance(minutes=31)  # every job but the daily retention is late by now
    assert collect_status(app)["needs_admin"] == [
        "job escalation_follow_ups: last ran 31 minutes ago, it runs every 15 minutes "
        "(is `mailroom run` running, or `mailroom tick` from cron?)",
        "job reminders: last ran 31 minutes ago, it runs every 5 minutes "
        "(is `mailroom run` running, or `mailroom tick` from cron?)",
        "job sla_notices: last ran 31 minutes ago, it runs every 5 minutes "
        "(is `mailroom run` running, or `mailroom tick` from cron?)",
        "job daily_digest: last ran 31 minutes ago, it runs every 10 minutes "
        "(is `mailroom run` running, or `mailroom tick` from cron?)"]


def test_an_outbox_that_does_not_drain(make_app, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=clock, status={**QUIET, "outbox_max_queued": 1}, digest=NO_DIGEST)
    run_due_jobs(app, SCHEDULED)
    for n in range(2):  # each queues mail: an acknowledgement, a notification
        deliver(app, mail(message_id=f"status-{n}@school.example",
                          sender=f"teacher{n}@school.example"))
    clock.advance(minutes=14)
    run_due_jobs(app, SCHEDULED)
    clock.advance(minutes=17)
    report = collect_status(app)
    unsent = report["outbox"]["unsent"]
    assert unsent >= 2
    assert report["needs_admin"] == [
        f"outbox: {unsent} messages unsent, more than 1",
        "outbox: the oldest unsent message has waited 31 minutes, more than 30 (is the relay "
        "reachable? `mailroom outbox list --status queued`)"]


def test_shunted_and_waiting_inbox_messages(make_app, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=clock, status=QUIET, digest=NO_DIGEST)
    run_due_jobs(app, SCHEDULED)
    failed = store_raw(app.sessions, mail(message_id="shunt@school.example"), door="file")
    store_raw(app.sessions, mail(message_id="waiting@school.example"), door="file")
    with app.sessions.begin() as session:
        session.get(InboxItem, failed.inbox_id).status = InboxStatus.SHUNT
    clock.advance(minutes=16)
    run_due_jobs(app, SCHEDULED[:1])
    report = collect_status(app)
    assert (report["inbox"]["new"], report["inbox"]["shunt"]) == (1, 1)
    assert [p.split(" has waited")[0].split(" in the last")[0]
            for p in report["needs_admin"]] == [
        "inbox: the oldest message not processed", "inbox: 1 shunt messages"]


def test_imap_accounts_by_their_last_successful_poll(make_app, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    app = make_app(clock=clock, status=QUIET, digest=NO_DIGEST)
    run_due_jobs(app, SCHEDULED)
    account = ImapAccount(name="helpline", host="imap.helpline.example", port=993,
                          username="helpline", password="x")
    app.settings = replace(app.settings, imap_accounts=(account,))
    assert collect_status(app)["needs_admin"] == [
        "imap helpline: never polled, more than 15 minutes (can imap.helpline.example:993 be "
        "reached? is `mailroom run` running?)"]
    state = DatabaseImapState(app.sessions)
    state.save("helpline", 7, 0)  # the first poll
    clock.advance(minutes=10)
    state.polled("helpline")  # a later one, at the database's now
    assert collect_status(app)["needs_admin"] == []
    clock.advance(minutes=16)
    run_due_jobs(app, [job for job in SCHEDULED if job.name != "retention"])
    [problem] = collect_status(app)["needs_admin"]
    assert problem.startswith("imap helpline: last polled 2")  # 26 minutes, give or take
    assert problem.endswith("minutes ago, more than 15 minutes (can imap.helpline.example:993 "
                            "be reached? is `mailroom run` running?)")


def test_the_command_exits_1_when_an_admin_is_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}",
                   status=QUIET)
    config = str(tmp_path / "mailroom.toml")
    assert main(["status", "--config", config]) == 1
    assert "does not exist yet: run `mailroom db upgrade`" in capsys.readouterr().out
    assert not (tmp_path / "var" / "mailroom.db").exists(), "status creates no database"
    assert main(["db", "upgrade", "--config", config]) == 0
    assert main(["tick", "--config", config]) == 0
    capsys.readouterr()
    assert main(["status", "--config", config, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["needs_admin"] == [] and report["outbox"]["unsent"] == 0
    assert main(["status", "--config", config]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "nothing needs an admin"


def test_a_database_out_of_reach(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mailroom.toml"
    with refused_port() as port:
        path.write_text(f'[paths]\nvar_dir = "{tmp_path}"\n[status]\ndisk_min_free_mb = 0\n'
                        f'[database]\nurl = "postgresql+psycopg://nobody@127.0.0.1:{port}/x"\n')
        assert main(["status", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "  - database: cannot be reached: " in out
