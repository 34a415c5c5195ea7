"""The data model (SQLAlchemy 2 typed ORM).

Flow of rows: a door writes an ``InboxItem`` (raw bytes first); the pipeline
turns it into a ``Message`` on a ``Ticket`` and writes ``OutboxItem`` rows in
the same transaction; the sender job delivers the outbox. ``Event`` rows are
the audit trail. Threading looks messages up by their own Message-ID
(``messages.message_id``) and by the ids they refer to
(``message_refs.ref``), both indexed, so lookups stay flat as history grows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

from mailroom.vocabulary import (
    EscalationStatus,
    InboxStatus,
    OutboxStatus,
    ParticipantState,
    TicketPriority,
    TicketStatus,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class InboxRaw(Base):
    """The exact bytes of an inbox message, kept apart from its row.

    A status change then never touches them: SQLite copies the whole row on
    every UPDATE, which for a 36 MB message means twice that in memory.
    No row here: the bytes were erased or purged.
    """

    __tablename__ = "inbox_raw"

    inbox_id: Mapped[int] = mapped_column(
        ID, ForeignKey("inbox.id", ondelete="CASCADE"), primary_key=True
    )
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class InboxItem(Base):
    """A raw inbound message as a door received it. Status: new, done, bad, shunt."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    door: Mapped[str] = mapped_column(String(16))  # smtp, imap, file
    door_ref: Mapped[str | None] = mapped_column(String(255))
    mail_from: Mapped[str | None] = mapped_column(String(512))
    rcpt_to: Mapped[list[Any]] = mapped_column(default=list)
    dedup_key: Mapped[str] = mapped_column(String(512), unique=True)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    # Read-only: the bytes in ``inbox_raw`` (None once erased or purged).
    raw: Mapped[bytes | None] = column_property(
        select(InboxRaw.raw).where(InboxRaw.inbox_id == id).correlate_except(InboxRaw)
        .scalar_subquery()
    )
    status: Mapped[str] = mapped_column(String(8), default=InboxStatus.NEW)
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None]
    message_pk: Mapped[int | None] = mapped_column(
        ID, ForeignKey("messages.id", ondelete="SET NULL")
    )

    __table_args__ = (Index("ix_inbox_status_id", "status", "id"),)


