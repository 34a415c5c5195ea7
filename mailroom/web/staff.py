"""Who is staff, and with which role: the configured practitioners, and the users added
with ``mailroom users add`` (rows of ``staff_users``).

A configured practitioner with no row is a practitioner; a row gives a configured
practitioner another role (or holds their second factor). Removing a row of a
configured practitioner leaves them a practitioner: they are taken off in the
configuration. Each role may do what the one before it may
(:class:`~mailroom.vocabulary.StaffRole`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.cases.tickets import record_event
from mailroom.errors import MailroomError
from mailroom.settings import ADDRESS_RE, Settings
from mailroom.store.models import StaffUser
from mailroom.vocabulary import StaffRole
from mailroom.web.totp import is_clear, seal, seal_in_place, unseal

ROLE_ORDER = tuple(StaffRole)


@dataclass(frozen=True)
class Staff:
    """A member of staff as the console knows them."""

    address: str
    role: StaffRole
    configured: bool  # listed in [practitioners]
    has_second_factor: bool

    def may(self, needed: StaffRole) -> bool:
        return ROLE_ORDER.index(self.role) >= ROLE_ORDER.index(needed)


def normalise(address: str) -> str:
    return address.strip().strip("<>").strip().lower()


def find_staff(settings: Settings, session: Session, address: str) -> Staff | None:
    """The member of staff with this address, or None."""
    address = normalise(address)
    row = session.execute(select(StaffUser).where(StaffUser.address == address)).scalar()
    configured = address in settings.practitioners
    if row is None:
        return Staff(address, StaffRole.PRACTITIONER, True, False) if configured else None
    return Staff(address, StaffRole(row.role), configured, bool(row.totp_secret))


def list_staff(settings: Settings, session: Session) -> list[Staff]:
    rows = {row.address: row for row in session.execute(select(StaffUser)).scalars()}
    addresses = sorted({*settings.practitioners, *rows})
    found = (find_staff(settings, session, address) for address in addresses)
    return [staff for staff in found if staff is not None]


def add_user(session: Session, address: str, role: str, *, actor: str, at: datetime) -> Staff:
    """Add a user, or change the role of one; an audit event either way."""
    address = normalise(address)
    if not ADDRESS_RE.match(address):
        raise MailroomError(f"not an email address: {address!r}")
    try:
        chosen = StaffRole(role.lower())
    except ValueError:
        raise MailroomError(f"unknown role {role!r} (one of: {', '.join(StaffRole)})") from None
    row = session.execute(select(StaffUser).where(StaffUser.address == address)).scalar()
    before = row.role if row else None
    if row is None:
        row = StaffUser(address=address, role=chosen, added_at=at, added_by=actor)
        session.add(row)
    row.role = chosen
    session.flush()
    record_event(session, action="staff.added" if before is None else "staff.role",
                 actor=actor, at=at, address=address, before=before, after=chosen)
    return Staff(address, chosen, False, bool(row.totp_secret))


def remove_user(settings: Settings, session: Session, address: str, *, actor: str,
                at: datetime) -> None:
    """Remove a user's row; their sessions end with it (they are no longer staff)."""
    address = normalise(address)
    row = session.execute(select(StaffUser).where(StaffUser.address == address)).scalar()
    if row is None:
        if address in settings.practitioners:
            raise MailroomError(f"{address} is a configured practitioner: take them out of "
                                "[practitioners] addresses in the configuration")
        raise MailroomError(f"{address} is not a user")
    session.delete(row)
    record_event(session, action="staff.removed", actor=actor, at=at, address=address,
                 role=row.role)


def set_second_factor(settings: Settings, session: Session, address: str, secret: str, *,
                      step: int, at: datetime) -> None:
    """Keep the TOTP secret a member of staff confirmed a code from (encrypted:
    :mod:`mailroom.web.totp`), and the step of that code, which is used up."""
    staff = find_staff(settings, session, address)
    if staff is None:
        raise MailroomError(f"{address} is not staff")
    row = session.execute(select(StaffUser).where(StaffUser.address == staff.address)).scalar()
    if row is None:
        row = StaffUser(address=staff.address, role=staff.role, added_at=at,
                        added_by=staff.address)
        session.add(row)
    row.totp_secret = seal(settings, session, secret)
    row.totp_last_step = step
    session.flush()
    record_event(session, action="console.second_factor", actor=staff.address, at=at)


def second_factor_kept(session: Session, address: str) -> bool:
    """Whether this member of staff set up a second factor."""
    return session.execute(select(StaffUser.totp_secret)
                           .where(StaffUser.address == normalise(address))).scalar() is not None


def second_factor_secret(settings: Settings, session: Session, address: str) -> str | None:
    """The TOTP secret this member of staff set up, decrypted; None when they have none.
    One an earlier release kept in the clear is encrypted now."""
    row = session.execute(select(StaffUser)
                          .where(StaffUser.address == normalise(address))).scalar()
    if row is None or row.totp_secret is None:
        return None
    secret = unseal(settings, row.totp_secret)
    if is_clear(row.totp_secret):
        seal_in_place(settings, session, row.id, secret)
    return secret
