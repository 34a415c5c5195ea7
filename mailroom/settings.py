"""Load and validate the configuration into one frozen object.

The TOML file is read once; every key in the contract table of SPEC section 2
can be overridden by its environment variable. Validation collects every
problem as one line naming the key (``helpline.opens: expected HH:MM, got
"10h"``) and raises :class:`ConfigError` with all of them, so a user fixes the
file in one go. Nothing here reads the database or opens a socket.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url

from mailroom.errors import ConfigError
from mailroom.private import create_private_file, make_private_dir
from mailroom.resources import PLATFORMS, TEMPLATES, shipped_path

CONFIG_NAME = "mailroom.toml"  # read from the data directory when no other file is named
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ADDRESS_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")

# Environment variables of the contract (SPEC section 2) -> (section, key).
ENV_KEYS: dict[str, tuple[str, str]] = {
    "MAILROOM_DATABASE_URL": ("database", "url"),
    "MAILROOM_HELPLINE_ADDRESS": ("helpline", "address"),
    "MAILROOM_OUTBOUND_URL": ("outbound", "url"),
    "MAILROOM_SMTP_LISTEN": ("smtp", "listen"),
    "MAILROOM_WEB_LISTEN": ("web", "listen"),
    "MAILROOM_PRACTITIONERS": ("practitioners", "addresses"),
    "MAILROOM_PLATFORMS": ("paths", "platforms"),
    "MAILROOM_SECRET": ("security", "secret"),
    "MAILROOM_HOME": ("paths", "var_dir"),
}


@dataclass(frozen=True)
class ImapAccount:
    """One mailbox polled by the IMAP door."""

    name: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    security: str = "tls"  # "tls" (implicit), "starttls" or "none"
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    idle: bool = True
    poll_interval: float = 60.0
    batch_size: int = 50


@dataclass(frozen=True)
class Service:
    """A service the signposting mail names: who, and how to reach them."""

    name: str
    url: str | None = None
    phone: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Signposting:
    """One country's numbers and services, as the requester mail names them: configuration
    (``[signposting]`` and ``[signposting.countries.XX]``), so that a helpline outside the
    UK, or serving several countries, gives each requester their own."""

    country: str  # ISO 3166 alpha-2, e.g. "GB", "IE"
    emergency_number: str
    police_number: str
    hotlines: tuple[Service, ...]  # where to report child sexual abuse images
    takedown: tuple[Service, ...]  # getting one's own (or a pupil's) images taken down
    police_report: tuple[Service, ...]  # reporting child sexual exploitation online
    support: tuple[Service, ...]  # someone to talk to

    def as_context(self) -> dict[str, Any]:
        """For the templates: plain values (``signposting.country``,
        ``signposting.emergency_number``, …)."""
        return asdict(self)


@dataclass(frozen=True)
class SignpostingByCountry:
    """``[signposting]``: the default set (the country ``default_country``), each
    configured country's own set (a key it leaves out is the default set's), and which
    requester domains belong to which country.

    A case's country is chosen when it opens, from the requester's address
    (:meth:`country_of`); its mail uses that country's set (:meth:`for_country`)."""

    default: Signposting
    countries: dict[str, Signposting] = field(default_factory=dict)  # besides the default
    domains: dict[str, str] = field(default_factory=dict)  # "example.ie" -> "IE"

    @property
    def default_country(self) -> str:
        return self.default.country

    @property
    def known_countries(self) -> tuple[str, ...]:
        """Every country with a set: the default one and the configured ones, sorted."""
        return tuple(sorted({self.default.country, *self.countries}))

    def for_country(self, country: str | None) -> Signposting:
        """The set of ``country``; the default set for a case without a country, or whose
        country is no longer configured."""
        if country is not None and country in self.countries:
            return self.countries[country]
        return self.default

    def country_of(self, address: str | None) -> str:
        """The country of a requester's address: its domain (or a parent domain) in
        ``domains``, else its country-code top-level domain when that country has a set
        (``.ie`` -> IE, ``.uk`` -> GB), else the default country."""
        domain = ascii_domain((address or "").rsplit("@", 1)[-1])
        labels = domain.split(".") if "@" in (address or "") and domain else []
        for start in range(len(labels)):
            country = self.domains.get(".".join(labels[start:]))
            if country is not None:
                return country
        if labels:
            tld = labels[-1]
            country = CCTLD_COUNTRIES.get(tld, tld.upper())
            if country in self.known_countries:
                return country
        return self.default.country


def ascii_domain(domain: str) -> str:
    """A domain as its ASCII form, lower case, without a final dot: ``Schüle.DE`` ->
    ``xn--schle-kva.de``, so that both spellings of one domain match (as is, when it
    has no ASCII form)."""
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


@dataclass(frozen=True)
class StatusLimits:
    """When ``mailroom status`` says something needs an admin (``[status]``)."""

    outbox_max_queued: int = 100  # unsent messages
    outbox_max_wait_minutes: int = 30  # the oldest unsent message's wait
    inbox_max_wait_minutes: int = 15  # the oldest message not processed yet
    failed_window_hours: int = 24  # bad and shunt messages counted over this window
    max_recent_bad: int = 10
    max_recent_shunt: int = 0
    imap_max_silence_minutes: int = 15  # since an account's last successful poll
    job_grace_minutes: int = 15  # a job is late after its interval and this
    disk_min_free_mb: int = 1024  # free space where the data directory is


