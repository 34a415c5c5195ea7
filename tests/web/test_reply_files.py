"""Files attached to a reply written in the console (a multipart form): relayed to the
people the answer goes to and nobody else, as a mail reply's attachments are; kept on
the case with a note; held to the limits of a reply by mail; and refused without the
form's token, to a visitor not signed in, or on a form that takes no files (on both
databases, through the console's HTTP interface)."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from mailroom.app import App
from mailroom.sending.sender import send_due
from mailroom.store.models import AttachmentRow, Event, Message
from tests.factories import deliver, mail, tickets
from tests.web.console import browser, csrf_of, mail_to, sent_mail, text_of
from tests.web.test_signin import ANNA, sign_in

TEACHER = "teacher@school.example"
DEPUTY = "deputy@school.example"
NOSY = "nosy@school.example"
LETTER = ("advice letter.pdf", b"%PDF-1.4 what the school can do next\n", "application/pdf")
POSTER = ("poster.png", b"\x89PNG\r\n\x1a\n a poster for the pupils", "image/png")


@pytest.fixture
def app(make_app, clock):  # type: ignore[no-untyped-def]
    return make_app(clock=clock, safeguarding={"illegal_keywords": ["indecent images"],
                                               "max_attachment_size": 4096},
                    limits={"max_attachments": 3}, smtp={"max_message_size": 32768})


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with browser(app) as c:
        sign_in(app, c)
        yield c


def files_of(message: EmailMessage) -> dict[str, bytes]:
    found = {}
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found[str(part.get_filename())] = payload
    return found


def who_received(app: App, data: bytes) -> list[str]:
    """The To and Cc of every mail sent that carries ``data`` as an attachment."""
    return sorted(f"{m.get('To', '')} | {m.get('Cc', '')}" for m in sent_mail(app)
                  if data in files_of(m).values())


def send_reply(client: TestClient, reference: str, text: str, files: list[tuple[str, bytes, str]],
               mode: str = "reply", csrf: bool = True) -> tuple[int, str]:
    page = client.get(f"/cases/{reference}")
    data = {"text": text, "mode": mode, **({"csrf": csrf_of(page.text)} if csrf else {})}
    answer = client.post(f"/cases/{reference}/reply", data=data,
                         files=[("files", (name, body, kind)) for name, body, kind in files])
    return answer.status_code, answer.text


def console_messages(app: App) -> int:
    with app.sessions() as session:
        return session.execute(select(func.count()).select_from(Message).where(
            Message.sender == ANNA)).scalar_one()


def test_the_files_go_with_the_answer_to_the_people_it_goes_to_and_no_one_else(
        app: App, client: TestClient) -> None:
    deliver(app, mail(cc=[DEPUTY, NOSY], message_id="first@school.example"))
    reference = tickets(app)[0].reference
    status, _ = send_reply(client, reference, f"#allow {DEPUTY}\nHere is our advice, and a "
                           "poster for the pupils.", [LETTER, POSTER])
    assert status == 303
    send_due(app)
    [relay] = [m for m in mail_to(app, TEACHER) if "Here is our advice" in text_of(m)]
    assert files_of(relay) == {LETTER[0]: LETTER[1], POSTER[0]: POSTER[1]}
    assert relay["In-Reply-To"] == "<first@school.example>"
    assert DEPUTY in relay["Cc"] and NOSY not in str(relay)
    for data in (LETTER[1], POSTER[1]):  # the relay alone carries them
        assert who_received(app, data) == [f"{relay['To']} | {relay['Cc']}"]
    assert mail_to(app, NOSY) == []  # the practitioners got their own mail, without files

    with app.sessions() as session:
        rows = session.execute(select(AttachmentRow, Message).join(Message).where(
            Message.sender == ANNA)).all()
        relayed = session.execute(select(Event).where(
            Event.action == "message.relayed")).scalar_one()
    assert sorted((row.filename, row.size, message.kind, "console" in message.flags)
                  for row, message in rows) == [
        (LETTER[0], len(LETTER[1]), "practitioner", True),
        (POSTER[0], len(POSTER[1]), "practitioner", True)]
    assert relayed.detail["attachments"] == [LETTER[0], POSTER[0]] and relayed.actor == ANNA
    page = client.get(f"/cases/{reference}").text
    assert LETTER[0] in page and f"/cases/{reference}/files/" in page  # on the timeline
    file_id = next(row.id for row, _ in rows if row.filename == LETTER[0])
    assert client.get(f"/cases/{reference}/files/{file_id}").content == LETTER[1]


def test_a_note_keeps_its_file_on_the_case_and_sends_it_to_nobody(
        app: App, client: TestClient) -> None:
    deliver(app, mail(cc=[DEPUTY]))
    reference = tickets(app)[0].reference
    status, _ = send_reply(client, reference, "The school's own report, for us.",
                           [("school report.pdf", b"%PDF internal report", "application/pdf")],
                           mode="note")
    assert status == 303
    send_due(app)
    assert who_received(app, b"%PDF internal report") == []
    assert not [m for m in sent_mail(app) if "school's own report" in text_of(m)]
    page = client.get(f"/cases/{reference}").text
    assert "school report.pdf" in page and "The school&#39;s own report, for us." in page


def test_a_file_that_may_not_leave_stays_on_the_case_and_the_page_says_so(
        app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    status, page = send_reply(client, reference, "Please run this tool.",
                              [("tool.exe", b"MZ an executable", "application/octet-stream"),
                               LETTER])
    assert status == 200
    assert "1 attachment(s) were not sent with your answer: files that could run programs " \
           "are never forwarded" in page
    send_due(app)
    [relay] = [m for m in mail_to(app, TEACHER) if "Please run this tool" in text_of(m)]
    assert files_of(relay) == {LETTER[0]: LETTER[1]}
    assert who_received(app, b"MZ an executable") == []


def test_in_an_illegal_case_no_file_leaves_and_its_bytes_are_not_kept(
        app: App, client: TestClient) -> None:
    deliver(app, mail(body="A pupil received indecent images.\n"))
    reference = tickets(app)[0].reference
    status, page = send_reply(client, reference, "We have told the police.", [POSTER])
    assert status == 200 and "were not sent with your answer" in page
    send_due(app)
    assert who_received(app, POSTER[1]) == []
    with app.sessions() as session:
        row = session.execute(select(AttachmentRow)).scalar_one()
    assert not row.stored and POSTER[0] not in row.filename
    assert not app.blobs.exists(row.sha256)


def test_files_with_commands_only_stay_on_the_case_and_the_page_says_so(
        app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    status, page = send_reply(client, reference, "#priority high", [LETTER])
    assert status == 200
    assert "your files stay on the case: no answer went out to carry them" in page
    send_due(app)
    assert who_received(app, LETTER[1]) == []
    assert LETTER[0] in client.get(f"/cases/{reference}").text


# --- limits and refusals ----------------------------------------------------------------------


def test_a_file_over_the_size_limit_stores_nothing_and_keeps_the_text(
        app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    status, page = send_reply(client, reference, "Here is the recording.",
                              [LETTER, ("recording.mp4", b"x" * 4097, "video/mp4")])
    assert status == 400
    assert "recording.mp4 is larger than" in page and "max_attachment_size" in page
    assert "Here is the recording." in page and "choose them again" in page
    send_due(app)
    assert console_messages(app) == 0 and who_received(app, LETTER[1]) == []


def test_too_many_files_store_nothing(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    four = [(f"page{n}.pdf", f"%PDF page {n}".encode(), "application/pdf") for n in range(4)]
    status, page = send_reply(client, reference, "All four pages.", four)
    assert status == 400 and "4 files: at most 3 go with one reply" in page
    assert console_messages(app) == 0


def test_a_body_larger_than_a_mail_may_be_is_refused_before_it_is_read(
        app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    many = [(f"part{n}.bin", bytes(4000), "application/octet-stream") for n in range(9)]
    status, page = send_reply(client, reference, "Everything we have.", many)
    assert status == 413 and "smtp.max_message_size" in page
    assert console_messages(app) == 0


def test_a_wrong_command_with_files_stores_nothing_and_asks_for_the_files_again(
        app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    status, page = send_reply(client, reference, "#category nonsense\nOur advice.", [LETTER])
    assert status == 400 and "is not a category" in page and "choose them again" in page
    with app.sessions() as session:
        assert session.execute(select(AttachmentRow)).first() is None
    assert not app.blobs.exists(__import__("hashlib").sha256(LETTER[1]).hexdigest())


def test_a_multipart_form_without_its_csrf_token_is_refused(app: App,
                                                            client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    status, _ = send_reply(client, reference, "Our advice.", [LETTER], csrf=False)
    assert status == 403
    send_due(app)
    assert console_messages(app) == 0 and who_received(app, LETTER[1]) == []


def test_a_visitor_not_signed_in_cannot_send_files(app: App) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    with browser(app) as stranger:
        form = stranger.get("/signin")  # a form token of its own, for a browser not signed in
        answer = stranger.post(f"/cases/{reference}/reply",
                               data={"text": "Our advice.", "csrf": csrf_of(form.text)},
                               files=[("files", (LETTER[0], LETTER[1], LETTER[2]))])
        assert answer.status_code == 403
    assert console_messages(app) == 0


def test_forms_that_take_no_files_refuse_a_multipart_body(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    page = client.get(f"/cases/{reference}")
    answer = client.post(f"/cases/{reference}/status",
                         data={"status": "closed", "csrf": csrf_of(page.text)},
                         files=[("files", (LETTER[0], LETTER[1], LETTER[2]))])
    assert answer.status_code == 415
    assert tickets(app)[0].status == "open"


def test_a_body_sent_without_its_length_is_cut_off_at_the_limit(app: App,
                                                                client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    page = client.get(f"/cases/{reference}")
    boundary = "limitboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"
            f"{csrf_of(page.text)}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f"name=\"text\"\r\n\r\nEverything.\r\n--{boundary}\r\nContent-Disposition: "
            "form-data; name=\"files\"; filename=\"big.bin\"\r\nContent-Type: "
            "application/octet-stream\r\n\r\n").encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield head
        for _ in range(40):
            yield bytes(1000)
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = client.post(f"/cases/{reference}/reply", content=chunks(),
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 413 and "smtp.max_message_size" in answer.text
    assert console_messages(app) == 0
