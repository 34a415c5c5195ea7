"""Render email bodies from the Jinja2 templates (shipped in ``mailroom/templates``).

A template name is ``<audience>/<purpose>`` (``requester/acknowledgement``);
the plain text comes from ``<name>.txt.j2`` (required) and the optional HTML
alternative from ``<name>.html.j2``. There are two environments: the text one
does not autoescape (a requester's ``<`` stays ``<``), the HTML one does.
Both use ``StrictUndefined``: a missing or misspelt variable is an error, not
an empty string in a message to a professional.

Filters available to every template:

- ``localtime(dt, fmt=None)`` — an aware datetime in the helpline's time zone,
  e.g. ``Monday 3 March 2025 at 10:00 GMT``; a naive datetime is an error.
- ``localdate(dt)`` — the same, date only: ``Monday 3 March 2025``.
- ``humanize`` — ``illegal_images`` → ``illegal images``.
- ``with_article`` — ``teacher`` → ``a teacher``, ``officer`` → ``an officer``.
- ``join_words(items, last="and")`` — ``["A", "B", "C"]`` → ``A, B and C``.
- ``filesize`` — 2048 → ``2.0 KB``.

Globals are given by whoever builds the Renderer (``runtime.wiring``):
``command_help``, the help at the foot of practitioner mail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

TEXT_SUFFIX = ".txt.j2"
HTML_SUFFIX = ".html.j2"
_NAME_RE = re.compile(r"[a-z0-9_-]+(?:/[a-z0-9_-]+)*")


class Renderer:
    """Renders ``(text, html | None)`` for a template name and a context."""

    def __init__(self, template_dirs: Path | Sequence[Path], *, tz: tzinfo | None = None,
                 globals: Mapping[str, object] | None = None) -> None:
        """``template_dirs``: one folder, or several searched in order (a helpline's own
        templates, then the shipped ones)."""
        self.template_dirs = ([Path(template_dirs)] if isinstance(template_dirs, str | Path)
                              else [Path(d) for d in template_dirs])
        self.tz = tz if tz is not None else ZoneInfo("Europe/London")
        self.globals = dict(globals or {})
        self._text = self._environment(autoescape=False)
        self._html = self._environment(autoescape=True)

    def _environment(self, *, autoescape: bool) -> Environment:
        env = Environment(
            loader=FileSystemLoader(self.template_dirs),
            autoescape=autoescape,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters.update(
            localtime=self._localtime,
            localdate=self._localdate,
            humanize=humanize,
            with_article=with_article,
            join_words=join_words,
            filesize=filesize,
        )
        env.globals.update(self.globals)
        return env

    def exists(self, name: str) -> bool:
        """True when ``<name>.txt.j2`` exists (for ``<platform>`` → ``default`` fallbacks)."""
        return _has_template(self._text, _checked(name) + TEXT_SUFFIX)

    def names(self, folder: str) -> tuple[str, ...]:
        """The text templates directly in ``folder`` of every template folder (``answers``
        → ``("screenshots", …)``: a helpline's own and the shipped ones), partials
        (``_name``) left out, sorted."""
        found = (path.name.removesuffix(TEXT_SUFFIX) for base in self.template_dirs
                 for path in (base / folder).glob(f"*{TEXT_SUFFIX}"))
        return tuple(sorted({name for name in found if not name.startswith("_")}))

    def render(self, name: str, context: Mapping[str, object]) -> tuple[str, str | None]:
        """Render the text body and, when its template exists, the HTML body.

        Raises ``jinja2.TemplateNotFound`` when there is no text template and
        ``jinja2.UndefinedError`` when the context lacks a variable.
        """
        base = _checked(name)
        text = self._text.get_template(base + TEXT_SUFFIX).render(context)
        html = None
        if _has_template(self._html, base + HTML_SUFFIX):
            html = self._html.get_template(base + HTML_SUFFIX).render(context)
        return tidy_text(text), html

    def _localtime(self, moment: datetime, fmt: str | None = None) -> str:
        local = _aware(moment).astimezone(self.tz)
        if fmt is not None:
            return local.strftime(fmt)
        return f"{_long_date(local)} at {local:%H:%M} {local.tzname()}"

    def _localdate(self, moment: datetime) -> str:
        return _long_date(_aware(moment).astimezone(self.tz))


def tidy_text(text: str) -> str:
    """Trailing spaces off every line, at most one blank line in a row, one final newline.

    The signature separator ``-- `` keeps its trailing space.
    """
    lines = [_rstrip_line(line) for line in text.strip("\n").split("\n")]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip("\n") + "\n"


def _rstrip_line(line: str) -> str:
    return line if line == "-- " else line.rstrip()


def humanize(value: object) -> str:
    """``illegal_images`` → ``illegal images``."""
    return str(value).replace("_", " ").replace("-", " ")


def with_article(noun: object) -> str:
    """``teacher`` → ``a teacher``, ``officer`` → ``an officer`` (by first letter)."""
    text = str(noun).strip()
    article = "an" if text[:1].lower() in set("aeiou") else "a"
    return f"{article} {text}"


def join_words(items: Iterable[object], last: str = "and") -> str:
    """``A, B and C``; an empty list gives an empty string."""
    words = [str(item) for item in items]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def filesize(size: int) -> str:
    """A byte count for people: ``512 bytes``, ``2.0 KB``, ``1.5 MB``."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def _long_date(local: datetime) -> str:
    return f"{local:%A} {local.day} {local:%B %Y}"


def _aware(moment: datetime) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"localtime needs a timezone-aware datetime, got {moment!r}")
    return moment


def _checked(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid template name: {name!r}")
    return name


def _has_template(env: Environment, filename: str) -> bool:
    assert env.loader is not None
    try:
        env.loader.get_source(env, filename)
    except TemplateNotFound:
        return False
    return True