@dataclass(frozen=True)
class Settings:
    """Everything mailroom is configured with. Built only by :func:`load_settings`."""

    helpline_name: str
    helpline_address: str
    domains: tuple[str, ...]
    subject_tag: str
    reference_prefix: str
    timezone: ZoneInfo
    opening_days: frozenset[int]
    opens: time
    closes: time
    holidays: frozenset[date]
    database_url: str
    smtp_enabled: bool
    smtp_host: str
    smtp_port: int
    smtp_max_size: int
    imap_accounts: tuple[ImapAccount, ...]
    outbound_url: str
    outbound_max_attempts: int
    outbound_retry_seconds: int
    practitioners: tuple[str, ...]
    team_address: str | None
    require_authentication: bool
    practitioner_link_days: int
    ack_window_minutes: int
    ack_per_window: int
    ack_per_day: int
    ack_same_content_per_window: int
    ack_same_content_window_minutes: int
    ack_reply_grace_seconds: int
    ack_max_age_days_on_import: int
    sla_first_response_hours: float
    retention_closed_months: int
    secret: bytes = field(repr=False)
    trusted_authserv_ids: tuple[str, ...]
    var_dir: Path
    platforms_path: Path
    template_dirs: tuple[Path, ...]  # searched in order: the configured folder, the shipped one
    attachments_dir: Path
    illegal_keywords: tuple[str, ...]
    sextortion_keywords: tuple[str, ...]
    store_illegal_attachments: bool
    max_attachment_size: int
    categories: tuple[str, ...]
    roles: tuple[str, ...]
    signposting: SignpostingByCountry
    source: Path | None = None
    smtp_max_recipients: int = 50
    smtp_max_connections_per_client: int = 10
    smtp_idle_timeout: float = 60.0
    digest_enabled: bool = True
    sla_next_response_hours: float = 16.0
    sla_priority_hours: dict[str, float] = field(default_factory=dict)  # other than normal
    sla_category_priorities: dict[str, str] = field(default_factory=dict)
    sla_chase_closed_cases: bool = False
    sla_warn_before_hours: float = 1.0  # 0: no warnings before a breach
    sla_supervisor: str | None = None  # copied on every breach notice
    max_attachments: int = 100
    max_mime_parts: int = 1000
    max_header_bytes: int = 256 * 1024
    status_limits: StatusLimits = field(default_factory=StatusLimits)
    smtp_tls_certificate: Path | None = None
    smtp_tls_key: Path | None = None
    smtp_require_starttls: bool = False
    log_format: str = "text"
    log_file: Path | None = None
    secret_file: Path | None = None  # where the signing key is kept; None: config or env
    totp_key_file: Path | None = None  # the key of the TOTP secrets; None: var_dir/totp.key
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 8025
    web_base_url: str | None = None  # the console's address in sign-in links
    web_idle_minutes: int = 30
    web_session_hours: int = 12
    web_totp_roles: tuple[str, ...] = ("admin",)  # roles that must use a second factor
    web_tls_cert: Path | None = None
    web_tls_key: Path | None = None
    web_metrics_from: tuple[str, ...] = ()  # besides loopback: who may read /metrics

    @property
    def domain(self) -> str:
        """Our own domain: Message-IDs and reply addresses live on it."""
        return self.helpline_address.rsplit("@", 1)[1]

    @property
    def local_part(self) -> str:
        return self.helpline_address.rsplit("@", 1)[0]

    @property
    def loop_token(self) -> str:
        return self.helpline_address

    @property
    def totp_key_path(self) -> Path:
        """The file holding the key the console's TOTP secrets are encrypted with."""
        return self.totp_key_file or self.var_dir / "totp.key"

    @property
    def sent_dir(self) -> Path:
        return self.var_dir / "outbox-sent"


# --- the schema: section -> key -> (parser, default) -------------------------

Parser = Callable[[Any], Any]


class Invalid(ValueError):
    """A value does not fit its key; the message says what was expected."""


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {_show(value)}")
    return value


def _nonempty(value: Any) -> str:
    text = _str(value).strip()
    if not text:
        raise Invalid("must not be empty")
    return text


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no"):
        return value.lower() in ("1", "true", "yes", "on")
    raise Invalid(f"expected true or false, got {_show(value)}")


def _int(minimum: int = 0) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise Invalid(f"expected a whole number of at least {minimum}, got {_show(value)}")
        return value

    return parse


def _number(value: Any) -> float:
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d*)?\s*", value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise Invalid(f"expected a positive number, got {_show(value)}")
    return float(value)


