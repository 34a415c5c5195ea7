"""The second factor's secrets: each code accepted once, each secret encrypted at rest.

- **Once.** A TOTP code (RFC 6238: six digits, 30-second steps) is right for the
  step it was made for, with one step either side for a phone's clock. It is
  accepted only when that step is newer than the last one accepted for the same
  person (``staff_users.totp_last_step``), so a code seen over a shoulder or in a
  proxy's log cannot be used again, not even within its window (RFC 6238, 5.2).
  The step is written with one conditional ``UPDATE`` (:func:`accept_step`): of
  two requests racing with the same code, one wins.
- **Encrypted.** A secret is kept in ``staff_users.totp_secret`` as a Fernet token
  (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a key that is not
  in the database: the file ``security.totp_key_file`` (``totp.key`` in the data
  directory), made 0600 the first time a secret is kept (never while secrets
  encrypted with another key are in the database). Someone who reads the
  database alone (a dump, a replica, a copy of the database file) cannot make codes.
- **Secrets kept in the clear** by earlier releases are encrypted when the console
  starts (:func:`seal_clear_secrets`, from :class:`mailroom.web.server.ConsoleServer`)
  and, should one still be there, when it is first read. Not by the migration:
  the key belongs in the data directory of the processes that serve the console,
  and ``mailroom db upgrade`` may run as another user, with another data
  directory or on another machine; a key it made there would be unreadable or
  missing where it is needed.
- **A wrong key file** (not a key, or not the one the secrets were encrypted with,
  or missing while encrypted secrets exist) is :class:`TotpKeyError`: one line
  naming the file. The console does not start with it; a sign-in that meets it is
  refused with a page saying the second factor cannot be checked, and the line is
  logged.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from datetime import datetime
from pathlib import Path

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mailroom.errors import ConfigError, MailroomError
from mailroom.private import create_private_file, make_private_dir
from mailroom.settings import Settings
from mailroom.store.db import unavailable_as_store_error
from mailroom.store.models import StaffUser

log = logging.getLogger("mailroom.web")

WINDOW = 1  # steps either side of now that a code may be from (a phone's clock)
_CLEAR = re.compile(r"[A-Z2-7]+=*")  # a base32 secret, as earlier releases kept it


class TotpKeyError(MailroomError):
    """The key file of the TOTP secrets cannot be used: one line, naming the file."""


# --- codes -----------------------------------------------------------------------------------


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step ``code`` was made for, within :data:`WINDOW` of ``now``; None when
    it is not a right code."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    steps = [step for step in range(current - WINDOW, current + WINDOW + 1)
             if hmac.compare_digest(totp.generate_otp(step), code)]
    return max(steps) if steps else None


def accept_step(session: Session, address: str, step: int) -> bool:
    """Record ``step`` as the last accepted for ``address``; False when it is not newer
    than the last one (the code, or an older one, was used already)."""
    done = session.connection().execute(
        update(StaffUser)
        .where(StaffUser.address == address,
               or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
        .values(totp_last_step=step))
    return done.rowcount == 1


# --- the key ---------------------------------------------------------------------------------


def load_key(path: Path, *, create: bool) -> Fernet | None:
    """The key in ``path``; a new one when there is none and ``create``, else None."""
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        return _create_key(path) if create else None
    except OSError as exc:
        raise TotpKeyError(f"security.totp_key_file: cannot read {path} ({exc.strerror})"
                           ) from None
    try:
        return Fernet(data)
    except ValueError:
        raise TotpKeyError(f"security.totp_key_file: {path} does not hold a key (44 "
                           "characters of URL-safe base64, as mailroom writes it)") from None


def _create_key(path: Path) -> Fernet:
    """A new key in a new file, 0600 whatever the umask (:mod:`mailroom.private`)."""
    try:
        make_private_dir(path.parent)
        fd = create_private_file(path)
    except FileExistsError:  # made meanwhile by another process: use theirs
        key = load_key(path, create=False)
        assert key is not None
        return key
    except OSError as exc:
        raise TotpKeyError(f"security.totp_key_file: cannot create {path} ({exc.strerror})"
                           ) from None
    value = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value + b"\n")
    log.info("made the key of the second-factor secrets: %s", path)
    return Fernet(value)


def _wrong_key(path: Path) -> TotpKeyError:
    return TotpKeyError(
        f"security.totp_key_file: {path} is not the key the second-factor secrets in the "
        "database were encrypted with: put back the key file kept with the database's "
        "backup, or remove and add again the users who set up a second factor")


def _missing_key(path: Path) -> TotpKeyError:
    return TotpKeyError(
        f"security.totp_key_file: {path} is missing, and the database holds second-factor "
        "secrets encrypted with it: put back the key file kept with the database's backup")


# --- secrets ---------------------------------------------------------------------------------


def is_clear(stored: str) -> bool:
    """A secret kept as it is (base32), as releases before the encryption kept them."""
    return _CLEAR.fullmatch(stored) is not None


def seal(settings: Settings, session: Session, secret: str) -> str:
    """``secret`` as it is kept in the database: encrypted with the key file's key. The
    key is made when there is none, unless the database holds secrets encrypted
    already (with a key this process does not have: another one must not join them)."""
    path = settings.totp_key_path
    key = load_key(path, create=False)
    if key is None:
        stored = session.execute(select(StaffUser.totp_secret).where(
            StaffUser.totp_secret.is_not(None))).scalars().all()
        if any(value is not None and not is_clear(value) for value in stored):
            raise _missing_key(path)
        key = load_key(path, create=True)
    assert key is not None
    return key.encrypt(secret.encode()).decode()


def unseal(settings: Settings, stored: str) -> str:
    """The secret ``stored`` holds (a clear one as it is)."""
    if is_clear(stored):
        return stored
    path = settings.totp_key_path
    key = load_key(path, create=False)
    if key is None:
        raise _missing_key(path)
    try:
        return key.decrypt(stored.encode()).decode()
    except InvalidToken:
        raise _wrong_key(path) from None


def seal_in_place(settings: Settings, session: Session, row_id: int, clear: str) -> None:
    """Encrypt the clear secret of a ``staff_users`` row, unless another process did
    meanwhile (then its token stays: two keys must not share the column)."""
    session.execute(update(StaffUser)
                    .where(StaffUser.id == row_id, StaffUser.totp_secret == clear)
                    .values(totp_secret=seal(settings, session, clear)))


def seal_clear_secrets(settings: Settings, sessions: sessionmaker[Session]) -> int:
    """At the console's start: check that the key opens every secret kept, and encrypt
    those kept in the clear. Returns how many were encrypted. A wrong key file is a
    :class:`~mailroom.errors.ConfigError` (one line); a database out of reach (or not
    upgraded yet) leaves the work to the first read."""
    try:
        with unavailable_as_store_error(), sessions.begin() as session:
            kept = session.execute(select(StaffUser.id, StaffUser.totp_secret).where(
                StaffUser.totp_secret.is_not(None))).all()
            for _, stored in kept:
                if stored is not None and not is_clear(stored):
                    unseal(settings, stored)
            clear = [(row_id, stored) for row_id, stored in kept
                     if stored is not None and is_clear(stored)]
            for row_id, stored in clear:
                seal_in_place(settings, session, row_id, stored)
    except TotpKeyError as exc:
        raise ConfigError([str(exc)]) from None
    except (MailroomError, SQLAlchemyError) as exc:  # StoreUnavailable, a missing table
        log.warning("second-factor secrets not checked at start: %s",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return 0
    if clear:
        log.info("encrypted %d second-factor secret(s) kept in the clear", len(clear))
    return len(clear)
