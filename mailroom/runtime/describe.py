"""What ``mailroom check-config`` says the configuration would run, and what to fix.

Like every start, it makes the data directory and the SQLite database private
(:func:`mailroom.runtime.storage.secure_storage`), and its ``permissions`` line says
what it had to tighten.

:func:`config_warnings` lists what a valid configuration still gets wrong in
practice: escalation contacts that are placeholders (the shipped platform
directory's ``example.org`` addresses), no practitioner to tell of new cases,
a database that cannot be reached or is not migrated, an SMTP relay that does
not answer. It connects (the database, the relay's port) but changes nothing:
a SQLite database that does not exist yet is not created.
"""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mailroom.platforms import Platforms
from mailroom.runtime.doors import smtp_tls_context
from mailroom.runtime.storage import secure_storage
from mailroom.sending.transports import SmtpTransport, transport_from_url
from mailroom.settings import Settings
from mailroom.store.db import database_files, make_engine
from mailroom.store.schema import current_revision, head_revision

# Domains reserved for examples (RFC 2606, RFC 6761): mail to them goes nowhere.
PLACEHOLDER_DOMAINS = ("example.org", "example.com", "example.net")
PLACEHOLDER_TLDS = (".example", ".invalid", ".test", ".localhost")
RELAY_TIMEOUT = 5.0  # seconds to wait for the relay's port


def describe_settings(settings: Settings, platforms: Platforms) -> dict[str, Any]:
    """A summary without secrets: passwords and the signing key never appear."""
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    return {
        "config": str(settings.source) if settings.source else "(built-in defaults)",
        "helpline": f"{settings.helpline_name} <{settings.helpline_address}>",
        "accepted domains": ", ".join(settings.domains),
        "database": url,
        "smtp listener": (f"{settings.smtp_host}:{settings.smtp_port}"
                          if settings.smtp_enabled else "off"),
        "smtp tls": _tls(settings),
        "smtp limits": (f"{settings.smtp_max_recipients} recipients per message, "
                        f"{settings.smtp_max_connections_per_client} connections per client, "
                        f"idle timeout {settings.smtp_idle_timeout:g} s"),
        "message limits": (f"{settings.max_attachments} attachments, "
                           f"{settings.max_mime_parts} MIME parts, "
                           f"{settings.max_header_bytes} header bytes"),
        "imap accounts": ", ".join(f"{a.name} ({a.username}@{a.host}:{a.port}/{a.folder})"
                                   for a in settings.imap_accounts) or "none",
        "staff console": _console(settings),
        "outbound": _hide_password(settings.outbound_url),
        "practitioners": ", ".join(settings.practitioners) or "none",
        "team address": settings.team_address or "none",
        "opening hours": _hours(settings),
        "sla notices": _sla_notices(settings),
        "signposting": _signposting(settings),
        "platforms": ", ".join(sorted(platforms)),
        "logs": (f"{settings.log_format} lines to "
                 f"{settings.log_file or 'stderr'}, redacted"),
        "permissions": _permissions(settings),
    }


def _tls(settings: Settings) -> str:
    """STARTTLS as configured; the certificate is loaded, so a bad one is reported here."""
    if smtp_tls_context(settings) is None:
        return "no STARTTLS (no smtp.tls_certificate)"
    required = "required" if settings.smtp_require_starttls else "offered"
    return f"STARTTLS {required}, certificate {settings.smtp_tls_certificate}"


def _console(settings: Settings) -> str:
    if not settings.web_enabled:
        return "off"
    tls = settings.web_tls_cert is not None and settings.web_tls_key is not None
    where = f"{settings.web_host}:{settings.web_port}" + (" (TLS)" if tls else "")
    links = settings.web_base_url or "http://" + f"{settings.web_host}:{settings.web_port}"
    return (f"{where}, sign-in links to {links}, second factor for "
            f"{', '.join(settings.web_totp_roles) or 'nobody'} (secrets encrypted with "
            f"{settings.totp_key_path})")