def _hours_or_zero(value: Any) -> float:
    """A number of hours that may be 0 (which turns the thing off)."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d*)?\s*", value):
        value = float(value)
    if (isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            or not math.isfinite(value)):
        raise Invalid(f"expected a number of hours, 0 or more, got {_show(value)}")
    return float(value)


def _address_or_none(value: Any) -> str | None:
    """An address, or the empty string for none."""
    return None if isinstance(value, str) and not value.strip() else _address(value)


def _address(value: Any) -> str:
    text = _str(value).strip().lower()
    if not ADDRESS_RE.match(text):
        raise Invalid(f"expected an email address, got {_show(value)}")
    return text


def _addresses(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise Invalid(f"expected a list of addresses, got {_show(value)}")
    return tuple(_address(item) for item in value)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"expected a list of strings, got {_show(value)}")
    return tuple(v.strip() for v in value)


def _clock(value: Any) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", _str(value).strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise Invalid(f"expected a time as HH:MM, got {_show(value)}")
    return time(int(match[1]), int(match[2]))


def _zone(value: Any) -> ZoneInfo:
    try:
        return ZoneInfo(_nonempty(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(f"unknown time zone {_show(value)}") from exc


def _days(value: Any) -> frozenset[int]:
    names = _strings(value)
    bad = [n for n in names if n.lower()[:3] not in DAY_NAMES]
    if bad:
        raise Invalid(f"expected day names like mon, tue, got {_show(bad[0])}")
    return frozenset(DAY_NAMES.index(n.lower()[:3]) for n in names)


def _dates(value: Any) -> frozenset[date]:
    if not isinstance(value, list):
        raise Invalid(f"expected a list of dates, got {_show(value)}")
    out = set()
    for item in value:
        if isinstance(item, date):
            out.add(item)
            continue
        try:
            out.add(date.fromisoformat(_str(item)))
        except ValueError as exc:
            raise Invalid(f"expected dates as YYYY-MM-DD, got {_show(item)}") from exc
    return frozenset(out)


def _database_url(value: Any) -> str:
    url = _nonempty(value)
    scheme = urlsplit(url).scheme
    if scheme not in ("sqlite", "postgresql", "postgresql+psycopg", "sqlite+pysqlite"):
        raise Invalid(
            f"expected sqlite:///PATH or postgresql+psycopg://…, got scheme {_show(scheme)}"
        )
    if scheme.startswith("postgresql") and not urlsplit(url).netloc and "host=" not in url:
        raise Invalid("a PostgreSQL URL needs a host, e.g. postgresql+psycopg://user@host/db")
    return url


def _outbound_url(value: Any) -> str:
    url = _nonempty(value)
    parts = urlsplit(url)
    if parts.scheme not in ("file", "smtp", "smtps"):
        raise Invalid(f"expected file:///DIR, smtp://HOST:PORT or smtps://…, got {_show(url)}")
    if parts.scheme != "file" and not parts.hostname:
        raise Invalid(f"an SMTP relay URL needs a host, got {_show(url)}")
    if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
        raise Invalid(f"{_show(url)} names the host {_show(parts.netloc)}: write "
                      "file:///ABSOLUTE/DIR, or file:DIR for a folder in the data directory")
    return url


def _absolute(value: Any) -> Path:
    """The data directory: absolute (``~`` allowed), never taken relative to where
    a command happens to run."""
    path = Path(_nonempty(value)).expanduser()
    if not path.is_absolute():
        raise Invalid(f"expected an absolute path (the data directory never depends on the "
                      f"working directory), got {_show(value)}")
    return path


def _listen(value: Any) -> tuple[str, int]:
    text = _nonempty(value)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise Invalid(f"expected HOST:PORT (port 0: any free port), got {_show(value)}")
    return host.strip("[]"), int(port)


def _base_url(value: Any) -> str:
    url = _nonempty(value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise Invalid(f"expected http(s)://HOST[:PORT][/PATH], got {_show(value)}")
    return url


def _roles(value: Any) -> tuple[str, ...]:
    """Staff roles (checked against ``vocabulary.StaffRole`` by the console)."""
    return tuple(role.lower() for role in _strings(value) if role)


def _networks(value: Any) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.5``, ``10.0.0.0/24``)."""
    found = _strings(value)
    for item in found:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise Invalid(f"expected an IP address or network, got {_show(item)}") from None
    return found


def _tag(value: Any) -> str:
    text = _nonempty(value)
    if text.count("{id}") != 1:
        raise Invalid(f'must contain "{{id}}" exactly once, got {_show(value)}')
    return text


def _keywords(value: Any) -> tuple[str, ...]:
    """Safeguarding keywords, lower case: ``*`` may end a word, `` + `` joins words
    that must all occur (the syntax is in :mod:`mailroom.cases.safeguarding`)."""
    words = tuple(k.lower() for k in _strings(value))
    for word in words:
        parts = [part.strip() for part in word.split("+")]
        if not all(parts):
            raise Invalid(f"an empty keyword or an empty part around + in {_show(word)}")
        if any(re.search(r"\*\w|^\*|\s\*|-\*", part) for part in parts):
            raise Invalid(f"* may only end a word, in {_show(word)}")
    return words


LOG_FORMATS = ("text", "json")


def _log_format(value: Any) -> str:
    text = _nonempty(value).lower()
    if text not in LOG_FORMATS:
        raise Invalid(f"expected {' or '.join(LOG_FORMATS)}, got {_show(value)}")
    return text


SERVICE_KEYS = ("name", "url", "phone", "note")


def _services(value: Any) -> tuple[Service, ...]:
    """An array of tables ``{ name = "…", url = "…", phone = "…", note = "…" }``."""
    if not isinstance(value, list):
        raise Invalid(f"expected an array of tables with a name, got {_show(value)}")
    services = []
    for number, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise Invalid(f"entry {number}: expected a table such as {{ name = \"…\", "
                          f"url = \"…\" }}, got {_show(item)}")
        unknown = sorted(set(item) - set(SERVICE_KEYS))
        if unknown:
            raise Invalid(f"entry {number}: unknown key {_show(unknown[0])} "
                          f"(known: {', '.join(SERVICE_KEYS)})")
        if not isinstance(item.get("name"), str) or not item["name"].strip():
            raise Invalid(f"entry {number}: needs a name")
        bad = [k for k in SERVICE_KEYS if k in item and not isinstance(item[k], str)]
        if bad:
            raise Invalid(f"entry {number}: {bad[0]} must be a string")
        services.append(Service(**{k: item[k].strip() for k in SERVICE_KEYS if k in item}))
    return tuple(services)


# ISO 3166-1 alpha-2: the codes officially assigned (as tzdata's iso3166.tab lists them).
_ISO_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN
    BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL
    GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM
    JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME
    MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP
    NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD
    SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
ISO_COUNTRIES = frozenset(_ISO_CODES.split())
# Country-code top-level domains that are not their country's code.
CCTLD_COUNTRIES = {"uk": "GB"}
# Codes people write that ISO 3166 gives another way.
_COUNTRY_HINTS = {"UK": "GB", "EL": "GR"}
_DOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")


class InvalidKeys(Invalid):
    """Problems with keys inside a table (a country's, a domain's): one line each, as
    (the key inside the table, the sentence)."""

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{key}: {sentence}" for key, sentence in lines))
        self.lines = lines