class Ticket(Base):
    """A case. Status: open, waiting, closed."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.OPEN, index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    role: Mapped[str | None] = mapped_column(String(64))
    requester: Mapped[str | None] = mapped_column(String(320), index=True)
    requester_name: Mapped[str | None] = mapped_column(String(255))
    assignee: Mapped[str | None] = mapped_column(String(320))
    flags: Mapped[list[Any]] = mapped_column(default=list)
    platforms: Mapped[list[Any]] = mapped_column(default=list)  # platform keys seen in URLs
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]  # bodies and attachments removed by retention
    sla_due_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    merged_into: Mapped[int | None] = mapped_column(ID, ForeignKey("tickets.id"))
    priority: Mapped[str] = mapped_column(String(8), default=TicketPriority.NORMAL,
                                          server_default=TicketPriority.NORMAL)
    escalation_context: Mapped[str | None] = mapped_column(Text)  # #context, for the next one
    # The due time (sla_due_at) already warned about, and already notified as breached: each
    # clock is warned of and notified once (cases.sla_notices).
    sla_warned_for: Mapped[datetime | None]
    sla_breach_notified_for: Mapped[datetime | None]
    # ISO 3166 alpha-2: whose numbers and services its requester mail gives ([signposting])
    country: Mapped[str | None] = mapped_column(String(2))

    # The live cases (not merged), in the orders the queue and the search read them.
    __table_args__ = tuple(
        Index(f"ix_tickets_live_{name}", *columns, sqlite_where=text("merged_into IS NULL"),
              postgresql_where=text("merged_into IS NULL"))
        for name, columns in (("updated_at", ("updated_at", "id")),
                              ("status_updated_at", ("status", "updated_at", "id")),
                              ("status_created_at", ("status", "created_at", "id")),
                              ("status_sla_due_at", ("status", "sla_due_at", "id"))))

    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", order_by="Message.id", foreign_keys="Message.ticket_id"
    )
    participants: Mapped[list[Participant]] = relationship(
        back_populates="ticket", order_by="Participant.id", cascade="all, delete-orphan"
    )
    escalations: Mapped[list[Escalation]] = relationship(
        back_populates="ticket", order_by="Escalation.id"
    )


class Message(Base):
    """One message in or out. Kind: requester, practitioner, platform, auto_reply,
    bounce, loop, acknowledgement, notification, relay, escalation, follow_up, …"""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    escalation_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("escalations.id", ondelete="SET NULL")
    )
    direction: Mapped[str] = mapped_column(String(3))  # in, out
    kind: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str | None] = mapped_column(String(255))
    recipients: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"to": [...], "cc": [...]}
    message_id: Mapped[str | None] = mapped_column(String(512), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    conversation: Mapped[str | None] = mapped_column(String(64), index=True)  # Thread-Index root
    subject: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime | None]
    text: Mapped[str | None] = mapped_column(Text)  # the new text, quotes stripped
    urls: Mapped[list[Any]] = mapped_column(default=list)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket | None] = relationship(
        back_populates="messages", foreign_keys=[ticket_id]
    )
    attachments: Mapped[list[AttachmentRow]] = relationship(
        back_populates="message", order_by="AttachmentRow.id", cascade="all, delete-orphan"
    )


class MessageRef(Base):
    """An id a message names in In-Reply-To/References: threading looks these up."""

    __tablename__ = "message_refs"

    message_pk: Mapped[int] = mapped_column(
        ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    ref: Mapped[str] = mapped_column(String(512), primary_key=True)

    __table_args__ = (Index("ix_message_refs_ref", "ref"),)


class MessageTarget(Base):
    """An account or item a message reported (:mod:`mailroom.intake.accounts`): repeat
    reports of one account across cases are found through ``target``."""

    __tablename__ = "message_targets"

    message_pk: Mapped[int] = mapped_column(
        ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(String(300), primary_key=True)  # platform:kind:ident
    url: Mapped[str] = mapped_column(Text)  # a canonical URL that opens it

    __table_args__ = (Index("ix_message_targets_target", "target"),)


class Participant(Base):
    """Someone on a case. Role: requester, cc.

    State: ``allowed`` (receives the case's mail: the requester, and whoever a
    practitioner allowed), ``pending`` (recorded from mail, receives nothing until
    a practitioner allows them) or ``removed`` (a practitioner took them off).
    ``failing_since``: mail of the case to them bounced; nothing more is sent to them
    until a practitioner writes ``#retry`` or they write again
    (:mod:`mailroom.cases.deliveries`).
    """

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ID, ForeignKey("tickets.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(8), default=ParticipantState.PENDING,
                                       server_default=ParticipantState.ALLOWED)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    failing_since: Mapped[datetime | None]
    failing_reason: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[Ticket] = relationship(back_populates="participants")

    __table_args__ = (UniqueConstraint("ticket_id", "address"),)


class TicketLink(Base):
    """Two cases of one conversation that were not merged, because merging would
    have added recipients to one of them; a practitioner may merge them."""

    __tablename__ = "ticket_links"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ID, ForeignKey("tickets.id", ondelete="CASCADE"))
    related_id: Mapped[int] = mapped_column(
        ID, ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(String(32))
    message_pk: Mapped[int | None] = mapped_column(
        ID, ForeignKey("messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("ticket_id", "related_id"),)


class AttachmentRow(Base):
    """Attachment metadata; the bytes live in the content-addressed store by sha256."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    message_pk: Mapped[int] = mapped_column(
        ID, ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # For matching hash lists exchanged with hotlines (which still use MD5); None for
    # files stored before it was recorded.
    md5: Mapped[str | None] = mapped_column(String(32), index=True)
    stored: Mapped[bool] = mapped_column(Boolean, default=True)  # False: hash only
    inline: Mapped[bool] = mapped_column(Boolean, default=False)

    message: Mapped[Message] = relationship(back_populates="attachments")


class BlockedHash(Base):
    """A file that is never forwarded, whatever case it turns up in (the hash blocklist).

    One row per file: its SHA-256 and, for lists exchanged with hotlines, its MD5
    (either may be unknown for an imported hash). ``source`` says how it was
    listed: ``case`` (withheld from a case judged illegal), ``import`` (``mailroom
    hashes import``) or ``command`` (a practitioner withheld a case's files by hand);
    ``ticket_id`` the case it came from, ``origin`` the file name or command."""

    __tablename__ = "hash_blocklist"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    md5: Mapped[str | None] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # case, import, command
    ticket_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("tickets.id", ondelete="SET NULL")
    )
    origin: Mapped[str | None] = mapped_column(String(512))
    note: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[str] = mapped_column(String(320))


