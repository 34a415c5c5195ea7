"""What ``mailroom check-config`` says the configuration would run."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url

from mailroom.platforms import Platform
from mailroom.settings import Settings


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
        "outbound": _hide_password(settings.outbound_url),
        "practitioners": ", ".join(settings.practitioners) or "none",
        "team address": settings.team_address or "none",
        "opening hours": _hours(settings),
        "platforms": ", ".join(sorted(platforms)),
    }


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
