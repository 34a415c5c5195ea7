"""The pages about cases: the queue, search, a case's timeline, its files, and acting on
it (the same code as commands by mail: :func:`mailroom.cases.practitioner.act_from_console`).

Every view of a case, search and download is an audit event (``case.viewed``,
``search``, ``file.downloaded`` / ``file.refused``). A message is shown as its text
only: mail HTML is never rendered, and the templates escape everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session, selectinload
from starlette.datastructures import UploadFile
from starlette.responses import Response

from mailroom.cases.attachments import uploaded_file
from mailroom.cases.decisions import apply_decisions
from mailroom.cases.practitioner import ConsoleOutcome, act_from_console
from mailroom.cases.safeguarding import download_refusal
from mailroom.cases.tickets import ticket_by_reference
from mailroom.errors import MailroomError
from mailroom.mailtypes import Attachment
from mailroom.platforms import Platforms
from mailroom.settings import Settings
from mailroom.store.models import AttachmentRow, Event, Message, Ticket
from mailroom.store.search import SearchQuery, search_ids, tickets_in_order
from mailroom.vocabulary import EscalationOutcome, TicketPriority, TicketStatus
from mailroom.web.context import Page, Refused, megabytes

PAGE_SIZE = 50
FILES_AGAIN = "Your files were not kept: choose them again."
ACCESS_ACTIONS = frozenset({"case.viewed", "file.downloaded", "file.refused", "console.refused"})
SORTS: dict[str, Any] = {
    "activity": Ticket.updated_at, "created": Ticket.created_at, "status": Ticket.status,
    "reference": Ticket.id, "category": Ticket.category, "assignee": Ticket.assignee,
    "due": Ticket.sla_due_at,
}
ACTIVE = f"{TicketStatus.OPEN},{TicketStatus.WAITING}"


# --- the queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paging:
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def page_number(page: Page) -> int:
    value = page.arg("page", "1")
    return max(1, min(int(value), 1_000_000)) if value.isdigit() else 1


@dataclass(frozen=True)
class QueueView:
    """What the queue shows: its filters, sort and page, from the page's arguments."""

    status: str
    category: str
    platform: str
    assignee: str
    sort: str
    order: str
    number: int

    @classmethod
    def of(cls, page: Page) -> QueueView:
        return cls(status=page.arg("status", ACTIVE), category=page.arg("category"),
                   platform=page.arg("platform"), assignee=page.arg("assignee"),
                   sort=page.arg("sort", "activity"),
                   order="asc" if page.arg("order") == "asc" else "desc",
                   number=page_number(page))


def queue_rows(db: Session, settings: Settings, platforms: Platforms, actor: str,
               view: QueueView) -> tuple[Paging, Sequence[Ticket]]:
    """The queue's count and its page of cases: the queries the queue page runs."""
    statuses = [s for s in view.status.split(",") if s in tuple(TicketStatus)]
    where: list[Any] = [Ticket.merged_into.is_(None)]
    if statuses:
        where.append(Ticket.status.in_(statuses))
    if view.category in settings.categories:
        where.append(Ticket.category == view.category)
    if view.platform in platforms:
        where.append(cast(Ticket.platforms, String).like(f'%"{view.platform}"%'))
    if view.assignee == "me":
        where.append(Ticket.assignee == actor)
    elif view.assignee == "none":
        where.append(Ticket.assignee.is_(None))
    column = SORTS.get(view.sort, Ticket.updated_at)
    total = db.execute(select(func.count(Ticket.id)).where(*where)).scalar_one()
    paging = Paging(view.number, PAGE_SIZE, total)
    ascending = view.order == "asc"
    ordering: list[Any] = [column.asc() if ascending else column.desc(),
                           Ticket.id.asc() if ascending else Ticket.id.desc()]
    # The page's ids first, then their rows: a deep page skips index entries, not rows.
    ids = db.execute(select(Ticket.id).where(*where).order_by(*ordering)
                     .limit(paging.size).offset(paging.offset)).scalars().all()
    return paging, tickets_in_order(db, ids)


def queue(page: Page) -> Response:
    view = QueueView.of(page)
    paging, rows = queue_rows(page.db, page.app.settings, page.app.platforms, page.actor, view)
    filters = {"status": view.status, "category": view.category, "platform": view.platform,
               "assignee": view.assignee, "sort": view.sort, "order": view.order}
    return page.render("queue.html", tickets=rows, paging=paging, filters=filters,
                       statuses=tuple(TicketStatus), categories=page.app.settings.categories,
                       platforms=sorted(page.app.platforms), sorts=tuple(SORTS))


