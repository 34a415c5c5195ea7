"""The pages beyond single cases: escalations, reports and the audit trail."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from starlette.responses import HTMLResponse, Response

from mailroom.reports.cases import case_report
from mailroom.reports.data import Period, build_report
from mailroom.reports.formats import render
from mailroom.store.models import Escalation, Event, Ticket
from mailroom.vocabulary import EscalationStatus
from mailroom.web.cases import PAGE_SIZE, Paging, page_number
from mailroom.web.context import Page, security_headers

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
    html = render(document, "html", page.app.settings.templates_dir)
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