def _country(value: Any) -> str:
    """An ISO 3166 alpha-2 country code, any case: ``"ie"`` -> ``"IE"``."""
    text = _str(value).strip().upper()
    if text in ISO_COUNTRIES:
        return text
    hint = _COUNTRY_HINTS.get(text)
    also = f" (ISO 3166 writes it {hint})" if hint else ""
    raise Invalid(f"expected a two-letter ISO 3166 country code such as GB, IE or DE, "
                  f"got {_show(value)}{also}")


def _country_domains(value: Any) -> dict[str, str]:
    """``{ "example.ie" = "IE", … }``: a requester's domain (and its subdomains) -> country."""
    if not isinstance(value, dict):
        raise Invalid(f'expected a table such as {{ "example.ie" = "IE" }}, got {_show(value)}')
    problems: list[tuple[str, str]] = []
    domains: dict[str, str] = {}
    for given, country in value.items():
        domain = ascii_domain(given.strip().lstrip("@").lstrip("."))
        key = f'"{given}"'
        if isinstance(country, dict):  # example.ie = "IE", unquoted, is a table in a table
            dotted = given
            while isinstance(country, dict) and country:
                inner, country = next(iter(country.items()))
                dotted += f".{inner}"
            key = f'"{dotted}"'
            problems.append((key, f'write the domain in quotes: "{dotted}" = "{country}"'))
        elif not _DOMAIN_RE.match(domain):
            problems.append((key, "expected a domain name such as example.ie"))
        else:
            try:
                domains[domain] = _country(country)
            except Invalid as exc:
                problems.append((key, str(exc)))
    if problems:
        raise InvalidKeys(problems)
    return domains


def _signposting_countries(value: Any) -> dict[str, dict[str, Any]]:
    """``[signposting.countries.XX]`` tables: each country's own keys of the set, parsed
    as ``[signposting]`` parses them, by country code."""
    if not isinstance(value, dict):
        raise Invalid(f"expected tables such as [signposting.countries.IE], got {_show(value)}")
    problems: list[tuple[str, str]] = []
    countries: dict[str, dict[str, Any]] = {}
    for code, table in value.items():
        try:
            country = _country(code)
        except Invalid as exc:
            problems.append((code, str(exc)))
            continue
        if not isinstance(table, dict):
            problems.append((code, f"expected a table [signposting.countries.{country}], "
                                   f"got {_show(table)}"))
            continue
        if country in countries:
            problems.append((code, f"{country} is given twice"))
            continue
        own: dict[str, Any] = {}
        for key, item in table.items():
            if key not in SIGNPOSTING_SET:
                problems.append((f"{code}.{key}",
                                 f"unknown key (known: {', '.join(SIGNPOSTING_SET)})"))
                continue
            try:
                own[key] = SIGNPOSTING_SET[key][0](item)
            except Invalid as exc:
                problems.append((f"{code}.{key}", str(exc)))
        countries[country] = own
    if problems:
        raise InvalidKeys(problems)
    return countries


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "…"


# --- safeguarding defaults (docs/practitioner-guide.md, "Safeguarding") ------------------
#
# What the keyword lists are for: to hold back the attachments of a report that
# may involve sexual images of a child *before* anyone has read it, so that the
# notification does not carry them to the practitioners' mailboxes. A hit puts the
# case in ``illegal_images`` (or ``sextortion``), withholds its files and sends the
# matching signposting; a practitioner can re-categorise the case, but its files
# stay withheld (failing closed). The words are phrases, not single words, where a
# single word would catch ordinary teachers' reports: "CP" and "CSE" (child
# protection, child sexual exploitation: safeguarding vocabulary, not images),
# "indecent" ("indecent exposure", "indecent language"), "nude" ("nude tights",
# life drawing), "sexting" (its own category, for a practitioner to judge).
# ``*`` ends a word with any ending; a hyphen matches a hyphen, a space or nothing
# ("semi-nude*": semi-nudes, semi nudes, seminudes); `` + `` means all of these,
# anywhere in the message ("blackmail* + nude*").
DEFAULT_ILLEGAL_KEYWORDS = (
    # what hotlines, police and safeguarding leads call it
    "csam", "csem", "csai", "iioc", "csa material", "csa image*", "csa imagery",
    "child sexual abuse material", "child sexual abuse image*", "child sexual abuse imagery",
    "child sexual abuse video*", "child sexual exploitation material",
    "child abuse image*", "child abuse imagery", "child abuse material", "child abuse video*",
    "child abuse photo*", "child abuse pic*", "abuse image* of children",
    "indecent image*", "indecent imagery", "indecent photo*", "indecent pic*",
    "indecent video*", "indecent material",
    "child porn*", "kiddie porn*", "kiddy porn*", "underage porn*",
    # images young people make or share themselves (illegal under 18 all the same)
    "self-generated image*", "self-generated imagery", "self-generated content",
    "self-generated material", "youth-produced sexual image*", "youth-produced imagery",
    "nudes", "nudez", "noodz", "n00ds", "n00dz", "semi-nude*",
    "nude image*", "nude photo*", "nude pic*", "nude selfie*", "nude video*",
    "naked image*", "naked photo*", "naked pic*", "naked selfie*", "naked video*",
    "sexual image* of a child", "sexual images of children", "sexual image* of a pupil",
    "sexual images of pupils", "explicit image* of a child", "explicit images of children",
    # generated or edited images
    "nudify", "nudified", "nudifying", "nudification", "deepfake nude*", "fake nude*",
)
DEFAULT_SEXTORTION_KEYWORDS = (
    "sex-tort*", "sexual extortion", "sexually extort*", "sex extortion",
    "sexual blackmail", "sex blackmail", "webcam blackmail",
    "blackmail* + nude*", "blackmail* + noodz", "blackmail* + n00d*", "blackmail* + naked",
    "blackmail* + intimate", "blackmail* + explicit", "blackmail* + sexual",
    "extort* + nude*", "extort* + naked", "extort* + intimate", "extort* + explicit",
    "nudes + threat*",
)
# UK services; a helpline elsewhere sets its own in [signposting].
DEFAULT_HOTLINES = [
    {"name": "the Internet Watch Foundation (IWF)", "url": "https://report.iwf.org.uk",
     "note": "you can report anonymously"},
    {"name": "outside the UK, your national hotline, listed by INHOPE",
     "url": "https://www.inhope.org"},
]
DEFAULT_TAKEDOWN = [
    {"name": "Report Remove, from Childline and the IWF",
     "url": "https://www.childline.org.uk/remove",
     "note": "for young people under 18 in the UK to have their nude images removed"},
    {"name": "Take It Down, from NCMEC", "url": "https://takeitdown.ncmec.org",
     "note": "for images taken before the age of 18, from any country"},
    {"name": "StopNCII.org", "url": "https://stopncii.org",
     "note": "for adults whose intimate images are shared or threatened to be shared"},
]
DEFAULT_POLICE_REPORT = [
    {"name": "CEOP, the child protection command of the National Crime Agency",
     "url": "https://www.ceop.police.uk/Safety-Centre/",
     "note": "to report online sexual abuse or blackmail of a young person"},
]
DEFAULT_SUPPORT = [
    {"name": "Childline", "phone": "0800 1111", "url": "https://www.childline.org.uk",
     "note": "free and confidential, for young people"},
    {"name": "the NSPCC helpline", "phone": "0808 800 5000",
     "note": "for adults worried about a child"},
    {"name": "the Revenge Porn Helpline", "phone": "0345 6000 459",
     "url": "https://revengepornhelpline.org.uk", "note": "for adults"},
]

