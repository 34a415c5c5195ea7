"""``mailroom tickets allow / remove / merge``: the command line widens an audience only
when told, each change an audit event, and bad input is one line with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from mailroom.app import App
from mailroom.cli.main import main
from mailroom.store.models import Event, Participant, Ticket
from tests.factories import deliver, mail

TEACHER = "teacher@school.example"


def states(app: App, ticket_id: int = 1) -> dict[str, str]:
    with app.sessions() as session:
        rows = session.execute(select(Participant.address, Participant.state).where(
            Participant.ticket_id == ticket_id))
        return dict(rows.all())


def actions(app: App) -> list[tuple[str, str]]:
    with app.sessions() as session:
        return [(e.action, e.actor) for e in session.execute(
            select(Event).where(Event.action.like("participants.%")
                                | (Event.action == "ticket.merged")).order_by(Event.id)).scalars()]


def cli(app: App, *args: str) -> int:
    return main(["--config", str(app.settings.source), *args])


def test_allow_and_remove(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    deliver(app, mail(cc=["deputy@school.example", "head@school.example"]))
    assert states(app) == {TEACHER: "allowed", "deputy@school.example": "pending",
                           "head@school.example": "pending"}
    assert cli(app, "tickets", "allow", "HL-000001", "Deputy@School.example") == 0
    assert capsys.readouterr().out.strip() == "HL-000001: allowed deputy@school.example"
    assert cli(app, "tickets", "allow", "1", "all") == 0
    assert states(app)["head@school.example"] == "allowed"
    assert cli(app, "tickets", "remove", "HL-000001", "deputy@school.example") == 0
    assert states(app)["deputy@school.example"] == "removed"
    assert [action for action, _ in actions(app)] == [
        "participants.pending", "participants.allowed", "participants.allowed",
        "participants.removed"]
    assert all(actor.startswith("cli") for action, actor in actions(app)[1:])


def test_the_requester_cannot_be_removed(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    deliver(app, mail())
    assert cli(app, "tickets", "remove", "HL-000001", TEACHER) == 1
    assert capsys.readouterr().err.strip() == (
        f"mailroom: {TEACHER} opened the case and cannot be removed from it")


def test_merge_brings_the_other_cases_people(app: App, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    deliver(app, mail(subject="First"))
    deliver(app, mail(sender="other@school.example", subject="Second"))
    assert cli(app, "tickets", "merge", "HL-000001", "HL-000002") == 0
    assert capsys.readouterr().out.strip() == "HL-000001: merged HL-000002"
    assert states(app) == {TEACHER: "allowed", "other@school.example": "allowed"}
    assert cli(app, "tickets", "merge", "HL-000001", "HL-000002") == 1
    assert "already merged" in capsys.readouterr().err
    assert cli(app, "tickets", "merge", "HL-000002", "HL-000001") == 1
    assert "was merged into another case" in capsys.readouterr().err
    assert cli(app, "tickets", "show", "1", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert {p["address"]: p["state"] for p in shown["participants"]} == states(app)
    with app.sessions() as session:
        merged = session.get(Ticket, 2)
        assert merged is not None and merged.merged_into == 1 and merged.status == "closed"