class OutboxItem(Base):
    """An outgoing mail, rendered when queued, composed and given its files when sent.

    ``rendered`` holds the rendered form (:mod:`mailroom.outbox.rendered`);
    rows queued before it existed hold the composed bytes in ``raw``.
    Status: queued, sending (claimed by a sender), sent, failed."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    escalation_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("escalations.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    send_after: Mapped[datetime] = mapped_column(default=utcnow)
    message_id: Mapped[str] = mapped_column(String(512), unique=True)
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[list[Any]] = mapped_column(default=list)
    to_addr: Mapped[str] = mapped_column(String(320))  # first recipient, for rate limits
    subject: Mapped[str] = mapped_column(Text, default="")
    rendered: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # Stored attachments added at send time: [{filename, content_type, sha256, size}].
    files: Mapped[list[Any] | None] = mapped_column(JSON)
    claimed_by: Mapped[str | None] = mapped_column(String(32))  # the sender's claim token
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # Acknowledgements only: keyed hashes of the normalised subject and new text of the
    # mail acknowledged, for the circuit breaker across senders (mailroom.cases.replies).
    subject_key: Mapped[str | None] = mapped_column(String(32))
    body_key: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_outbox_status_send_after", "status", "send_after"),
        Index("ix_outbox_kind_to_addr_created_at", "kind", "to_addr", "created_at"),
        Index("ix_outbox_kind_subject_key_created_at", "kind", "subject_key", "created_at"),
        Index("ix_outbox_kind_body_key_created_at", "kind", "body_key", "created_at"),
    )


def outbox_has_content() -> ColumnElement[bool]:
    """Rows whose mail is still held (neither erased nor purged)."""
    return OutboxItem.rendered.is_not(None)


class Escalation(Base):
    """A report to a platform. Status: sent, responded, resolved, no_response."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ID, ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=EscalationStatus.SENT)
    platform_ref: Mapped[str | None] = mapped_column(String(255))
    urls: Mapped[list[Any]] = mapped_column(default=list)
    context: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    responded_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    follow_ups: Mapped[int] = mapped_column(Integer, default=0)
    next_follow_up_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(512))

    ticket: Mapped[Ticket] = relationship(back_populates="escalations")


class Reminder(Base):
    """``#remind DATE``: a mail to a practitioner about a case, on a day (sent once)."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ID, ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    practitioner: Mapped[str] = mapped_column(String(320))
    due_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    message_pk: Mapped[int | None] = mapped_column(
        ID, ForeignKey("messages.id", ondelete="SET NULL")
    )  # the reply that asked for it


class Event(Base):
    """The audit trail: who did what, when, from which message."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    escalation_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("escalations.id", ondelete="SET NULL")
    )
    message_pk: Mapped[int | None] = mapped_column(
        ID, ForeignKey("messages.id", ondelete="SET NULL")
    )
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ImapState(Base):
    """Where the IMAP door got to in each account's folder."""

    __tablename__ = "imap_state"

    account: Mapped[str] = mapped_column(String(255), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)  # the last successful poll


class JobRun(Base):
    """When each scheduler job last ran (``mailroom status`` shows it); the lease lets
    two processes share the schedule of a gated job."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(255))


class StaffUser(Base):
    """Someone who may sign in to the staff console, beyond the configured practitioners.

    Role: practitioner, manager (reports, audit) or admin (users). A configured
    practitioner with no row signs in as a practitioner; a row for them gives
    another role, or holds their second factor. ``totp_secret``: the secret of
    their authenticator app, once they confirmed a code from it, encrypted with the
    key in ``security.totp_key_file`` (:mod:`mailroom.web.totp`; base32 in the clear
    before revision 0018, until the console's next start). ``totp_last_step``: the
    time step of the last code accepted; a code of that step or an older one is not
    accepted again."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[str] = mapped_column(String(320))


class LoginLink(Base):
    """A single-use sign-in link mailed to a member of staff.

    Only hashes are kept: of the token in the link, and of the nonce in the
    cookie of the browser that asked for it (a forwarded link does not work)."""

    __tablename__ = "login_links"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce_hash: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser. ``token_hash``: the hash of the cookie's value.

    It ends after ``web.idle_minutes`` without a request, or ``web.session_hours``
    after sign-in, whichever comes first. ``second_factor``: False while a TOTP
    code is still owed (the session then opens nothing but the code page)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(320), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    second_factor: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginAttempt(Base):
    """A request for a sign-in link or a code tried, for the rate limits.

    ``client``: the address of the browser's host; ``kind``: link, token, totp."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    address: Mapped[str | None] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    ok: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_login_attempts_client_at", "client", "at"),
                      Index("ix_login_attempts_address_at", "address", "at"))