# One country's set: [signposting] (the default set) and each [signposting.countries.XX].
SIGNPOSTING_SET: dict[str, tuple[Parser, Any]] = {
    "emergency_number": (_nonempty, "999"),
    "police_number": (_nonempty, "101"),
    "hotlines": (_services, DEFAULT_HOTLINES),
    "takedown": (_services, DEFAULT_TAKEDOWN),
    "police_report": (_services, DEFAULT_POLICE_REPORT),
    "support": (_services, DEFAULT_SUPPORT),
}

SCHEMA: dict[str, dict[str, tuple[Parser, Any]]] = {
    "helpline": {
        "name": (_nonempty, "Online Safety Helpline"),
        "address": (_address, "helpline@localhost"),
        "domains": (_strings, []),
        "subject_tag": (_tag, "[Helpline #{id}]"),
        "reference_prefix": (_nonempty, "HL-"),
        "timezone": (_zone, "Europe/London"),
        "opening_days": (_days, ["mon", "tue", "wed", "thu", "fri"]),
        "opens": (_clock, "10:00"),
        "closes": (_clock, "16:00"),
        "holidays": (_dates, []),
    },
    "database": {"url": (_database_url, None)},  # None: SQLite in the data directory
    "smtp": {
        "enabled": (_bool, True),
        "listen": (_listen, "127.0.0.1:2525"),
        "max_message_size": (_int(1024), 35 * 1024 * 1024),
        "max_recipients": (_int(1), 50),
        "max_connections_per_client": (_int(1), 10),
        "idle_timeout_seconds": (_number, 60.0),
        "tls_certificate": (_nonempty, None),
        "tls_key": (_nonempty, None),
        "require_starttls": (_bool, False),
    },
    "outbound": {
        "url": (_outbound_url, None),  # None: files in <data directory>/outbox-sent
        "max_attempts": (_int(1), 8),
        "retry_seconds": (_int(1), 60),
    },
    "practitioners": {
        "addresses": (_addresses, []),
        "team_address": (_address, None),
        "require_authentication": (_bool, False),
        "link_days_after_close": (_int(1), 90),
    },
    "acknowledgements": {
        "window_minutes": (_int(1), 10),
        "per_window": (_int(0), 1),
        "per_day": (_int(0), 10),
        "same_content_per_window": (_int(1), 3),
        "same_content_window_minutes": (_int(1), 60),
        "reply_grace_seconds": (_int(0), 120),
        "max_age_days_on_import": (_int(0), 7),
    },
    "sla": {
        "first_response_hours": (_number, 8.0),
        "next_response_hours": (_number, 16.0),
        "urgent_hours": (_number, 1.0),
        "high_hours": (_number, 4.0),
        "low_hours": (_number, 24.0),
        "urgent_categories": (_strings, ["sextortion", "threats", "illegal_images"]),
        "high_categories": (_strings, ["grooming"]),
        "chase_closed_cases": (_bool, False),
        "warn_before_hours": (_hours_or_zero, 1.0),
        "supervisor": (_address_or_none, ""),
    },
    "digest": {"enabled": (_bool, True)},
    "retention": {"closed_ticket_months": (_int(1), 12)},
    "security": {
        "secret": (_nonempty, None),
        "secret_file": (_nonempty, None),
        "totp_key_file": (_nonempty, "totp.key"),
        "trusted_authserv_ids": (_strings, []),
    },
    "paths": {
        "var_dir": (_absolute, None),  # None: MAILROOM_HOME, else default_data_dir()
        "platforms": (_nonempty, None),
        "templates": (_nonempty, None),
        "attachments": (_nonempty, None),
    },
    "safeguarding": {
        "illegal_keywords": (_keywords, list(DEFAULT_ILLEGAL_KEYWORDS)),
        "sextortion_keywords": (_keywords, list(DEFAULT_SEXTORTION_KEYWORDS)),
        "store_illegal_attachments": (_bool, False),
        "max_attachment_size": (_int(1), 25 * 1024 * 1024),
    },
    "signposting": {
        **SIGNPOSTING_SET,
        "default_country": (_country, "GB"),
        "domains": (_country_domains, {}),
        "countries": (_signposting_countries, {}),
    },
    "web": {
        "enabled": (_bool, True),
        "listen": (_listen, "127.0.0.1:8025"),
        "base_url": (_base_url, None),
        "idle_minutes": (_int(1), 30),
        "session_hours": (_int(1), 12),
        "totp_required_roles": (_roles, ["admin"]),
        "tls_cert": (_nonempty, None),
        "tls_key": (_nonempty, None),
        "metrics_from": (_networks, []),
    },
    "limits": {
        "max_attachments": (_int(0), 100),
        "max_mime_parts": (_int(1), 1000),
        "max_header_bytes": (_int(1024), 256 * 1024),
    },
    "status": {
        "outbox_max_queued": (_int(1), StatusLimits.outbox_max_queued),
        "outbox_max_wait_minutes": (_int(1), StatusLimits.outbox_max_wait_minutes),
        "inbox_max_wait_minutes": (_int(1), StatusLimits.inbox_max_wait_minutes),
        "failed_window_hours": (_int(1), StatusLimits.failed_window_hours),
        "max_recent_bad": (_int(0), StatusLimits.max_recent_bad),
        "max_recent_shunt": (_int(0), StatusLimits.max_recent_shunt),
        "imap_max_silence_minutes": (_int(1), StatusLimits.imap_max_silence_minutes),
        "job_grace_minutes": (_int(0), StatusLimits.job_grace_minutes),
        "disk_min_free_mb": (_int(0), StatusLimits.disk_min_free_mb),
    },
    "logging": {
        "format": (_log_format, "text"),
        "file": (_nonempty, None),
    },
    "tickets": {
        "categories": (
            _strings,
            [
                "illegal_images", "threats", "under13_privacy", "impersonation",
                "defamation", "reputation", "bullying", "grooming", "sexting",
                "sextortion", "privacy", "other",
            ],
        ),
        "roles": (
            _strings,
            [
                "teacher", "school_staff", "district_staff", "police", "social_worker",
                "foster_carer", "youth_leader", "health", "other",
            ],
        ),
    },
}

