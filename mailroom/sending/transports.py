"""Hand a finished message to the outside world: an SMTP relay or a directory.

A transport either returns (the relay said ``250``: the message is its
problem now) or raises one of two errors, which the outbox turns into
"retry later" or "give up":

- ``TemporaryFailure``: the connection could not be made or broke, a timeout,
  a ``4xx`` reply, and every failure while opening the session (greeting,
  EHLO, STARTTLS, AUTH) whatever its code — those are about the relay or our
  settings, not about this message, so retrying after a fix can succeed.
- ``PermanentFailure``: a ``5xx`` reply to ``MAIL FROM``, ``RCPT TO`` (all
  recipients) or ``DATA`` — the relay refuses this message. It carries the
  SMTP ``code`` and ``smtp_message``.

Once the relay has accepted the message nothing is raised any more, not even
when ``QUIT`` fails, so the outbox never sends it twice. When the relay
accepts some recipients and refuses others the message counts as sent; the
refusals are logged.

URLs (``transport_from_url``)::

    file:///absolute/dir        file:relative/dir
    smtp://[user:pass@]host[:port][?starttls=1&timeout=30&local_hostname=name]
    smtps://[user:pass@]host[:port][?timeout=30&local_hostname=name]

A ``file:`` URL is read as RFC 8089 says: ``file:///x`` is the folder ``/x``,
``file://localhost/x`` too, and ``file:x`` a relative folder, taken in
``base_dir`` (the settings make it absolute, in the data directory, before it
gets here); ``file://x/y`` names a host and is refused. User name and password are
percent-decoded. Default ports: 25 (``smtp``), 587 (``smtp`` with
``starttls=1``), 465 (``smtps``).
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from mailroom.errors import MailroomError
from mailroom.private import make_private_dir

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "tls"]
SECURITY_CHOICES: tuple[Security, ...] = ("none", "starttls", "tls")
DEFAULT_TIMEOUT = 30.0
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_UNSAFE_FILENAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


class TransportError(MailroomError):
    """A message could not be handed over; see the two subclasses."""

    def __init__(self, message: str, *, code: int | None = None, smtp_message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.smtp_message = smtp_message


class TemporaryFailure(TransportError):
    """Try again later: connection trouble, a timeout, a 4xx reply, a session problem."""


class PermanentFailure(TransportError):
    """The relay refused this message with a 5xx reply; retrying will not help."""


class Transport(Protocol):
    """Something that delivers a message to the envelope recipients or raises."""

    def send(self, msg: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> None: ...


# -- file --------------------------------------------------------------------


class FileTransport:
    """Writes each message as ``<UTC time>-<Message-ID>.eml`` into ``directory``.

    The envelope is recorded in two headers put before the message's own,
    ``X-Mailroom-Mail-From`` and ``X-Mailroom-Rcpt-To``. Lines end in LF, as
    usual for files on disk. Files appear atomically (written to a temporary
    name, then renamed) with mode 0600; the folder, when it has to be made, is
    0700 (:mod:`mailroom.private`).
    """

    def __init__(self, directory: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.directory = Path(directory)
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return f"FileTransport({str(self.directory)!r})"

    def send(self, msg: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> None:
        _check_envelope(mail_from, rcpt_to)
        body = msg.as_bytes(policy=msg.policy.clone(linesep="\n"))
        data = _envelope_lines(mail_from, rcpt_to) + body
        try:
            make_private_dir(self.directory)
            _write_atomically(self.directory / self._filename(msg), data)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write to {self.directory}: {exc}") from exc

    def _filename(self, msg: EmailMessage) -> str:
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        message_id = str(msg.get("Message-ID", "")).strip().strip("<>")
        safe = _UNSAFE_FILENAME_RE.sub("_", message_id).strip("._")[:120] or "no-message-id"
        return f"{stamp}-{safe}.eml"


def _envelope_lines(mail_from: str, rcpt_to: Sequence[str]) -> bytes:
    lines = f"X-Mailroom-Mail-From: <{mail_from}>\nX-Mailroom-Rcpt-To: {', '.join(rcpt_to)}\n"
    return lines.encode("utf-8")


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- SMTP --------------------------------------------------------------------


class SmtpTransport:
    """Sends through an SMTP relay with ``smtplib``, one connection per message."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in SECURITY_CHOICES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_CHOICES)}")
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password or ""
        self.timeout = timeout
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context

    def __repr__(self) -> str:  # never shows the password
        user = f", username={self.username!r}" if self.username else ""
        return f"SmtpTransport({self.host!r}, {self.port}, security={self.security!r}{user})"

    def send(self, msg: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> None:
        _check_envelope(mail_from, rcpt_to)
        smtp = self._open()
        try:
            refused = self._transfer(smtp, msg, mail_from, rcpt_to)
        finally:
            _close_quietly(smtp)
        if refused:
            log.warning("relay %s refused some recipients: %s", self.host, _describe(refused))

    def _open(self) -> smtplib.SMTP:
        """Connect, secure and log in; any failure here is temporary."""
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        try:
            if self.security == "starttls":
                smtp.starttls(context=self._context())
            if self.username:
                smtp.login(self.username, self._password)
        except (OSError, smtplib.SMTPException) as exc:
            _close_quietly(smtp)
            code, text = _code_and_text(exc)
            raise TemporaryFailure(
                f"session with {self.host}:{self.port} failed: {exc}", code=code, smtp_message=text
            ) from exc
        return smtp

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
        )

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _transfer(
        self, smtp: smtplib.SMTP, msg: EmailMessage, mail_from: str, rcpt_to: Sequence[str]
    ) -> dict[str, tuple[int, bytes]]:
        """MAIL, RCPT, DATA; the relay's answer decides the kind of failure."""
        try:
            return smtp.send_message(msg, from_addr=mail_from, to_addrs=list(rcpt_to))
        except smtplib.SMTPRecipientsRefused as exc:
            raise _recipients_failure(exc.recipients) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data error
            text = _decode(exc.smtp_error)
            raise _failure_for_code(exc.smtp_code, text, "relay refused the message") from exc
        except smtplib.SMTPNotSupportedError as exc:  # e.g. SMTPUTF8 needed, not offered
            raise PermanentFailure(f"relay cannot take this message: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:  # disconnected, timeout
            raise TemporaryFailure(f"sending to {self.host}:{self.port} failed: {exc}") from exc


def _failure_for_code(code: int, text: str, what: str) -> TransportError:
    kind = PermanentFailure if 500 <= code <= 599 else TemporaryFailure
    return kind(f"{what}: {code} {text}".strip(), code=code, smtp_message=text)


def _recipients_failure(recipients: dict[str, tuple[int, bytes]]) -> TransportError:
    """All recipients refused: permanent only when every refusal was a 5xx."""
    codes = [code for code, _ in recipients.values()]
    worst = max(codes, default=0) if all(c >= 500 for c in codes) else min(codes, default=0)
    text = _describe(recipients)
    return _failure_for_code(worst, text, "relay refused every recipient")


def _describe(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{addr}: {code} {_decode(text)}" for addr, (code, text) in recipients.items())


def _code_and_text(exc: BaseException) -> tuple[int | None, str]:
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code, _decode(exc.smtp_error)
    return None, ""


def _decode(text: bytes | str) -> str:
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return " ".join(raw.split())


def _close_quietly(smtp: smtplib.SMTP) -> None:
    """QUIT, ignoring every error: the outcome of the transfer is already known."""
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _check_envelope(mail_from: str, rcpt_to: Sequence[str]) -> None:
    if isinstance(rcpt_to, str) or not rcpt_to:
        raise ValueError("rcpt_to must be a non-empty sequence of addresses")
    for addr in (mail_from, *rcpt_to):
        if any(ch.isspace() or ord(ch) < 32 or ch in "<>" for ch in addr):
            raise ValueError(f"invalid envelope address: {addr!r}")
    if any(not addr for addr in rcpt_to):
        raise ValueError("an envelope recipient must not be empty")


# -- URLs ----------------------------------------------------------------------


def transport_from_url(
    url: str, *, base_dir: Path | None = None, ssl_context: ssl.SSLContext | None = None
) -> FileTransport | SmtpTransport:
    """Build a transport from ``file:…``, ``smtp://…`` or ``smtps://…``.

    A relative ``file:`` path is taken relative to ``base_dir`` (default:
    the working directory). Raises ValueError with a one-line message that
    never contains the password.
    """
    scheme = url.partition(":")[0].lower()
    if scheme == "file":
        return _file_transport(url, base_dir)
    if scheme in {"smtp", "smtps"}:
        return _smtp_transport(url, ssl_context)
    raise ValueError(
        f"outbound URL {_redact(url)!r}: unsupported scheme {scheme!r} "
        "(use file:, smtp:// or smtps://)"
    )


def _file_transport(url: str, base_dir: Path | None) -> FileTransport:
    rest = url[len("file:") :]
    if rest.startswith("//"):
        host, slash, tail = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ValueError(f"outbound URL {url!r} names the host {host!r}: "
                             "use file:///ABSOLUTE/DIR or file:RELATIVE/DIR")
        rest = slash + tail
    if "?" in rest or "#" in rest:
        raise ValueError(f"outbound URL {url!r}: a file URL takes no query or fragment")
    if not rest:
        raise ValueError(f"outbound URL {url!r}: the directory is missing")
    path = Path(unquote(rest))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return FileTransport(path)


def _smtp_transport(url: str, ssl_context: ssl.SSLContext | None) -> SmtpTransport:
    where = _redact(url)
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"outbound URL {where!r}: the host is missing")
    if parts.path not in {"", "/"} or parts.fragment:
        raise ValueError(f"outbound URL {where!r}: unexpected path or fragment")
    options = _smtp_options(parts.query, where)
    implicit = parts.scheme.lower() == "smtps"
    if implicit and options.starttls:
        raise ValueError(f"outbound URL {where!r}: smtps:// is already TLS, drop starttls")
    security: Security = "tls" if implicit else ("starttls" if options.starttls else "none")
    return SmtpTransport(
        parts.hostname,
        _port(parts, security, where),
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=options.timeout,
        local_hostname=options.local_hostname,
        ssl_context=ssl_context,
    )


def _port(parts: SplitResult, security: Security, where: str) -> int:
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"outbound URL {where!r}: bad port ({exc})") from None
    if port is not None:
        return int(port)
    return {"none": 25, "starttls": 587, "tls": 465}[security]


@dataclass(frozen=True)
class _SmtpOptions:
    """The query part of an ``smtp://`` URL."""

    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT
    local_hostname: str | None = None


def _smtp_options(query: str, where: str) -> _SmtpOptions:
    options = _SmtpOptions()
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "starttls":
            options = replace(options, starttls=_flag(value, where))
        elif key == "timeout":
            options = replace(options, timeout=_seconds(value, where))
        elif key == "local_hostname":
            options = replace(options, local_hostname=value or None)
        else:
            raise ValueError(f"outbound URL {where!r}: unknown option {key!r}")
    return options


def _flag(value: str, where: str) -> bool:
    if value.lower() not in _TRUE | _FALSE:
        raise ValueError(f"outbound URL {where!r}: starttls must be 1 or 0, got {value!r}")
    return value.lower() in _TRUE


def _seconds(value: str, where: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ValueError(f"outbound URL {where!r}: timeout must be seconds, got {value!r}")
    return seconds


def _redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:?#]*):[^/@?#]*@", r"\1:***@", url)
