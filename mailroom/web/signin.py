"""The sign-in pages: ask for a link, open it, give the second factor, sign out."""

from __future__ import annotations

from starlette.responses import Response

from mailroom.web.auth import (
    LINK_MINUTES,
    check_code,
    end_session,
    enrolment_secret,
    is_rate_limited,
    new_token,
    open_session,
    provisioning_uri,
    redeem_link,
    request_link,
)
from mailroom.web.context import NONCE_COOKIE, SESSION_COOKIE, Page, Refused
from mailroom.web.staff import find_staff, second_factor_kept, set_second_factor

TOO_MANY = "Too many attempts from here: wait a quarter of an hour and try again."
WRONG_CODE = ("That code is not right, or it was used already: try the next one your app "
              "shows.")


def signin_form(page: Page) -> Response:
    if page.visit is not None and not page.visit.needs_second_factor:
        return page.redirect("/")
    return page.render("signin.html", error=None)


def signin_request(page: Page) -> Response:
    address = page.field("address").strip().lower()[:320]
    if not address or "@" not in address:
        return page.render("signin.html", 400, error="Enter your email address.")
    if is_rate_limited(page.db, client=page.client, address=address, now=page.app.now()):
        raise Refused(429, TOO_MANY)
    nonce = new_token()
    if request_link(page.app, page.db, address, nonce=nonce, client=page.client,
                    base_url=page.console.base_url):
        page.after_commit.append(page.console.on_queued)
    page.set_cookie(NONCE_COOKIE, nonce, LINK_MINUTES * 60)
    return page.render("signin_sent.html", address=address, minutes=LINK_MINUTES)


def link_landing(page: Page) -> Response:
    """A button that uses the link: fetching the page alone uses nothing up."""
    return page.render("signin_link.html", token=page.request.path_params["token"])


def link_use(page: Page) -> Response:
    if is_rate_limited(page.db, client=page.client, address=None, now=page.app.now()):
        raise Refused(429, TOO_MANY)
    address = redeem_link(page.db, page.field("token"), page.request.cookies.get(NONCE_COOKIE),
                          client=page.client, now=page.app.now())
    staff = find_staff(page.app.settings, page.db, address) if address else None
    if staff is None:
        page.db.commit()  # the failed attempt counts towards the limit
        raise Refused(403, "This sign-in link does not work: it was used already, it is "
                           "older than 15 minutes, or it was opened in another browser than "
                           "the one that asked for it. Ask for a new one.")
    end_session(page.db, page.request.cookies.get(SESSION_COOKIE))
    token = open_session(page.app.settings, page.db, staff, client=page.client,
                         now=page.app.now())
    page.set_cookie(SESSION_COOKIE, token)
    page.set_cookie(NONCE_COOKIE, "", 0)
    page.visit = None
    return page.redirect("/signin/code" if _owes(page, staff.address) else "/")


def _owes(page: Page, address: str) -> bool:
    staff = find_staff(page.app.settings, page.db, address)
    return staff is not None and (staff.has_second_factor
                                  or staff.role in page.app.settings.web_totp_roles)


def code_form(page: Page, error: str | None = None, status: int = 200) -> Response:
    visit = page.visit
    assert visit is not None
    if not visit.needs_second_factor:
        return page.redirect("/")
    enrolling = not second_factor_kept(page.db, visit.staff.address)
    return page.render("signin_code.html", status, error=error, enrolling=enrolling,
                       secret=enrolment_secret(page.app.settings, visit) if enrolling else None,
                       uri=provisioning_uri(page.app.settings, visit) if enrolling else None)


def code_check(page: Page) -> Response:
    visit = page.visit
    assert visit is not None
    if is_rate_limited(page.db, client=page.client, address=None, now=page.app.now()):
        raise Refused(429, TOO_MANY)
    enrolling = not second_factor_kept(page.db, visit.staff.address)
    step = check_code(page.app.settings, page.db, visit, page.field("code"),
                      client=page.client, clock=page.app.clock)
    if step is None:
        return code_form(page, WRONG_CODE, 400)
    if enrolling:
        set_second_factor(page.app.settings, page.db, visit.staff.address,
                          enrolment_secret(page.app.settings, visit), step=step, at=page.app.now())
    return page.redirect("/")


def signout(page: Page) -> Response:
    if page.visit is not None:
        page.audit("console.signed_out")
    end_session(page.db, page.request.cookies.get(SESSION_COOKIE))
    page.set_cookie(SESSION_COOKIE, "", 0)
    return page.redirect("/signin")