def search(page: Page) -> Response:
    words = page.arg("q")[:500]
    query = SearchQuery.parse(words)
    rows: list[Ticket] = []
    paging, more = Paging(1, PAGE_SIZE, 0), False
    if query:
        found = search_ids(page.db, query)
        paging, more = Paging(page_number(page), PAGE_SIZE, len(found.ids)), found.more
        rows = tickets_in_order(page.db, found.ids[paging.offset:paging.offset + paging.size])
        page.audit("search", words=words, results=paging.total)
    return page.render("search.html", q=words, tickets=rows, paging=paging, searched=bool(query),
                       capped=more)


# --- one case --------------------------------------------------------------------------------


def find_case(page: Page) -> Ticket:
    ref = page.request.path_params["ref"]
    ticket = ticket_by_reference(page.db, ref) if len(ref) <= 32 else None
    if ticket is None:
        raise Refused(404, "There is no such case.")
    return ticket


def case_rows(db: Session, ticket: Ticket) -> tuple[Sequence[Message], Sequence[Event]]:
    """A case's messages (with their files) and events, as its page shows them."""
    messages = db.execute(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
        .options(selectinload(Message.attachments))).scalars().all()
    events = db.execute(
        select(Event).where(Event.ticket_id == ticket.id,
                            Event.action.not_in(ACCESS_ACTIONS)).order_by(Event.id)
    ).scalars().all()
    return messages, events


def case_page(page: Page, outcome: Any = None, text: str = "", status: int = 200) -> Response:
    ticket = find_case(page)
    if ticket.merged_into is not None:
        keeper = page.db.get(Ticket, ticket.merged_into)
        if keeper is not None and keeper.reference:
            return page.redirect(f"/cases/{keeper.reference}")
    messages, events = case_rows(page.db, ticket)
    files = {row.id: download_refusal(page.app.blobs, page.db, ticket, row)
             for message in messages for row in message.attachments}
    page.audit("case.viewed", ticket_id=ticket.id)
    timeline = sorted([*(("message", m.date or m.created_at, m) for m in messages),
                       *(("event", e.at, e) for e in events)], key=_order)
    settings = page.app.settings
    return page.render(
        "case.html", status, ticket=ticket, timeline=timeline, files=files,
        practitioners=settings.practitioners, statuses=tuple(TicketStatus),
        categories=settings.categories, case_roles=settings.roles,
        priorities=tuple(TicketPriority), outcomes=tuple(EscalationOutcome),
        platforms=sorted(page.app.platforms.items()),
        countries=settings.signposting.known_countries,
        default_country=settings.signposting.default_country,
        outcome=outcome, text=text, done=page.arg("done"),
        max_files=settings.max_attachments, max_file_size=megabytes(settings.max_attachment_size))


def _order(entry: tuple[str, datetime, Any]) -> tuple[datetime, float, int]:
    """When it was stored; an event right after the message it is about."""
    kind, _, item = entry
    if kind == "message":
        return item.created_at, item.id, 0
    return item.at, item.message_pk if item.message_pk is not None else float("inf"), 1


def act(page: Page, text: str, shown: str = "", files: Sequence[Attachment] = (),
        escalation_id: int | None = None) -> Response:
    """Run the text as a practitioner's reply, with its files; back to the case
    (``shown``: what the form held, given back with the errors; ``escalation_id``:
    the escalation an ``#outcome`` is about)."""
    ticket = find_case(page)
    if ticket.merged_into is not None:
        raise Refused(409, "This case was merged into another: act on that one.")
    outcome = act_from_console(page.app, page.db, ticket, actor=page.actor, text=text,
                               files=files, escalation_id=escalation_id)
    app = page.app
    apply_decisions(app.settings, app.renderer, page.db, outcome.decisions, clock=app.clock)
    if outcome.errors:  # nothing was stored but the event saying so
        if files:
            outcome = replace(outcome, errors=(*outcome.errors, FILES_AGAIN))
        return case_page(page, outcome, shown, 400)
    page.after_commit.append(page.console.on_queued)
    if outcome.notices:
        return case_page(page, outcome)
    return page.redirect(f"/cases/{ticket.reference}?done=1#act")


def reply(page: Page) -> Response:
    """The reply box: an answer to the requester or an internal note, with the files
    chosen in it (``files``, a multipart form: see :func:`read_uploads`)."""
    written = page.field("text").replace("\r\n", "\n")[:100_000]
    if not written.strip():
        return case_page(page, None, "", 400)
    files, problem = read_uploads(page.app.settings, page.files("files"))
    if problem is not None:
        return case_page(page, ConsoleOutcome(errors=(problem, FILES_AGAIN)), written, 400)
    return act(page, ("#note\n" if page.field("mode") == "note" else "") + written, written,
               files)


