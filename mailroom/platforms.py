"""The platform directory: who to escalate to, and which URLs belong to whom.

``mailroom/data/platforms.toml`` holds one ``[platforms.<key>]`` table per platform.
``load_platforms`` takes the parsed TOML (a dict, so this module never reads
files) and returns the platforms plus one line per problem, each naming the key
(``platforms.tiktok.follow_up_days: expected a positive integer, got "x"``), so
the operator sees every mistake at once. The platform's case number is read from
its replies by :func:`mailroom.cases.escalations.find_platform_ref`.

Keys of a platform table:

==================  ========  ==================================================
name                required  display name ("TikTok")
address             required  escalation (trust-and-safety) address
domains             required  host names whose URLs belong to the platform; a
                              domain covers its subdomains (``tiktok.com`` covers
                              ``vm.tiktok.com``), never look-alikes
                              (``notfacebook.com``)
follow_up_days      5         business days without an answer before a follow-up
max_follow_ups      2         follow-ups before the escalation is ``no_response``
case_ref_pattern    ""        regex for the platform's own case number in its
                              replies; group ``ref`` (or group 1) is the number
template            key       escalation template: templates/escalation/<t>.txt.j2
==================  ========  ==================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Platform", "Platforms", "load_platforms"]

KEY = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
TEMPLATE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

DEFAULTS: dict[str, Any] = {
    "follow_up_days": 5,
    "max_follow_ups": 2,
    "case_ref_pattern": "",
}
REQUIRED = ("name", "address", "domains")


@dataclass(frozen=True)
class Platform:
    """One platform of the directory (see the module docstring for the fields)."""

    key: str
    name: str
    address: str
    domains: tuple[str, ...]
    follow_up_days: int
    max_follow_ups: int
    case_ref_pattern: str
    template: str


Platforms = Mapping[str, Platform]  # the directory, by key: what a function reads of it


def load_platforms(data: dict[str, Any]) -> tuple[dict[str, Platform], list[str]]:
    """Validate a parsed platforms.toml: (platforms by key, problems, one line each)."""
    problems = [f"{key}: unknown key" for key in data if key != "platforms"]
    tables = data.get("platforms", {})
    if not isinstance(tables, dict):
        return {}, [*problems, f"platforms: expected a table, got {_show(tables)}"]
    platforms: dict[str, Platform] = {}
    for key, table in tables.items():
        platform = _load_one(key, table, problems)
        if platform is not None:
            platforms[key] = platform
    problems.extend(_shared_domains(platforms))
    return platforms, problems


# --------------------------------------------------------------------------
# One platform
# --------------------------------------------------------------------------


def _load_one(key: str, table: object, problems: list[str]) -> Platform | None:
    where = f"platforms.{key}"
    if not KEY.match(key):
        problems.append(f"{where}: key must be lower-case letters, digits, '-' or '_'")
        return None
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table, got {_show(table)}")
        return None
    before = len(problems)
    problems.extend(f"{where}.{name}: unknown key" for name in table if name not in CHECKS)
    problems.extend(f"{where}.{name}: missing" for name in REQUIRED if name not in table)
    values = {**DEFAULTS, "template": key, **table}
    for name, check in CHECKS.items():
        if name in values:
            problem = check(values[name])
            if problem:
                problems.append(f"{where}.{name}: {problem}, got {_show(values[name])}")
    if len(problems) > before:
        return None
    return Platform(
        key=key,
        name=values["name"].strip(),
        address=values["address"].strip(),
        domains=tuple(_normal_domain(domain) for domain in values["domains"]),
        follow_up_days=values["follow_up_days"],
        max_follow_ups=values["max_follow_ups"],
        case_ref_pattern=values["case_ref_pattern"],
        template=values["template"],
    )


def _check_name(value: object) -> str | None:
    return None if isinstance(value, str) and value.strip() else "expected a non-empty string"


def _check_address(value: object) -> str | None:
    if isinstance(value, str) and ADDRESS.match(value.strip()):
        return None
    return "expected an email address like trust-safety@example.org"


def _check_domains(value: object) -> str | None:
    if not isinstance(value, list) or not value:
        return "expected a non-empty list of domain names"
    bad = [item for item in value if not (isinstance(item, str) and _is_domain(item))]
    if bad:
        return f"not a domain name: {_show(bad[0])} (write 'tiktok.com', no scheme or path)"
    return None


def _check_positive(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return None if ok else "expected a positive integer"


def _check_count(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else "expected a whole number, 0 or more"


def _check_pattern(value: object) -> str | None:
    if not isinstance(value, str):
        return "expected a regular expression as a string"
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression ({exc})"
    return None


def _check_template(value: object) -> str | None:
    if isinstance(value, str) and TEMPLATE.match(value):
        return None
    return "expected a template name (lower-case letters, digits, '-' or '_')"


CHECKS: dict[str, Callable[[object], str | None]] = {
    "name": _check_name,
    "address": _check_address,
    "domains": _check_domains,
    "follow_up_days": _check_positive,
    "max_follow_ups": _check_count,
    "case_ref_pattern": _check_pattern,
    "template": _check_template,
}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _shared_domains(platforms: dict[str, Platform]) -> list[str]:
    """A domain listed by two platforms would make URL matching ambiguous."""
    owner: dict[str, str] = {}
    problems = []
    for key, platform in platforms.items():
        for domain in platform.domains:
            if domain in owner and owner[domain] != key:
                problems.append(
                    f"platforms.{key}.domains: {_show(domain)} is also listed by "
                    f"platforms.{owner[domain]}"
                )
            owner.setdefault(domain, key)
    return problems


def _is_domain(value: str) -> bool:
    return bool(DOMAIN.match(_normal_domain(value)))


def _normal_domain(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


def _show(value: object) -> str:
    """A value as the operator wrote it in TOML, more or less."""
    if isinstance(value, dict):
        return "a table"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
