"""Signing in to the staff console and what a session may do, through its HTTP
interface (Starlette's test client over the real App, on both databases)."""

from __future__ import annotations

import pyotp
from starlette.testclient import TestClient

from mailroom.app import App
from mailroom.sending.sender import send_due
from mailroom.web.console import build_console
from mailroom.web.staff import add_user, find_staff
from tests.factories import FixedClock, deliver, mail, tickets
from tests.web.console import BASE, browser, csrf_of, mail_to, sign_in_link

ANNA = "anna@helpline.example"


def ask_for_link(client: TestClient, address: str) -> None:
    form = client.get("/signin")
    answer = client.post("/signin", data={"address": address, "csrf": csrf_of(form.text)})
    assert answer.status_code == 200, answer.text


def use_link(client: TestClient, link: str) -> tuple[int, str]:
    landing = client.get(link.removeprefix(BASE))
    assert landing.status_code == 200
    token = link.rsplit("/", 1)[1]
    answer = client.post("/signin/link", data={"token": token, "csrf": csrf_of(landing.text)})
    return answer.status_code, answer.headers.get("location", "")


def sign_in(app: App, client: TestClient, address: str = ANNA) -> None:
    ask_for_link(client, address)
    status, where = use_link(client, sign_in_link(app, address))
    assert (status, where) == (303, "/")