def read_uploads(settings: Settings,
                 uploads: Sequence[UploadFile]) -> tuple[list[Attachment], str | None]:
    """The files of the reply box, within the limits a reply by mail has: at most
    ``limits.max_attachments`` files, each at most ``safeguarding.max_attachment_size``
    (a larger one, by mail, is kept as its hashes only and never sent). The whole
    form is held to ``smtp.max_message_size`` before it is read
    (:func:`mailroom.web.context.read_form`). Returns the files, or why none are taken."""
    if len(uploads) > settings.max_attachments:
        return [], (f"{len(uploads)} files: at most {settings.max_attachments} go with one "
                    "reply (limits.max_attachments).")
    files = []
    for upload in uploads:
        data = upload.file.read(settings.max_attachment_size + 1)
        if len(data) > settings.max_attachment_size:
            return [], (f"{upload.filename} is larger than "
                        f"{megabytes(settings.max_attachment_size)}, the most a file sent "
                        "with a reply may be (safeguarding.max_attachment_size).")
        files.append(uploaded_file(upload.filename, upload.content_type, data))
    return files, None


def one_line(value: str) -> str:
    """A form's value as one command line's argument (a newline would start another)."""
    return " ".join(value.split())[:320]


def assign(page: Page) -> Response:
    return act(page, f"#assign {one_line(page.field('assignee')) or 'me'}")


def change_status(page: Page) -> Response:
    return act(page, f"#status {one_line(page.field('status'))}")


def change_country(page: Page) -> Response:
    return act(page, f"#country {one_line(page.field('country'))}")


def set_value(page: Page) -> Response:
    """The case page's category, role and priority forms: ``#category``, ``#role`` or
    ``#priority`` with the value chosen (a category may send the requester its
    signposting, as by mail)."""
    command = page.field("command")
    if command not in ("category", "role", "priority"):
        raise Refused(400, "Not a value of a case.")
    return act(page, f"#{command} {one_line(page.field('value'))}")


def escalate(page: Page) -> Response:
    """The escalation form: ``#escalate PLATFORM [URL ...]``, with ``#context`` (what the
    platform is told) and ``#evidence`` (the case's files that may leave) when given.
    Nothing goes to the requester."""
    lines = [f"#escalate {one_line(page.field('platform'))} {one_line(page.field('urls'))}"]
    context = one_line(page.field("context"))
    if context:
        lines.insert(0, f"#context {context}")
    if page.field("evidence") == "yes":
        lines.append("#evidence")
    return act(page, "\n".join(line.rstrip() for line in lines))


def record_outcome(page: Page) -> Response:
    """An escalation's outcome (recorded or corrected): ``#outcome VALUE`` about the
    escalation of the form, confirmed by mail to the practitioner, as by mail."""
    escalation = int(page.request.path_params["escalation"])
    return act(page, f"#outcome {one_line(page.field('outcome'))}", escalation_id=escalation)


def merge(page: Page) -> Response:
    """``#merge REF``: the other case is folded into this one."""
    return act(page, f"#merge {one_line(page.field('other'))}")


def participant(page: Page) -> Response:
    """A participant's row: ``#allow ADDRESS`` (they receive the case's answers from now
    on) or ``#remove ADDRESS`` (nothing more)."""
    command = page.field("command")
    if command not in ("allow", "remove"):
        raise Refused(400, "Not a change of a participant.")
    return act(page, f"#{command} {one_line(page.field('address'))}")


def withhold(page: Page) -> Response:
    """``#withhold``: no file of the case is ever sent again."""
    return act(page, "#withhold")


def download(page: Page) -> Response:
    ticket = find_case(page)
    row = page.db.get(AttachmentRow, page.request.path_params["file_id"])
    message = page.db.get(Message, row.message_pk) if row is not None else None
    if row is None or message is None or message.ticket_id != ticket.id:
        raise Refused(404, "There is no such file on this case.")
    refusal = download_refusal(page.app.blobs, page.db, ticket, row)
    if refusal is not None:
        page.audit("file.refused", ticket_id=ticket.id, sha256=row.sha256, reason=refusal)
        page.db.commit()
        raise Refused(403, f"This file cannot be downloaded: {refusal}.")
    try:
        data = page.app.blobs.get(row.sha256)
    except (OSError, MailroomError):
        raise Refused(404, "The file's bytes are not there any more.") from None
    page.audit("file.downloaded", ticket_id=ticket.id, sha256=row.sha256)
    name = row.filename.replace('"', "").replace("\\", "") or "attachment"
    encoded = quote(name, safe="")
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{encoded}",
        "X-Content-Type-Options": "nosniff"})
