"""The pages beyond single cases: escalations, reports, the audit trail, users (admins)
and one's own account (an optional second factor)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from starlette.responses import HTMLResponse, Response

from mailroom.errors import MailroomError
from mailroom.reports.cases import case_report
from mailroom.reports.data import Period, build_report
from mailroom.reports.formats import render
from mailroom.store.models import Escalation, Event, Ticket
from mailroom.vocabulary import EscalationStatus, StaffRole
from mailroom.web.auth import check_code, enrolment_secret, is_rate_limited, provisioning_uri
from mailroom.web.cases import PAGE_SIZE, Paging, page_number
from mailroom.web.context import Page, Refused, security_headers
from mailroom.web.staff import (
    add_user,
    list_staff,
    remove_user,
    second_factor_kept,
    set_second_factor,
)

# The report is the very document ``mailroom report --format html`` writes: its own
# styles inline, no script.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
              "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


def escalations(page: Page) -> Response:
    status = page.arg("status")
    stmt = select(Escalation, Ticket.reference).join(Ticket, Ticket.id == Escalation.ticket_id)
    if status in tuple(EscalationStatus):
        stmt = stmt.where(Escalation.status == status)
    total = page.db.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    paging = Paging(page_number(page), PAGE_SIZE, total)
    rows = page.db.execute(stmt.order_by(Escalation.opened_at.desc(), Escalation.id.desc())
                           .limit(paging.size).offset(paging.offset)).all()
    return page.render("escalations.html", rows=rows, paging=paging, chosen=status,
                       statuses=tuple(EscalationStatus))


def reports(page: Page) -> Response:
    start, end = _date(page.arg("from")), _date(page.arg("to"))
    if start is None or end is None:
        return page.render("reports.html", start=page.arg("from"), end=page.arg("to"),
                           error=None)
    try:
        period = Period(start, end)
    except ValueError as exc:
        return page.render("reports.html", 400, start=page.arg("from"), end=page.arg("to"),
                           error=str(exc))
    page.audit("report.viewed", start=start.isoformat(), end=end.isoformat())
    page.db.commit()  # the report reads in sessions of its own
    document = case_report(build_report(page.app, period))
    html = render(document, "html", page.app.settings.template_dirs)
    return HTMLResponse(html, headers=dict(security_headers(REPORT_CSP)))


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def audit(page: Page) -> Response:
    actor, action = page.arg("actor").strip().lower(), page.arg("action").strip()
    stmt = select(Event, Ticket.reference).outerjoin(Ticket, Ticket.id == Event.ticket_id)
    if actor:
        stmt = stmt.where(func.lower(Event.actor) == actor)
    if action:
        stmt = stmt.where(Event.action == action)
    total = page.db.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    paging = Paging(page_number(page), PAGE_SIZE, total)
    rows = page.db.execute(stmt.order_by(Event.id.desc()).limit(paging.size)
                           .offset(paging.offset)).all()
    return page.render("audit.html", rows=rows, paging=paging, actor=actor, action=action)


# --- users (admins) and one's own account ----------------------------------------------------


def users(page: Page, error: str | None = None, status: int = 200) -> Response:
    return page.render("users.html", status, people=list_staff(page.app.settings, page.db),
                       error=error, roles_list=tuple(StaffRole))


def users_add(page: Page) -> Response:
    try:
        add_user(page.db, page.field("address"), page.field("role"), actor=page.actor,
                 at=page.app.now())
    except MailroomError as exc:
        return users(page, str(exc), 400)
    return page.redirect("/users")


def users_remove(page: Page) -> Response:
    try:
        remove_user(page.app.settings, page.db, page.field("address"), actor=page.actor,
                    at=page.app.now())
    except MailroomError as exc:
        return users(page, str(exc), 400)
    return page.redirect("/users")


def account(page: Page, error: str | None = None, status: int = 200) -> Response:
    visit = page.visit
    assert visit is not None
    kept = second_factor_kept(page.db, visit.staff.address)
    return page.render("account.html", status, me=visit.staff, kept=kept, error=error,
                       secret=None if kept else enrolment_secret(page.app.settings, visit),
                       uri=None if kept else provisioning_uri(page.app.settings, visit))


def account_code(page: Page) -> Response:
    """Set up an optional second factor: from the next sign-in on, it is asked for."""
    visit = page.visit
    assert visit is not None
    if second_factor_kept(page.db, visit.staff.address):
        return page.redirect("/account")
    if is_rate_limited(page.db, client=page.client, address=None, now=page.app.now()):
        raise Refused(429, "Too many attempts from here: wait a quarter of an hour.")
    step = check_code(page.app.settings, page.db, visit, page.field("code"),
                      client=page.client, clock=page.app.clock)
    if step is None:
        return account(page, "That code is not right: try the one showing now.", 400)
    set_second_factor(page.app.settings, page.db, visit.staff.address,
                      enrolment_secret(page.app.settings, visit), step=step, at=page.app.now())
    return page.redirect("/account")
