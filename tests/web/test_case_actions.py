"""Acting on a case with the case page's forms: each form writes the command line a
practitioner would write by mail and runs it through the same code (the same checks,
effects, audit events and mail), on both databases. What each person received is read
from the mail the file transport wrote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailroom.app import App
from mailroom.cases.escalations import open_escalation
from mailroom.sending.sender import send_due
from mailroom.store.models import AttachmentRow, Escalation, Event, Participant, Ticket
from tests.factories import FixedClock, deliver, mail, tickets
from tests.web.console import browser, csrf_of, mail_to, sent_mail, text_of
from tests.web.test_signin import ANNA, sign_in

TEACHER = "teacher@school.example"
DEPUTY = "deputy@school.example"
TIKTOK = "tiktok-escalations@example.org"


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app(clock=FixedClock())


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with browser(app) as c:
        sign_in(app, c)
        yield c


def post(client: TestClient, reference: str, path: str, **data: str) -> tuple[int, str]:
    """Submit a form of the case page, with the page's CSRF token."""
    page = client.get(f"/cases/{reference}")
    answer = client.post(f"/cases/{reference}/{path}", data={**data, "csrf": csrf_of(page.text)})
    return answer.status_code, answer.text


def case(app: App, reference: str) -> Ticket:
    with app.sessions() as session:
        found = session.execute(select(Ticket).where(Ticket.reference == reference)).scalar_one()
        session.expunge(found)
        return found


def actions(app: App, action: str) -> list[Event]:
    with app.sessions() as session:
        return list(session.execute(select(Event).where(Event.action == action)
                                    .order_by(Event.id)).scalars())


def open_case(app: App, **kwargs: object) -> str:
    deliver(app, mail(**kwargs))  # type: ignore[arg-type]
    reference = tickets(app)[-1].reference
    assert reference is not None
    return reference


def test_the_page_offers_every_action(app: App, client: TestClient) -> None:
    reference = open_case(app, cc=[DEPUTY])
    page = client.get(f"/cases/{reference}").text
    for path in ("reply", "assign", "status", "set", "escalate", "merge", "participant",
                 "withhold"):
        assert f'action="/cases/{reference}/{path}"' in page, path
    for command in ("category", "role", "priority"):
        assert f'name="command" value="{command}"' in page
    assert f'name="address" value="{DEPUTY}"' in page and 'value="allow"' in page


def test_category_role_and_priority_are_the_commands(app: App, client: TestClient) -> None:
    reference = open_case(app)
    assert post(client, reference, "set", command="role", value="teacher")[0] == 303
    assert post(client, reference, "set", command="priority", value="high")[0] == 303
    assert post(client, reference, "set", command="category", value="sextortion")[0] == 303
    ticket = case(app, reference)
    # sextortion raises the priority, as by mail; the requester gets its signposting
    assert (ticket.role, ticket.category, ticket.priority) == ("teacher", "sextortion", "urgent")
    assert actions(app, "ticket.category")[-1].actor == ANNA
    send_due(app)
    assert any("sextortion" in text_of(m) for m in mail_to(app, TEACHER))
    status, page = post(client, reference, "set", command="category", value="sextortin")
    assert status == 400 and "is not a category" in page
    assert post(client, reference, "set", command="close", value="")[0] == 400
    status, page = post(client, reference, "set", command="role", value="teacher\n#close")
    assert status == 400 and case(app, reference).status == "open"


def test_escalate_with_context_and_evidence(app: App, client: TestClient) -> None:
    reference = open_case(app, attachments=[("screenshot.png", "image/png", b"\x89PNG shot")])
    status, _ = post(client, reference, "escalate", platform="tiktok", urls="",
                     context="The account uses the head's photo.", evidence="yes")
    assert status == 303
    send_due(app)
    [to_tiktok] = [m for m in sent_mail(app) if TIKTOK in str(m["To"])]
    assert "https://www.tiktok.com/@fakehead" in text_of(to_tiktok)
    assert "The account uses the head's photo." in text_of(to_tiktok)
    # the file goes as evidence, under a name of its own (a file name can name a child)
    [evidence] = list(to_tiktok.iter_attachments())
    assert evidence.get_content() == b"\x89PNG shot" and "screenshot" not in str(to_tiktok)
    assert TEACHER not in str(to_tiktok)
    # the requester gets nothing of it: no answer was written
    assert not [m for m in mail_to(app, TEACHER) if "photo" in text_of(m)]
    assert actions(app, "escalation.opened")[-1].actor == ANNA


