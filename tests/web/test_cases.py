"""The console's case pages: the queue, search, a case's timeline, its files, and acting
on it as a practitioner's reply by mail would (on both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from mailroom.app import App
from mailroom.cases.merging import merge_tickets
from mailroom.privacy.dataprotection import erase_requester
from mailroom.privacy.retention import purge_tickets
from mailroom.sending.sender import send_due
from mailroom.store import search
from mailroom.store.models import AttachmentRow, Event, Message, OutboxItem, Ticket
from mailroom.store.search import SearchQuery, search_ids, tickets_in_order
from tests.factories import FixedClock, deliver, mail, tickets
from tests.web.console import browser, csrf_of, mail_to, text_of
from tests.web.test_signin import ANNA, sign_in

TEACHER = "teacher@school.example"


@pytest.fixture
def app(make_app, clock):  # type: ignore[no-untyped-def]
    return make_app(clock=clock, safeguarding={"illegal_keywords": ["indecent images"]})


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with browser(app) as c:
        sign_in(app, c)
        yield c


def events(app: App, action: str) -> list[Event]:
    with app.sessions() as session:
        return list(session.execute(select(Event).where(Event.action == action)
                                    .order_by(Event.id)).scalars())


def found(app: App, words: str) -> list[str]:
    with app.sessions() as session:
        ids = search_ids(session, SearchQuery.parse(words)).ids[:50]
        return [t.reference or "" for t in tickets_in_order(session, ids)]


# --- search -------------------------------------------------------------------------------------


def test_search_finds_a_case_by_what_it_holds(app: App) -> None:
    deliver(app, mail())
    deliver(app, mail(sender="parent@home.example", subject="Group chat",
                      body="Nasty messages in a WhatsApp group about my son.\n"))
    first, second = (t.reference for t in tickets(app))
    assert found(app, "tiktok.com/@fakehead") == [first]
    assert found(app, "https://www.tiktok.com/@fakehead") == [first]
    assert found(app, TEACHER) == [first]
    assert found(app, "parent@home.example") == [second]
    assert found(app, str(second)) == [second]
    assert found(app, "WHATSAPP group") == [second]
    assert found(app, "head teacher") == [first]  # the subject
    assert found(app, "whatsapp tiktok") == []  # every word, in one case
    assert found(app, "tiktok.com/@someoneelse") == []


def test_search_follows_new_mail_and_forgets_purged_text(app: App) -> None:
    deliver(app, mail())
    ticket = tickets(app)[0]
    with app.sessions() as session:
        first = session.execute(select(Message.message_id)).scalars().first()
    deliver(app, mail(subject="Re: Fake account", in_reply_to=first,
                      body="They also posted on https://instagram.com/fake.head.account\n"))
    assert found(app, "instagram.com/fake.head.account") == [ticket.reference]
    with app.sessions.begin() as session:
        purge_tickets(session, [ticket.id], now=app.now())
    assert found(app, "fake.head.account") == []
    assert found(app, "fakehead") == []


def test_the_search_page_lists_matches_and_is_audited(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    page = client.get("/search", params={"q": "tiktok.com/@fakehead"})
    assert page.status_code == 200 and f"/cases/{reference}" in page.text
    assert events(app, "search")[-1].detail == {"words": "tiktok.com/@fakehead", "results": 1}
    assert events(app, "search")[-1].actor == ANNA


@pytest.mark.parametrize(("rare", "walk"), [(None, None), (1, None), (1, 1)],
                         ids=["led-by-a-rare-word", "walked-then-intersected", "intersected"])
def test_search_lists_the_most_recently_active_first_either_way(
        app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, rare: int | None,
        walk: int | None) -> None:
    """The same answers whichever way the search runs (a rare word leads it; the newest
    cases are walked, then the database intersects the cases of each word): words in
    different messages of a case, a merged case found as the case it went into, newest
    activity first."""
    for number in range(3):
        clock.advance(seconds=10)
        deliver(app, mail(sender=f"t{number}@school.example", subject=f"Case number {number}",
                          body=f"Account number {number} is still up\n"))
    first, second, third = tickets(app)
    with app.sessions() as session:
        opening = session.execute(select(Message.message_id).where(
            Message.ticket_id == first.id)).scalars().first()
    clock.advance(seconds=10)
    deliver(app, mail(sender="t0@school.example", subject="Re: Case number 0",
                      in_reply_to=opening, body="Now it posts photos\n"))
    with app.sessions.begin() as session:
        keep, other = session.get(Ticket, second.id), session.get(Ticket, third.id)
        assert keep is not None and other is not None
        merge_tickets(session, keep, [other], at=app.now(), reason="test")
    for name, value in (("RARE", rare), ("WALK", walk)):
        if value is not None:
            monkeypatch.setattr(search, name, value)
    assert found(app, "account still up") == [first.reference, second.reference]
    assert found(app, "photos number") == [first.reference]  # two messages of one case
    assert found(app, "t2@school.example up") == [second.reference]  # merged into it
    assert found(app, "photos t1@school.example") == []


@pytest.mark.parametrize("rare", [None, 1], ids=["led-by-a-rare-word", "walked-among-the-newest"])
def test_a_search_past_its_limit_says_more_match(app: App, client: TestClient,
                                                 clock: FixedClock,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 rare: int | None) -> None:
    if rare is not None:
        monkeypatch.setattr(search, "RARE", rare)
    for number in range(3):
        clock.advance(seconds=10)
        deliver(app, mail(sender=f"t{number}@school.example", subject=f"Case number {number}"))
    references = [t.reference for t in tickets(app)]
    monkeypatch.setattr(search, "MAX_RESULTS", 2)
    page = client.get("/search", params={"q": "tiktok"})
    assert "More than 2 cases match" in page.text, page.text
    assert f"/cases/{references[2]}" in page.text and f"/cases/{references[1]}" in page.text
    assert f"/cases/{references[0]}" not in page.text  # the oldest activity is left out
    monkeypatch.setattr(search, "MAX_RESULTS", 3)
    page = client.get("/search", params={"q": "tiktok"})
    assert "3 cases match" in page.text and "More than" not in page.text


# --- the queue ----------------------------------------------------------------------------------


def test_the_queue_filters_sorts_and_pages(app: App, client: TestClient,
                                           clock: FixedClock) -> None:
    for number in range(55):
        clock.advance(seconds=10)
        deliver(app, mail(sender=f"t{number}@school.example", subject=f"Case number {number}"))
    first = client.get("/")
    assert first.status_code == 200 and "55 cases" in first.text
    assert "Case number 54" in first.text and "Case number 4<" not in first.text
    second = client.get("/", params={"page": "2"})
    assert "Case number 4<" in second.text and "Case number 54" not in second.text
    oldest = client.get("/", params={"sort": "created", "order": "asc"})
    assert oldest.text.index("Case number 0<") < oldest.text.index("Case number 1<")
    assert "0 cases" in client.get("/", params={"status": "closed"}).text
    assert "55 cases" in client.get("/", params={"platform": "tiktok"}).text
    assert "0 cases" in client.get("/", params={"platform": "instagram"}).text


def test_the_queue_shows_priority_and_when_the_first_answer_is_due(
        app: App, client: TestClient) -> None:
    deliver(app, mail(subject="Urgent one"))
    with app.sessions.begin() as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        ticket.priority = "urgent"
    page = client.get("/", params={"sort": "due", "order": "asc"})
    assert "<th>Priority</th>" in page.text and "<th>First answer due</th>" in page.text
    row = page.text[page.text.index("Urgent one"):]
    row = row[:row.index("</tr>")]
    assert "<td>urgent</td>" in row and "<td>2026-03-03 13:00</td>" in row


# --- a case -------------------------------------------------------------------------------------


def test_a_case_shows_its_messages_as_text_only(app: App, client: TestClient) -> None:
    deliver(app, mail(body="Look: <script>alert(1)</script> <b>bold</b>\n"))
    reference = tickets(app)[0].reference
    page = client.get(f"/cases/{reference}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert TEACHER in page.text and "allowed" in page.text  # the participant and their state
    viewed = events(app, "case.viewed")
    assert [(e.actor, e.ticket_id) for e in viewed] == [(ANNA, tickets(app)[0].id)]


def test_an_unknown_case_is_not_found(client: TestClient) -> None:
    assert client.get("/cases/HL-999999").status_code == 404


def act(client: TestClient, reference: str, path: str, **data: str) -> tuple[int, str]:
    page = client.get(f"/cases/{reference}")
    answer = client.post(f"/cases/{reference}/{path}", data={**data, "csrf": csrf_of(page.text)})
    return answer.status_code, answer.text


def test_a_reply_is_relayed_as_a_mail_reply_would_be(app: App, client: TestClient) -> None:
    deliver(app, mail(message_id="first@school.example"))
    reference = tickets(app)[0].reference
    status, _ = act(client, reference, "reply", mode="reply",
                    text="Thank you, we have reported the account.\n\nKind regards,\nAnna")
    assert status == 303
    send_due(app)
    relays = [m for m in mail_to(app, TEACHER) if "reported the account" in text_of(m)]
    assert len(relays) == 1
    relay = relays[0]
    assert relay["In-Reply-To"] == "<first@school.example>"
    assert "Kind regards,\nAnna" not in text_of(relay)  # the sign-off is dropped, as by mail
    assert "helpline@helpline.example" in relay["From"]
    ticket = tickets(app)[0]
    assert ticket.status == "waiting" and ticket.first_response_at is not None
    relayed = events(app, "message.relayed")[-1]
    assert relayed.actor == ANNA and relayed.detail["to"] == TEACHER


def test_a_note_stays_internal(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    status, _ = act(client, reference, "reply", mode="note", text="Called the school.")
    assert status == 303
    send_due(app)
    assert not [m for m in mail_to(app, TEACHER) if "Called the school" in text_of(m)]
    assert events(app, "note.added")[-1].actor == ANNA
    assert "Called the school." in client.get(f"/cases/{reference}").text


def test_assign_and_status_are_the_commands(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    assert act(client, reference, "assign", assignee="ben@helpline.example")[0] == 303
    assert act(client, reference, "status", status="closed")[0] == 303
    ticket = tickets(app)[0] if tickets(app) else None
    with app.sessions() as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    assert ticket.assignee == "ben@helpline.example" and ticket.status == "closed"
    assert events(app, "ticket.assigned")[-1].actor == ANNA
    send_due(app)
    assert [m for m in mail_to(app, TEACHER) if "closed" in text_of(m).lower()]


def test_the_case_page_shows_the_country_and_sets_it_by_the_command(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(signposting={"countries": {"IE": {"emergency_number": "112 or 999"}}})
    deliver(app, mail(sender="head@school.ie"))
    deliver(app, mail(sender=TEACHER, subject="Another case"))
    irish, other = (t.reference for t in tickets(app))
    with browser(app) as client:
        sign_in(app, client)
        assert "<dt>Country</dt><dd>IE</dd>" in client.get(f"/cases/{irish}").text
        page = client.get(f"/cases/{other}").text
        assert "<dt>Country</dt><dd>GB</dd>" in page
        assert "<option selected>GB</option>" in page and "<option >IE</option>" in page
        assert act(client, other, "country", country="ie")[0] == 303
        assert "<dt>Country</dt><dd>IE</dd>" in client.get(f"/cases/{other}").text
        status, refused = act(client, other, "country", country="FR")
    assert status == 400 and "(one of: GB, IE)" in refused
    assert [t.country for t in tickets(app)] == ["IE", "IE"]
    [changed] = events(app, "ticket.country")
    assert (changed.actor, changed.detail) == (ANNA, {"before": "GB", "after": "IE"})
    with app.sessions.begin() as session:  # a case opened before cases had a country
        session.execute(update(Ticket).values(country=None))
    with browser(app) as client:
        sign_in(app, client)
        assert ("<dt>Country</dt><dd>— (the default numbers and services: GB)</dd>"
                in client.get(f"/cases/{irish}").text)


def test_a_wrong_command_runs_nothing_and_says_why(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    status, page = act(client, reference, "reply", mode="reply",
                       text="#category nonsense\nWe are on it.")
    assert status == 400 and "is not a category" in page
    assert "We are on it." in page  # the text is kept in the form
    with app.sessions() as session:
        assert session.execute(select(OutboxItem).where(
            OutboxItem.kind == "relay")).first() is None
    assert events(app, "command.rejected")[-1].actor == ANNA


# --- files --------------------------------------------------------------------------------------


def file_ids(app: App) -> list[int]:
    with app.sessions() as session:
        return list(session.execute(select(AttachmentRow.id).order_by(AttachmentRow.id))
                    .scalars())


def test_a_file_downloads_as_an_attachment(app: App, client: TestClient) -> None:
    deliver(app, mail(attachments=[("page.html", "text/html", b"<script>x</script>")]))
    reference = tickets(app)[0].reference
    answer = client.get(f"/cases/{reference}/files/{file_ids(app)[0]}")
    assert answer.status_code == 200 and answer.content == b"<script>x</script>"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert events(app, "file.downloaded")[-1].actor == ANNA


def test_a_withheld_file_is_never_downloadable(app: App, client: TestClient) -> None:
    deliver(app, mail(body="A pupil received indecent images.\n",
                      attachments=[("shot.png", "image/png", b"\x89PNG fake")]))
    reference = tickets(app)[0].reference
    page = client.get(f"/cases/{reference}")
    assert "withheld file" in page.text and "shot.png" not in page.text
    answer = client.get(f"/cases/{reference}/files/{file_ids(app)[0]}")
    assert answer.status_code == 403 and b"PNG fake" not in answer.content
    assert events(app, "file.refused")[-1].actor == ANNA


def test_a_file_of_another_case_is_not_found(app: App, client: TestClient) -> None:
    deliver(app, mail(attachments=[("notes.txt", "text/plain", b"notes")]))
    deliver(app, mail(sender="other@school.example", subject="Another"))
    other = tickets(app)[1].reference
    assert client.get(f"/cases/{other}/files/{file_ids(app)[0]}").status_code == 404


def test_escalations_page_lists_them(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    assert act(client, reference, "reply", mode="note", text="#escalate tiktok\nFake account.")[0] \
        in (200, 303)
    page = client.get("/escalations")
    assert page.status_code == 200 and reference in page.text and "tiktok" in page.text
    assert timedelta(0) == timedelta(0)


def test_an_erased_requester_is_not_found(app: App) -> None:
    deliver(app, mail())
    assert found(app, TEACHER) and found(app, "fakehead")
    erase_requester(app, TEACHER, actor="admin")
    assert found(app, TEACHER) == [] and found(app, "fakehead") == []


def test_postgresql_searches_through_its_gin_indexes(app: App) -> None:
    if app.engine.dialect.name != "postgresql":
        pytest.skip("the FTS5 tables are the index on SQLite")
    deliver(app, mail())
    plans = []
    with app.sessions() as session:
        session.execute(text("SET enable_seqscan = off"))
        for table in ("messages", "tickets"):
            plans.append("\n".join(row[0] for row in session.execute(text(
                f"EXPLAIN SELECT id FROM {table} "
                "WHERE search_vector @@ phraseto_tsquery('simple', 'tiktok com fakehead')"))))
    assert "ix_search_messages" in plans[0] and "ix_search_tickets" in plans[1], plans


def test_the_search_index_survives_every_migration(app: App) -> None:
    """A later migration that rebuilds ``messages`` or ``tickets`` on SQLite (batch mode
    copies the table) drops their triggers: it must create them again."""
    with app.engine.connect() as conn:
        if app.engine.dialect.name == "sqlite":
            triggers = conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'search_fts_%'")).scalars().all()
            assert len(triggers) == 6, triggers
        else:
            indexes = conn.execute(text(
                "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_search_%'"
            )).scalars().all()
            assert sorted(indexes) == ["ix_search_messages", "ix_search_tickets"]


def test_a_form_value_cannot_add_a_command_line(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    status, page = act(client, reference, "assign", assignee="me\n#close")
    assert status == 400 and "is not" in page
    assert tickets(app)[0].status == "open"
