"""``mailroom escalate``: exit codes, output and one-line errors, on both databases.

The command runs through :func:`mailroom.cli.main.main` in this process (with
``escalate`` registered beside the other subcommands when the parser does not
have it yet), against the test's config file and database.
"""

from __future__ import annotations

import email
import json
from datetime import datetime
from email.policy import default

import pytest
from sqlalchemy import select

from mailroom.outbox.rendered import outgoing_bytes
from mailroom.store.models import Escalation, Event, OutboxItem
from tests.factories import deliver, mail

FAKE = "https://www.tiktok.com/@fakehead"


@pytest.fixture
def case(app) -> int:  # type: ignore[no-untyped-def]
    assert deliver(app, mail(body=f"Fake account: {FAKE}\n")) == "created"
    return 1


def escalations(app) -> list[Escalation]:  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        return list(session.execute(select(Escalation)).scalars())


def test_escalate_prints_the_escalation_and_queues_the_mail(app, cli, case) -> None:  # type: ignore[no-untyped-def]
    status, out, err = cli("escalate", "HL-000001", "--platform", "tiktok",
                           "--context", "Uses the head's photo.")
    assert status == 0, err
    assert out.startswith("escalation 1 of HL-000001 to TikTok <tiktok-escalations@example.org>:")
    assert f"url: {FAKE}" in out
    [row] = escalations(app)
    assert (row.platform, row.status, row.urls, row.context) == (
        "tiktok", "sent", [FAKE], "Uses the head's photo.")
    with app.sessions() as session:
        item = session.execute(select(OutboxItem).where(OutboxItem.kind == "escalation")).scalar()
        actor = session.execute(select(Event.actor).where(
            Event.action == "escalation.opened")).scalar()
    assert item is not None and item.rcpt_to == ["tiktok-escalations@example.org"]
    sent = email.message_from_bytes(outgoing_bytes(item) or b"", policy=default)
    body = sent.get_body(("plain",))
    assert "Uses the head's photo." in body.get_content()  # type: ignore[union-attr]
    assert actor is not None and actor.startswith("cli")


def test_escalate_json_with_urls(app, cli, case) -> None:  # type: ignore[no-untyped-def]
    status, out, _ = cli("escalate", "1", "--platform", "TikTok", "--url",
                         "vm.tiktok.com/ZMabc/", "--url", "https://bit.ly/x1", "--json")
    assert status == 0
    view = json.loads(out)
    assert view["urls"] == ["https://vm.tiktok.com/ZMabc/", "https://bit.ly/x1"]
    assert {k: view[k] for k in ("platform", "status", "follow_ups", "outcome", "reference")} == {
        "platform": "tiktok", "status": "sent", "follow_ups": 0, "outcome": None,
        "reference": "HL-000001"}
    opened = datetime.fromisoformat(view["opened_at"])  # the command runs on the real clock
    due = app.hours.add_business_days(opened, app.platforms["tiktok"].follow_up_days)
    assert datetime.fromisoformat(view["next_follow_up_at"]) == due


ERRORS = {
    "unknown-platform": (["1", "--platform", "myspace"], "unknown platform 'myspace' (known: "),
    "unknown-ticket": (["99", "--platform", "tiktok"], "no ticket 99"),
    "no-urls": (["1", "--platform", "youtube"], "no YouTube URLs on case HL-000001"),
}


@pytest.mark.parametrize(("args", "message"), ERRORS.values(), ids=ERRORS)
def test_errors_exit_1_with_one_line(app, cli, case, args, message) -> None:  # type: ignore[no-untyped-def]
    status, out, err = cli("escalate", *args)
    assert status == 1 and out == ""
    assert err.startswith(f"mailroom: {message}") and err.count("\n") == 1, err
    assert escalations(app) == []


def test_missing_platform_is_bad_usage(cli, case) -> None:  # type: ignore[no-untyped-def]
    status, _, err = cli("escalate", "1")
    assert status == 2 and "--platform" in err