def test_the_outcome_form_applies_to_its_own_escalation(app: App, client: TestClient) -> None:
    reference = open_case(app)
    with app.sessions.begin() as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        first, second = (open_escalation(app, session, ticket, "tiktok", urls=[url],
                                         context=None, actor=ANNA).id
                         for url in ("https://www.tiktok.com/@a", "https://www.tiktok.com/@b"))
    assert post(client, reference, f"escalations/{first}/outcome", outcome="removed")[0] == 303
    assert post(client, reference, f"escalations/{second}/outcome", outcome="declined")[0] == 303
    assert post(client, reference, f"escalations/{first}/outcome", outcome="restricted")[0] == 303
    with app.sessions() as session:
        outcomes = {e.id: e.outcome for e in session.execute(select(Escalation)).scalars()}
    assert outcomes == {first: "restricted", second: "declined"}
    send_due(app)
    confirmations = [m for m in mail_to(app, ANNA) if "recorded" in str(m["Subject"])]
    assert len(confirmations) == 3 and not [m for m in mail_to(app, TEACHER)
                                             if "recorded" in str(m["Subject"])]


def test_an_outcome_for_an_escalation_of_another_case_is_refused(app: App,
                                                                 client: TestClient) -> None:
    reference = open_case(app)
    other = open_case(app, sender="other@school.example", subject="Another case")
    with app.sessions.begin() as session:
        ticket = session.execute(select(Ticket).where(Ticket.reference == other)).scalar_one()
        theirs = open_escalation(app, session, ticket, "tiktok", urls=None, context=None,
                                 actor=ANNA).id
    status, page = post(client, reference, f"escalations/{theirs}/outcome", outcome="removed")
    assert "has no escalation" in page
    with app.sessions() as session:
        assert session.get(Escalation, theirs).outcome is None  # type: ignore[union-attr]


def test_allow_and_remove_a_participant(app: App, client: TestClient) -> None:
    reference = open_case(app, cc=[DEPUTY])
    assert post(client, reference, "participant", command="allow", address=DEPUTY)[0] == 303
    assert post(client, reference, "reply", mode="reply", text="First answer.")[0] == 303
    assert post(client, reference, "participant", command="remove", address=DEPUTY)[0] == 303
    assert post(client, reference, "reply", mode="reply", text="Second answer.")[0] == 303
    send_due(app)
    assert [text_of(m).split("\n")[0] for m in mail_to(app, TEACHER)
            if "answer." in text_of(m)] == ["First answer.", "Second answer."]
    to_deputy = [m for m in sent_mail(app) if DEPUTY in str(m.get("Cc", ""))
                 or DEPUTY in str(m.get("To", ""))]
    assert [text_of(m).split("\n")[0] for m in to_deputy] == ["First answer."]
    with app.sessions() as session:
        state = session.execute(select(Participant.state).where(
            Participant.address == DEPUTY)).scalar_one()
    assert state == "removed"
    assert post(client, reference, "participant", command="close", address=DEPUTY)[0] == 400


def test_merge_and_withhold(app: App, client: TestClient) -> None:
    keep = open_case(app, attachments=[("notes.txt", "text/plain", b"notes")])
    other = open_case(app, sender="other@school.example", subject="Another case")
    assert post(client, keep, "merge", other=other)[0] == 303
    assert case(app, other).merged_into == case(app, keep).id
    status, page = post(client, keep, "merge", other=keep)
    assert status == 400 and "is this case" in page
    assert post(client, keep, "withhold")[0] in (200, 303)
    with app.sessions() as session:
        [file_id] = session.execute(select(AttachmentRow.id)).scalars()
    assert client.get(f"/cases/{keep}/files/{file_id}").status_code == 403
    assert actions(app, "ticket.merged") and actions(app, "files.withheld")


def test_a_form_without_its_csrf_token_is_refused(app: App, client: TestClient) -> None:
    reference = open_case(app)
    answer = client.post(f"/cases/{reference}/set", data={"command": "priority",
                                                          "value": "urgent"})
    assert answer.status_code == 403 and case(app, reference).priority == "normal"


def test_a_value_not_chosen_is_not_preselected(app: App, client: TestClient) -> None:
    """A case with no category or role offers none ready to submit: a click on "Set
    category" without a choice must not set the first category (illegal images)."""
    reference = open_case(app)
    page = client.get(f"/cases/{reference}").text
    assert page.count('<option value="" selected>choose…</option>') == 2  # category, role
    assert '<option value="" selected>choose a platform…</option>' in page
    status, refused = post(client, reference, "set", command="category", value="")
    assert status == 400 and case(app, reference).category is None
    assert post(client, reference, "escalate", platform="", urls="")[0] == 400