IMAP_SCHEMA: dict[str, tuple[Parser, Any]] = {
    "name": (_nonempty, None),
    "host": (_nonempty, None),
    "port": (_int(1), None),
    "username": (_nonempty, None),
    "password": (_str, None),
    "password_env": (_nonempty, None),
    "password_file": (_nonempty, None),
    "security": (_nonempty, "tls"),
    "folder": (_nonempty, "INBOX"),
    "processed_folder": (_nonempty, "Processed"),
    "idle": (_bool, True),
    "poll_interval": (_number, 60.0),
    "batch_size": (_int(1), 50),
}


# --- loading -----------------------------------------------------------------


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file and the environment; raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    source = _config_path(path, env)
    raw: dict[str, Any] = _read_toml(source) if source else {}
    for var, (section, key) in ENV_KEYS.items():
        if env.get(var):
            raw.setdefault(section, {})
            if isinstance(raw[section], dict):
                raw[section][key] = env[var]
    problems: list[str] = []
    values = _validate(raw, problems)
    var_dir = values["paths"]["var_dir"] or default_data_dir(env)
    _check_tls(values["smtp"], problems)
    _check_signposting(values["signposting"], problems)
    imap = _imap_accounts(raw.get("imap", []), env, problems, var_dir)
    if problems:
        raise ConfigError(problems)
    return _build(values, imap, source, env)


def _check_tls(smtp: dict[str, Any], problems: list[str]) -> None:
    """A certificate needs its key (and the key its certificate); requiring STARTTLS
    needs both."""
    cert, key = smtp.get("tls_certificate"), smtp.get("tls_key")
    if bool(cert) != bool(key):
        missing = "tls_key" if cert else "tls_certificate"
        problems.append(f"smtp.{missing}: required with smtp.tls_certificate and smtp.tls_key")
    elif smtp.get("require_starttls") and not cert:
        problems.append("smtp.require_starttls: needs smtp.tls_certificate and smtp.tls_key")


def _check_signposting(signposting: dict[str, Any], problems: list[str]) -> None:
    """A domain's country needs a set: the default country's or its own table."""
    default, countries = signposting.get("default_country"), signposting.get("countries")
    if default is None or countries is None:
        return  # its own line says what is wrong
    for domain, country in (signposting.get("domains") or {}).items():
        if country != default and country not in countries:
            problems.append(f'signposting.domains."{domain}": {country} is neither '
                            f"signposting.default_country ({default}) nor a configured country "
                            f"(add [signposting.countries.{country}])")


def _config_path(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    chosen = path or env.get("MAILROOM_CONFIG")
    if chosen:
        candidate = Path(chosen)
        if not candidate.is_file():
            raise ConfigError([f"no such file {candidate}"])
        return candidate
    home = env.get("MAILROOM_HOME")
    data_dir = Path(home).expanduser() if home else default_data_dir(env)
    default = data_dir / CONFIG_NAME
    return default if data_dir.is_absolute() and default.is_file() else None


def _read_toml(source: Path) -> dict[str, Any]:
    try:
        with source.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source} is not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"cannot read {source}: {exc.strerror}"]) from None


def _validate(raw: dict[str, Any], problems: list[str]) -> dict[str, dict[str, Any]]:
    for section in raw:
        if section not in SCHEMA and section != "imap":
            problems.append(f"{section}: unknown section")
    values: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            problems.append(f"{section}: expected a table, got {_show(given)}")
            given = {}
        values[section] = _validate_table(section, keys, given, problems)
    return values


