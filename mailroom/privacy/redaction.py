"""One filter for every log line: no reply-token MACs, and nobody's address at INFO and up.

Log files travel further than the database: to a log collector, into a
support ticket, onto a screen share. So :class:`RedactionFilter`, which
:func:`mailroom.cli.logs.setup_logging` puts on the handler it installs, rewrites
each line before it is written:

- the MAC of anything shaped like a signed reply address is always hidden
  (``helpline+p-t12-…@helpline.example``, :func:`mailroom.addresses.redact_tokens`):
  with it anyone could write as a practitioner;
- in lines at INFO and above every email address except the helpline's own
  loses its local part and keeps its domain (``…@school.example``): enough to
  tell a school's mail from a platform's, not enough to name the teacher.
  DEBUG lines keep addresses, for troubleshooting: an admin who logs at DEBUG
  chooses to have them (``--debug``, ``MAILROOM_LOG_LEVEL=DEBUG``).

The helpline's own addresses are its address on each accepted domain (and
their sub-addresses), the team address and the IMAP mailboxes it polls.
Message-IDs look like addresses and are shortened the same way.

The filter works on the finished line: the message with its arguments put
in (whatever their types), the exception text and the stack, so an address
inside an exception's message or a list of recipients is caught too. It
changes the record itself (``msg``, ``args``, ``exc_text``): a handler after
it sees the redacted line too, and applying it twice changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from mailroom.addresses import redact_tokens
from mailroom.settings import Settings

__all__ = ["RedactionFilter", "own_addresses", "redact_line"]

HIDDEN = "…"
# Local part "@" domain. The local part may hold "…" (a token already redacted is
# still one address) and "'" (o'brien@), but starts after a quote or "=", so that
# 'jo@x' and to=jo@x keep their quote and key; the domain ends before a full stop.
_ADDRESS_RE = re.compile(
    r"(?<![\w.!#$%&*+/?^{|}~…-])([\w!#$%&*+/?^{|}~…-][\w.!#$%&'*+/?^`{|}~…-]*)"
    r"@([\w-]+(?:\.[\w-]+)*)")
_FORMATTER = logging.Formatter()


def own_addresses(settings: Settings) -> frozenset[str]:
    """The helpline's own addresses, which log lines keep."""
    local = settings.local_part
    found = {f"{local}@{domain}" for domain in settings.domains}
    found.add(settings.helpline_address)
    if settings.team_address:
        found.add(settings.team_address)
    found |= {a.username for a in settings.imap_accounts if "@" in a.username}
    return frozenset(a.lower() for a in found)


def redact_line(text: str, *, own: Iterable[str] = (), addresses: bool = True) -> str:
    """``text`` with reply-token MACs hidden and, with ``addresses``, every address
    but ``own`` reduced to its domain."""
    text = redact_tokens(text)
    if not addresses or "@" not in text:
        return text
    keep = frozenset(own)

    def hide(match: re.Match[str]) -> str:
        local, domain = match.group(1), match.group(2)
        base = local.split("+", 1)[0]
        if f"{local}@{domain}".lower() in keep or f"{base}@{domain}".lower() in keep:
            return match.group(0)
        return f"{HIDDEN}@{domain}"

    return _ADDRESS_RE.sub(hide, text)


class RedactionFilter(logging.Filter):
    """Rewrites each record's message, exception text and stack (see the module)."""

    def __init__(self, own: Iterable[str] = ()) -> None:
        super().__init__()
        self.own = frozenset(a.lower() for a in own)

    def filter(self, record: logging.LogRecord) -> bool:
        hide = record.levelno >= logging.INFO
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format: logging reports it, with no args
            message, record.args = str(record.msg), ()
        record.msg, record.args = self._redact(message, hide), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text, hide)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info, hide)
        return True

    def _redact(self, text: str, hide: bool) -> str:
        return redact_line(text, own=self.own, addresses=hide)
