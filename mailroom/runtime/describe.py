"""What ``mailroom check-config`` says the configuration would run.

Like every start, it makes ``var/`` and the SQLite database private
(:func:`mailroom.runtime.storage.secure_storage`), and its ``permissions`` line says
what it had to tighten.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url

from mailroom.platforms import Platform
from mailroom.runtime.storage import secure_storage
from mailroom.settings import Settings
from mailroom.store.db import database_files


def describe_settings(settings: Settings, platforms: dict[str, Platform]) -> dict[str, Any]:
    """A summary without secrets: passwords and the signing key never appear."""
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    return {
        "config": str(settings.source) if settings.source else "(built-in defaults)",
        "helpline": f"{settings.helpline_name} <{settings.helpline_address}>",
        "accepted domains": ", ".join(settings.domains),
        "database": url,
        "smtp listener": (f"{settings.smtp_host}:{settings.smtp_port}"
                          if settings.smtp_enabled else "off"),
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
        "platforms": ", ".join(sorted(platforms)),
        "permissions": _permissions(settings),
    }


def _console(settings: Settings) -> str:
    if not settings.web_enabled:
        return "off"
    tls = settings.web_tls_cert is not None and settings.web_tls_key is not None
    where = f"{settings.web_host}:{settings.web_port}" + (" (TLS)" if tls else "")
    links = settings.web_base_url or "http://" + f"{settings.web_host}:{settings.web_port}"
    return (f"{where}, sign-in links to {links}, second factor for "
            f"{', '.join(settings.web_totp_roles) or 'nobody'}")


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