def _validate_table(
    prefix: str, keys: dict[str, tuple[Parser, Any]], given: dict[str, Any], problems: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in given:
        if key not in keys:
            problems.append(f"{prefix}.{key}: unknown key")
    for key, (parse, default) in keys.items():
        value = given.get(key, default)
        if value is None:
            out[key] = None
            continue
        try:
            out[key] = parse(value)
        except InvalidKeys as exc:
            problems += [f"{prefix}.{key}.{inner}: {sentence}" for inner, sentence in exc.lines]
            out[key] = None
        except Invalid as exc:
            problems.append(f"{prefix}.{key}: {exc}")
            out[key] = None
    return out


def _imap_accounts(
    given: Any, env: Mapping[str, str], problems: list[str], var_dir: Path
) -> tuple[ImapAccount, ...]:
    if not isinstance(given, list):
        problems.append("imap: expected an array of tables ([[imap]])")
        return ()
    accounts = []
    for index, table in enumerate(given):
        prefix = f"imap[{index}]"
        if not isinstance(table, dict):
            problems.append(f"{prefix}: expected a table")
            continue
        before = len(problems)
        values = _validate_table(prefix, IMAP_SCHEMA, table, problems)
        for required in ("name", "host", "username"):
            if values.get(required) is None and f"{prefix}.{required}" not in str(problems):
                problems.append(f"{prefix}.{required}: required")
        password = _imap_password(prefix, values, env, problems, var_dir)
        if values.get("security") not in ("tls", "starttls", "none"):
            problems.append(f"{prefix}.security: expected tls, starttls or none")
        if len(problems) == before:
            accounts.append(_make_account(values, password))
    return tuple(accounts)


def _imap_password(
    prefix: str, values: dict[str, Any], env: Mapping[str, str], problems: list[str],
    var_dir: Path,
) -> str:
    if values.get("password") is not None:
        return str(values["password"])
    if values.get("password_env"):
        name = values["password_env"]
        if name not in env:
            problems.append(f"{prefix}.password_env: environment variable {name} is not set")
        return env.get(name, "")
    if values.get("password_file"):
        try:
            return in_data_dir(var_dir, values["password_file"], "").read_text().strip()
        except OSError as exc:
            problems.append(f"{prefix}.password_file: cannot read it ({exc.strerror})")
            return ""
    problems.append(f"{prefix}.password: required (or password_env / password_file)")
    return ""


def _make_account(values: dict[str, Any], password: str) -> ImapAccount:
    security = values["security"]
    port = values["port"] or (993 if security == "tls" else 143)
    return ImapAccount(
        name=values["name"], host=values["host"], port=port, username=values["username"],
        password=password, security=security, folder=values["folder"],
        processed_folder=values["processed_folder"], idle=values["idle"],
        poll_interval=values["poll_interval"], batch_size=values["batch_size"],
    )


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where mailroom keeps its data when neither ``paths.var_dir`` nor ``MAILROOM_HOME``
    says: ``$XDG_DATA_HOME/mailroom``, else ``~/.local/share/mailroom``."""
    base = env.get("XDG_DATA_HOME") or ""
    home = Path(env.get("HOME") or Path.home())
    return (Path(base) if Path(base).is_absolute() else home / ".local" / "share") / "mailroom"


def in_data_dir(var_dir: Path, name: str | None, default: str) -> Path:
    """A configured path; a relative one (and the default) is inside the data directory."""
    return var_dir / Path(name or default).expanduser()


def _sqlite_in(var_dir: Path, url: str | None) -> str:
    """The database URL, with a relative SQLite file taken in the data directory."""
    if url is None:
        return f"sqlite:///{var_dir / 'mailroom.db'}"
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:" or Path(parsed.database).is_absolute():
        return url
    return parsed.set(database=str(var_dir / parsed.database)).render_as_string(
        hide_password=False)


def _outbound_in(var_dir: Path, url: str | None) -> str:
    """The outbound URL, a ``file:`` folder made absolute: ``file:///…`` always."""
    if url is None:
        return (var_dir / "outbox-sent").as_uri()
    parts = urlsplit(url)
    if parts.scheme != "file":
        return url
    return in_data_dir(var_dir, unquote(parts.path), "outbox-sent").as_uri()


def _build(
    v: dict[str, dict[str, Any]], imap: tuple[ImapAccount, ...], source: Path | None,
    env: Mapping[str, str],
) -> Settings:
    helpline, paths = v["helpline"], v["paths"]
    var_dir = paths["var_dir"] or default_data_dir(env)
    address = helpline["address"]
    domains = tuple(d.lower() for d in helpline["domains"]) or (address.rsplit("@", 1)[1],)
    smtp_host, smtp_port = v["smtp"]["listen"]
    web = v["web"]
    web_host, web_port = web["listen"]
    return Settings(
        helpline_name=helpline["name"], helpline_address=address, domains=domains,
        subject_tag=helpline["subject_tag"], reference_prefix=helpline["reference_prefix"],
        timezone=helpline["timezone"], opening_days=helpline["opening_days"],
        opens=helpline["opens"], closes=helpline["closes"], holidays=helpline["holidays"],
        database_url=_sqlite_in(var_dir, v["database"]["url"]),
        smtp_enabled=v["smtp"]["enabled"], smtp_host=smtp_host, smtp_port=smtp_port,
        smtp_max_size=v["smtp"]["max_message_size"], imap_accounts=imap,
        outbound_url=_outbound_in(var_dir, v["outbound"]["url"]),
        outbound_max_attempts=v["outbound"]["max_attempts"],
        outbound_retry_seconds=v["outbound"]["retry_seconds"],
        practitioners=v["practitioners"]["addresses"],
        team_address=v["practitioners"]["team_address"],
        require_authentication=v["practitioners"]["require_authentication"],
        practitioner_link_days=v["practitioners"]["link_days_after_close"],
        ack_window_minutes=v["acknowledgements"]["window_minutes"],
        ack_per_window=v["acknowledgements"]["per_window"],
        ack_per_day=v["acknowledgements"]["per_day"],
        ack_same_content_per_window=v["acknowledgements"]["same_content_per_window"],
        ack_reply_grace_seconds=v["acknowledgements"]["reply_grace_seconds"],
        ack_max_age_days_on_import=v["acknowledgements"]["max_age_days_on_import"],
        ack_same_content_window_minutes=v["acknowledgements"]["same_content_window_minutes"],
        sla_first_response_hours=v["sla"]["first_response_hours"],
        retention_closed_months=v["retention"]["closed_ticket_months"],
        secret=_secret(v["security"], var_dir),
        trusted_authserv_ids=tuple(
            i.lower() for i in v["security"]["trusted_authserv_ids"] if i) or domains,
        var_dir=var_dir,
        platforms_path=(in_data_dir(var_dir, paths["platforms"], "") if paths["platforms"]
                        else shipped_path(PLATFORMS)),
        template_dirs=_template_dirs(var_dir, paths["templates"]),
        attachments_dir=in_data_dir(var_dir, paths["attachments"], "attachments"),
        illegal_keywords=v["safeguarding"]["illegal_keywords"],
        sextortion_keywords=v["safeguarding"]["sextortion_keywords"],
        store_illegal_attachments=v["safeguarding"]["store_illegal_attachments"],
        max_attachment_size=v["safeguarding"]["max_attachment_size"],
        categories=v["tickets"]["categories"], roles=v["tickets"]["roles"],
        signposting=_signposting(v["signposting"]), source=source,
        smtp_max_recipients=v["smtp"]["max_recipients"],
        smtp_max_connections_per_client=v["smtp"]["max_connections_per_client"],
        smtp_idle_timeout=v["smtp"]["idle_timeout_seconds"],
        digest_enabled=v["digest"]["enabled"],
        sla_next_response_hours=v["sla"]["next_response_hours"],
        sla_priority_hours={"urgent": v["sla"]["urgent_hours"], "high": v["sla"]["high_hours"],
                            "low": v["sla"]["low_hours"]},
        sla_category_priorities={**{c: "high" for c in v["sla"]["high_categories"]},
                                 **{c: "urgent" for c in v["sla"]["urgent_categories"]}},
        sla_chase_closed_cases=v["sla"]["chase_closed_cases"],
        sla_warn_before_hours=v["sla"]["warn_before_hours"],
        sla_supervisor=v["sla"]["supervisor"],
        max_attachments=v["limits"]["max_attachments"],
        max_mime_parts=v["limits"]["max_mime_parts"],
        max_header_bytes=v["limits"]["max_header_bytes"],
        status_limits=StatusLimits(**v["status"]),
        smtp_tls_certificate=_optional_in(var_dir, v["smtp"]["tls_certificate"]),
        smtp_tls_key=_optional_in(var_dir, v["smtp"]["tls_key"]),
        smtp_require_starttls=v["smtp"]["require_starttls"],
        log_format=v["logging"]["format"],
        log_file=_optional_in(var_dir, v["logging"]["file"]),
        secret_file=_secret_path(v["security"], var_dir),
        totp_key_file=in_data_dir(var_dir, v["security"]["totp_key_file"], "totp.key"),
        web_enabled=web["enabled"], web_host=web_host, web_port=web_port,
        web_base_url=web["base_url"], web_idle_minutes=web["idle_minutes"],
        web_session_hours=web["session_hours"], web_totp_roles=web["totp_required_roles"],
        web_tls_cert=_optional_in(var_dir, web["tls_cert"]),
        web_tls_key=_optional_in(var_dir, web["tls_key"]),
        web_metrics_from=web["metrics_from"],
    )


def _signposting(values: dict[str, Any]) -> SignpostingByCountry:
    """The default set, and each configured country's: its own keys over the default set's."""
    base = {key: values[key] for key in SIGNPOSTING_SET}
    countries = {country: Signposting(country=country, **{**base, **own})
                 for country, own in values["countries"].items()}
    return SignpostingByCountry(Signposting(country=values["default_country"], **base),
                                countries, values["domains"])


def _optional_in(var_dir: Path, value: str | None) -> Path | None:
    """A path that may be left out; a relative one is inside the data directory."""
    return in_data_dir(var_dir, value, "") if value else None


def _template_dirs(var_dir: Path, configured: str | None) -> tuple[Path, ...]:
    """Templates are looked up in the configured folder first, then in the shipped ones:
    a helpline adds or overrides a template without copying the others."""
    shipped = shipped_path(TEMPLATES)
    return (in_data_dir(var_dir, configured, ""), shipped) if configured else (shipped,)


def _secret(security: dict[str, Any], var_dir: Path) -> bytes:
    """The signing key: from config/env, a named file, or generated once under var/."""
    path = _secret_path(security, var_dir)
    if path is None:
        return str(security["secret"]).encode()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError([f"security.secret_file: cannot read {path} ({exc.strerror})"]) from None
    return _generate_secret(path)


def _secret_path(security: dict[str, Any], var_dir: Path) -> Path | None:
    """The file that holds the signing key; None when the configuration gives the key."""
    if security.get("secret"):
        return None
    return in_data_dir(var_dir, security.get("secret_file"), "secret")


def _generate_secret(path: Path) -> bytes:
    """A new key in a new file, 0600 in a 0700 folder (``var/``) whatever the umask."""
    try:
        make_private_dir(path.parent)
        fd = create_private_file(path)
    except FileExistsError:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError([f"security.secret: cannot create {path} ({exc.strerror})"]) from None
    value = secrets.token_urlsafe(32).encode()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