def test_healthz_answers_without_a_session(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.text == "ok\n"


def test_a_signed_out_visitor_sees_no_case(app: App, client: TestClient) -> None:
    deliver(app, mail())
    reference = tickets(app)[0].reference
    for path in ("/", f"/cases/{reference}", "/search?q=tiktok", "/escalations", "/audit"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/signin", path
        assert "tiktok" not in answer.text.lower()


def test_the_mailed_link_signs_in_once(app: App, client: TestClient) -> None:
    ask_for_link(client, ANNA)
    link = sign_in_link(app, ANNA)
    assert use_link(client, link) == (303, "/")
    queue = client.get("/")
    assert queue.status_code == 200 and ANNA in queue.text
    assert "HttpOnly" in queue.headers.get("set-cookie", "HttpOnly")
    client.cookies.clear()
    status, _ = use_link(client, link)
    assert status == 403


def test_a_forwarded_link_does_not_work_in_another_browser(app: App, client: TestClient) -> None:
    ask_for_link(client, ANNA)
    link = sign_in_link(app, ANNA)
    with browser(app) as other:
        status, _ = use_link(other, link)
        assert status == 403
        assert other.get("/").status_code == 303


def test_a_stranger_gets_the_same_answer_and_no_mail(app: App, client: TestClient) -> None:
    ask_for_link(client, "stranger@example.org")
    assert mail_to(app, "stranger@example.org") == []


def test_a_link_is_valid_fifteen_minutes(app: App, client: TestClient,
                                         clock: FixedClock) -> None:
    ask_for_link(client, ANNA)
    clock.advance(minutes=16)
    status, _ = use_link(client, sign_in_link(app, ANNA))
    assert status == 403


def test_a_form_without_its_csrf_token_is_refused(app: App, client: TestClient) -> None:
    deliver(app, mail())
    sign_in(app, client)
    reference = tickets(app)[0].reference
    answer = client.post(f"/cases/{reference}/status", data={"status": "closed"})
    assert answer.status_code == 403
    assert tickets(app)[0].status == "open"


def test_sessions_end_when_idle(app: App, client: TestClient, clock: FixedClock) -> None:
    sign_in(app, client)
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=31)
    assert client.get("/").status_code == 303


def test_sessions_end_after_twelve_hours(app: App, client: TestClient,
                                         clock: FixedClock) -> None:
    sign_in(app, client)
    for _ in range(25):
        clock.advance(minutes=29)
        client.get("/")
    assert client.get("/").status_code == 303


def test_link_requests_are_rate_limited(app: App, client: TestClient) -> None:
    for _ in range(5):
        ask_for_link(client, ANNA)
    form = client.get("/signin")
    answer = client.post("/signin", data={"address": ANNA, "csrf": csrf_of(form.text)})
    assert answer.status_code == 429
    assert len(mail_to(app, ANNA)) == 5


def test_a_practitioner_may_not_open_the_audit(app: App, client: TestClient) -> None:
    sign_in(app, client)
    assert client.get("/audit").status_code == 403
    assert client.get("/reports").status_code == 403


def test_a_manager_opens_the_audit_and_reports(app: App, client: TestClient) -> None:
    with app.sessions.begin() as session:
        add_user(session, "maria@helpline.example", "manager", actor="test", at=app.now())
    sign_in(app, client, "maria@helpline.example")
    audit = client.get("/audit")
    assert audit.status_code == 200 and "console.signed_in" in audit.text
    report = client.get("/reports?from=2026-03-01&to=2026-03-31")
    assert report.status_code == 200 and "<table" in report.text
    # the very document of ``mailroom report --format html``, every section of it
    for title in ("Key figures", "Answers within target", "Advice only and escalated cases",
                  "Escalations to platforms by outcome", "Outcomes of decided escalations"):
        assert title in report.text


def test_an_admin_signs_in_with_a_second_factor(app: App, client: TestClient) -> None:
    with app.sessions.begin() as session:
        add_user(session, "ada@helpline.example", "admin", actor="test", at=app.now())
    ask_for_link(client, "ada@helpline.example")
    status, where = use_link(client, sign_in_link(app, "ada@helpline.example"))
    assert (status, where) == (303, "/signin/code")
    assert client.get("/").headers["location"] == "/signin/code"
    page = client.get("/signin/code")
    secret = page.text.split('class="secret">')[1].split("<")[0]
    wrong = client.post("/signin/code", data={"code": "000000", "csrf": csrf_of(page.text)})
    assert wrong.status_code == 400
    code = pyotp.TOTP(secret).at(app.now())
    right = client.post("/signin/code", data={"code": code, "csrf": csrf_of(page.text)})
    assert right.status_code == 303 and right.headers["location"] == "/"
    assert client.get("/audit").status_code == 200


def test_every_page_has_a_strict_content_security_policy(app: App, client: TestClient) -> None:
    sign_in(app, client)
    answer = client.get("/")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


def admin_signed_in(app: App, client: TestClient) -> None:
    with app.sessions.begin() as session:
        add_user(session, "ada@helpline.example", "admin", actor="test", at=app.now())
    ask_for_link(client, "ada@helpline.example")
    use_link(client, sign_in_link(app, "ada@helpline.example"))
    page = client.get("/signin/code")
    secret = page.text.split('class="secret">')[1].split("<")[0]
    client.post("/signin/code", data={"code": pyotp.TOTP(secret).at(app.now()),
                                      "csrf": csrf_of(page.text)})


def test_an_admin_adds_and_removes_users(app: App, client: TestClient) -> None:
    admin_signed_in(app, client)
    page = client.get("/users")
    assert page.status_code == 200 and ANNA in page.text
    added = client.post("/users/add", data={"address": "maria@helpline.example",
                                            "role": "manager", "csrf": csrf_of(page.text)})
    assert added.status_code == 303
    with browser(app) as maria:
        sign_in(app, maria, "maria@helpline.example")
        assert maria.get("/audit").status_code == 200
        removed = client.post("/users/remove", data={"address": "maria@helpline.example",
                                                     "csrf": csrf_of(page.text)})
        assert removed.status_code == 303
        assert maria.get("/").status_code == 303  # no longer staff: signed out
    wrong = client.post("/users/add", data={"address": "x@example.org", "role": "boss",
                                            "csrf": csrf_of(page.text)})
    assert wrong.status_code == 400 and "unknown role" in wrong.text


def test_a_practitioner_may_not_manage_users(app: App, client: TestClient) -> None:
    sign_in(app, client)
    assert client.get("/users").status_code == 403
    page = client.get("/")
    answer = client.post("/users/add", data={"address": "me@example.org", "role": "admin",
                                             "csrf": csrf_of(page.text)})
    assert answer.status_code == 403
    with app.sessions() as session:
        assert find_staff(app.settings, session, "me@example.org") is None


def test_a_practitioner_may_set_up_a_second_factor(app: App, client: TestClient,
                                                   clock: FixedClock) -> None:
    sign_in(app, client)
    page = client.get("/account")
    secret = page.text.split('class="secret">')[1].split("<")[0]
    done = client.post("/account/code", data={"code": pyotp.TOTP(secret).at(app.now()),
                                              "csrf": csrf_of(page.text)})
    assert done.status_code == 303
    clock.advance(seconds=30)  # the code of the set-up is used up: the next one
    with browser(app) as again:
        ask_for_link(again, ANNA)
        assert use_link(again, sign_in_link(app, ANNA)) == (303, "/signin/code")
        code_page = again.get("/signin/code")
        assert 'class="secret"' not in code_page.text  # the secret is shown only once
        right = again.post("/signin/code", data={"code": pyotp.TOTP(secret).at(app.now()),
                                                 "csrf": csrf_of(code_page.text)})
        assert right.headers["location"] == "/"
        assert again.get("/").status_code == 200


def test_cookies_are_secure_over_tls(app: App) -> None:
    console = build_console(app, "https://console.example", on_queued=lambda: send_due(app))
    with TestClient(console, base_url="https://console.example",
                    follow_redirects=False) as client:
        answer = client.get("/signin")
        cookie = answer.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        ask_for_link(client, ANNA)
        assert sign_in_link(app, ANNA).startswith("https://console.example/signin/link/")


def test_bad_links_are_rate_limited(app: App, client: TestClient) -> None:
    landing = client.get("/signin/link/nothing")
    statuses = [client.post("/signin/link", data={"token": f"wrong{n}",
                                                  "csrf": csrf_of(landing.text)}).status_code
                for n in range(11)]
    assert statuses[:10] == [403] * 10 and statuses[10] == 429
