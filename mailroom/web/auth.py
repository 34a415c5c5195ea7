"""Signing in to the staff console: mailed single-use links, sessions, second factor,
CSRF tokens and rate limits.

- **The link.** A member of staff enters their address; the browser gets a random
  nonce in a cookie, and the address (when it is staff's) a link by mail, through
  the outbox. The link works once, for :data:`LINK_MINUTES`, and only together with
  that browser's nonce: a forwarded link opens nothing. Opening it shows a button
  that signs in (a POST): a mail scanner that fetches links does not use it up.
  The same answer is given for any address, so the page does not say who is staff.
- **The session.** A random token in an HttpOnly, SameSite=Strict cookie (Secure
  over TLS); only its SHA-256 is stored. It ends after ``web.idle_minutes`` without
  a request or ``web.session_hours`` after sign-in, and when its holder stops
  being staff.
- **The second factor.** A TOTP code (pyotp), owed by the roles in
  ``web.totp_required_roles`` and by anyone who set one up. Until it is given the
  session opens only the code page. Someone who owes one and has none sets it up
  there, with a secret derived from their session (so nothing half-made is stored).
  A code is accepted once, and the secret is kept encrypted (:mod:`mailroom.web.totp`).
- **CSRF.** Every form carries a token: the session's, or before sign-in an HMAC of
  a random cookie. A POST without the right one is refused.
- **Rate limits.** Per browser address and per staff address, counted in
  ``login_attempts`` over :data:`RATE_WINDOW`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailroom.app import App, Clock
from mailroom.cases.tickets import record_event
from mailroom.mailtypes import Address
from mailroom.outbox.queue import Draft, queue_mail
from mailroom.settings import Settings
from mailroom.store.models import LoginAttempt, LoginLink, WebSession
from mailroom.vocabulary import OutboxKind
from mailroom.web.staff import Staff, find_staff, normalise, second_factor_secret
from mailroom.web.totp import accept_step, matching_step

LINK_MINUTES = 15
RATE_WINDOW = timedelta(minutes=15)
LINKS_PER_ADDRESS = 5  # links mailed to one address per window
REQUESTS_PER_CLIENT = 20  # link requests from one browser address per window
FAILURES_PER_CLIENT = 10  # bad links and wrong codes from one browser address per window
KEEP_ATTEMPTS = timedelta(days=1)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


# --- rate limits ---------------------------------------------------------------------------


def is_rate_limited(session: Session, *, client: str, address: str | None,
                    now: datetime) -> bool:
    """Too many requests or failures from this browser, or links for this address."""
    since = now - RATE_WINDOW
    recent = select(func.count()).select_from(LoginAttempt).where(LoginAttempt.at >= since)
    if session.execute(recent.where(LoginAttempt.client == client,
                                    LoginAttempt.kind == "link")).scalar_one() \
            >= REQUESTS_PER_CLIENT:
        return True
    if session.execute(recent.where(LoginAttempt.client == client,
                                    LoginAttempt.ok.is_(False),
                                    LoginAttempt.kind != "link")).scalar_one() \
            >= FAILURES_PER_CLIENT:
        return True
    return address is not None and session.execute(recent.where(
        LoginAttempt.address == address, LoginAttempt.kind == "link")).scalar_one() \
        >= LINKS_PER_ADDRESS


def record_attempt(session: Session, *, client: str, address: str | None, kind: str,
                   ok: bool, now: datetime) -> None:
    session.add(LoginAttempt(at=now, client=client[:64], address=address, kind=kind, ok=ok))


def forget_old(session: Session, now: datetime) -> None:
    """Attempts and links past any use."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - KEEP_ATTEMPTS))
    session.execute(delete(LoginLink).where(LoginLink.expires_at < now - KEEP_ATTEMPTS))


# --- the link --------------------------------------------------------------------------------


def request_link(app: App, session: Session, address: str, *, nonce: str, client: str,
                 base_url: str) -> bool:
    """Mail a sign-in link when ``address`` is staff's; True when one was queued."""
    now, address = app.now(), normalise(address)
    forget_old(session, now)
    staff = find_staff(app.settings, session, address)
    record_attempt(session, client=client, address=address, kind="link", ok=staff is not None,
                   now=now)
    if staff is None:
        return False
    token = new_token()
    session.add(LoginLink(token_hash=digest(token), nonce_hash=digest(nonce), address=address,
                          created_at=now, expires_at=now + timedelta(minutes=LINK_MINUTES)))
    name = app.settings.helpline_name
    queue_mail(app.settings, app.renderer, session, Draft(
        kind=OutboxKind.SIGN_IN, template="staff/sign_in",
        context={"link": f"{base_url}/signin/link/{token}", "minutes": LINK_MINUTES,
                 "helpline_name": name},
        to=(Address(address),), subject=f"{name}: your sign-in link",
        auto_submitted="auto-generated",
        record_text="A sign-in link to the staff console (the link is not kept here).",
    ), now=now)
    record_event(session, action="console.link_sent", actor=address, at=now, client=client)
    return True