def _permissions(settings: Settings) -> str:
    """One line: what was tightened, or that it already was private."""
    what = f"{settings.var_dir}/" + (" and the database" if database_files(
        settings.database_url) else "")
    changed = secure_storage(settings)
    if not changed and not settings.var_dir.is_dir():
        return f"{what}: not created yet; mailroom makes them owner only (0700, files 0600)"
    if not changed:
        return f"{what}: owner only (folders 0700, files 0600)"
    return (f"tightened to owner only: {', '.join(map(str, changed))} "
            "(other users could open them until now)")


def _sla_notices(settings: Settings) -> str:
    hours = settings.sla_warn_before_hours
    warning = (f"warning {hours:g} business hour{'s' if hours != 1 else ''} before an answer "
               "is due" if hours else "no warnings")
    copy = (f"breach notices copied to {settings.sla_supervisor}" if settings.sla_supervisor
            else "breach notices to the case's practitioners only (no sla.supervisor)")
    return f"{warning}; {copy}"


def _signposting(settings: Settings) -> str:
    """Whose numbers and services requester mail gives: the countries, and the domains
    mapped to one."""
    sign = settings.signposting
    countries = ", ".join(f"{c} (the default set)" if c == sign.default_country else c
                          for c in sign.known_countries)
    domains = ", ".join(f"{d} -> {c}" for d, c in sorted(sign.domains.items()))
    return f"{countries}; domains: {domains}" if domains else countries


def _hours(settings: Settings) -> str:
    days = ",".join(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[d]
                    for d in sorted(settings.opening_days))
    return (f"{days} {settings.opens:%H:%M}-{settings.closes:%H:%M} {settings.timezone.key}, "
            f"{len(settings.holidays)} holidays")


def _hide_password(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


def config_warnings(settings: Settings, platforms: Platforms) -> list[str]:
    """What to fix before the helpline relies on this configuration; one line each."""
    warnings = [*_placeholder_contacts(platforms)]
    if not settings.practitioners and not settings.team_address:
        warnings.append("practitioners.addresses: none, and no team_address: nobody is told "
                        "of new cases, and nobody can answer one")
    warnings += _database_problems(settings)
    warnings += _relay_problems(settings)
    return warnings


def is_placeholder(address: str) -> bool:
    domain = address.rsplit("@", 1)[-1].lower()
    return any(domain == d or domain.endswith("." + d) for d in PLACEHOLDER_DOMAINS) \
        or domain.endswith(PLACEHOLDER_TLDS)


def _placeholder_contacts(platforms: Platforms) -> list[str]:
    keys = sorted(key for key, platform in platforms.items() if is_placeholder(platform.address))
    if not keys:
        return []
    return [f"platforms: {len(keys)} of {len(platforms)} escalation addresses are placeholders "
            f"({', '.join(keys)}): escalations to them go nowhere; give the "
            "contacts agreed with each platform in a platform directory of your own "
            "(paths.platforms)"]


def database_missing(settings: Settings) -> str | None:
    """A SQLite database that does not exist yet: what to do (nothing here creates it)."""
    files = database_files(settings.database_url)
    if files and not files[0].exists():
        return f"database: {files[0]} does not exist yet: run `mailroom db upgrade`"
    return None


def _database_problems(settings: Settings) -> list[str]:
    missing = database_missing(settings)
    if missing:
        return [missing]
    engine = make_engine(settings.database_url)
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        return [f"database: cannot be reached: {first_line(exc)}"]
    finally:
        engine.dispose()
    if current != head_revision():
        return [f"database: the schema is at {current or 'nothing'}, the code needs "
                f"{head_revision()}: run `mailroom db upgrade`"]
    return []


def _relay_problems(settings: Settings) -> list[str]:
    try:
        transport = transport_from_url(settings.outbound_url)
    except ValueError as exc:
        return [f"outbound.url: {exc}"]
    if not isinstance(transport, SmtpTransport):
        return []
    try:
        with socket.create_connection((transport.host, transport.port), RELAY_TIMEOUT):
            return []
    except OSError as exc:
        return [f"outbound.url: the relay {transport.host}:{transport.port} cannot be reached "
                f"({exc.strerror or exc}): mail waits in the outbox until it can"]


def first_line(exc: Exception) -> str:
    """An error's first line, for a one-line warning."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