def redeem_link(session: Session, token: str, nonce: str | None, *, client: str,
                now: datetime) -> str | None:
    """The address a valid link signs in, using it up; None when it is unknown, used,
    expired, or opened in another browser than the one that asked for it."""
    link = session.execute(select(LoginLink).where(
        LoginLink.token_hash == digest(token))).scalar()
    valid = (link is not None and link.used_at is None and link.expires_at > now
             and nonce is not None and hmac.compare_digest(link.nonce_hash, digest(nonce)))
    record_attempt(session, client=client, address=link.address if link else None,
                   kind="token", ok=valid, now=now)
    if not valid or link is None:
        if link is not None:
            record_event(session, action="console.link_refused", actor=link.address, at=now,
                         client=client, reason=_link_problem(link, nonce, now))
        return None
    link.used_at = now
    return link.address


def _link_problem(link: LoginLink, nonce: str | None, now: datetime) -> str:
    if link.used_at is not None:
        return "used already"
    if link.expires_at <= now:
        return "expired"
    return "opened in another browser"


# --- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    """A signed-in browser: its session row and who it is."""

    row: WebSession
    staff: Staff

    @property
    def needs_second_factor(self) -> bool:
        return not self.row.second_factor


def owes_second_factor(settings: Settings, staff: Staff) -> bool:
    return staff.has_second_factor or staff.role in settings.web_totp_roles


def open_session(settings: Settings, session: Session, staff: Staff, *, client: str,
                 now: datetime) -> str:
    """A new session for ``staff``, opened at ``now``; the cookie's value."""
    token = new_token()
    session.add(WebSession(token_hash=digest(token), address=staff.address,
                           csrf_token=new_token(), created_at=now, last_seen_at=now,
                           second_factor=not owes_second_factor(settings, staff)))
    record_event(session, action="console.signed_in", actor=staff.address, at=now,
                 client=client)
    return token


def load_session(settings: Settings, session: Session, token: str | None, *,
                 clock: Clock) -> Visit | None:
    """The live session of this cookie, touched; None (and the row gone) when it timed
    out or its holder is no longer staff."""
    if not token:
        return None
    row = session.execute(select(WebSession).where(
        WebSession.token_hash == digest(token))).scalar()
    if row is None:
        return None
    now = clock()
    staff = find_staff(settings, session, row.address)
    expired = (now - row.last_seen_at > timedelta(minutes=settings.web_idle_minutes)
               or now - row.created_at > timedelta(hours=settings.web_session_hours))
    if expired or staff is None:
        session.delete(row)
        return None
    row.last_seen_at = now
    return Visit(row, staff)


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == digest(token)))


# --- CSRF ------------------------------------------------------------------------------------


def anonymous_csrf(settings: Settings, seed: str) -> str:
    """The form token of a browser not signed in: an HMAC of its random cookie."""
    return hmac.new(settings.secret, f"csrf:{seed}".encode(), "sha256").hexdigest()


def same_token(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


# --- second factor ---------------------------------------------------------------------------


def enrolment_secret(settings: Settings, visit: Visit) -> str:
    """The TOTP secret offered to someone setting up their second factor in this session."""
    raw = hmac.new(settings.secret, f"totp:{visit.row.token_hash}".encode(),
                   "sha256").digest()
    return b32encode(raw[:20]).decode()


def provisioning_uri(settings: Settings, visit: Visit) -> str:
    return pyotp.TOTP(enrolment_secret(settings, visit)).provisioning_uri(
        name=visit.staff.address, issuer_name=settings.helpline_name)


def check_code(settings: Settings, session: Session, visit: Visit, code: str, *,
               client: str, clock: Clock) -> int | None:
    """A code from the authenticator, against the secret kept or the one offered; the
    time step it was made for when it is right, else None. Against the secret kept, a
    code is right once: its step must be newer than the last one accepted
    (:func:`mailroom.web.totp.accept_step`)."""
    address = visit.staff.address
    kept = second_factor_secret(settings, session, address)
    step = matching_step(kept or enrolment_secret(settings, visit), code, clock())
    if step is not None and kept is not None and not accept_step(session, address, step):
        record_event(session, action="console.code_reused", actor=address, at=clock(),
                     client=client)
        step = None
    record_attempt(session, client=client, address=address, kind="totp",
                   ok=step is not None, now=clock())
    if step is not None:
        visit.row.second_factor = True
    return step
