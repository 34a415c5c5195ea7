"""A report as data: what every format renders (:mod:`mailroom.reports.formats`).

A :class:`Document` describes a report of a period without saying how it
looks: sections of blocks, each block one of

- :class:`Figures`: key figures for people, each a label, a value, a unit and
  a few words about it (``Cases opened: 25``, ``25% more than …: 20``);
- :class:`Record`: named figures for the data formats (JSON, CSV);
- :class:`Table`: rows of values under columns, with an optional total row,
  a note, and an optional :class:`Chart` that says which columns to draw and
  how.

Values are raw (an ``int``, a ``float``, ``None`` for "cannot be computed", a
``str``) and each column or figure has a *kind* that says how to read them:
``count``, ``signed`` (a change, ``+2``), ``hours`` (business hours,
``4.0``), ``percent`` (a change in percent), ``rate`` (0–1, shown as a
percentage) or ``text``. :func:`for_people` and :func:`for_data` are the two
readings every format shares.

Who sees what is said once, here, rather than in each format:

- a column with ``people=False`` is data only (the JSON's ``with_outcome``);
  one with ``data=False`` is for people only (a share, a change from the
  year before, worked out for reading); ``csv=None`` leaves it out of the
  long CSV, which holds one figure per row;
- a :class:`Record` is data only, :class:`Figures` are people only; a
  figure with ``summary=False`` is left out of the short (plain text) form;
- a total row is for people unless the table names a ``total_key`` for it in
  the data;
- prose comes in two lengths: a page shows the ``introduction`` and the
  ``definitions``, a plain text the ``footnote``.

The data keys (JSON keys, CSV sections and metrics) are part of each
description, as stable as the figures: scripts read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailroom.reports.data import Period

__all__ = [
    "COUNT",
    "HOURS",
    "PERCENT",
    "RATE",
    "SIGNED",
    "TEXT",
    "Block",
    "Chart",
    "Column",
    "Definition",
    "Document",
    "Figure",
    "Figures",
    "Record",
    "Row",
    "Section",
    "Series",
    "Span",
    "Table",
    "for_data",
    "for_people",
]

COUNT, SIGNED, HOURS, PERCENT, RATE, TEXT = "count", "signed", "hours", "percent", "rate", "text"
_DATA_DIGITS = {HOURS: 2, PERCENT: 1, RATE: 4}


def for_people(value: Any, kind: str) -> str:
    """``4.0``, ``+2``, ``67%`` (half up), ``—`` for a figure that cannot be computed."""
    if value is None:
        return "—"
    if kind == SIGNED:
        return f"{value:+d}"
    if kind == HOURS:
        return f"{value:.1f}"
    if kind == RATE:
        return f"{int(value * 100 + 0.5)}%"
    if kind == PERCENT:
        return f"{value:.1f}%"
    return str(value)


def for_data(value: Any, kind: str) -> Any:
    """The value for JSON and CSV: hours to 2 decimals, percentages to 1, rates to 4."""
    digits = _DATA_DIGITS.get(kind)
    return value if value is None or digits is None else round(value, digits)


@dataclass(frozen=True)
class Column:
    """One column of a table, or one field of a record."""

    key: str  # the JSON key
    label: str = ""  # the heading for people
    kind: str = COUNT
    short: str = ""  # the heading of a plain-text table, when not the label
    people: bool = True  # shown in the tables people read
    data: bool = True  # in the JSON (and, unless csv is None, the CSV)
    csv: str | None = ""  # the CSV metric ("": the key; None: not in the CSV)
    group: str = ""  # the JSON nests the columns of a group under this key

    @property
    def heading(self) -> str:
        """The heading of a plain-text table."""
        return self.short or self.label

    @property
    def metric(self) -> str | None:
        """The CSV metric, None when the column is not in the CSV."""
        if not self.data or self.csv is None:
            return None
        return self.csv or self.key


@dataclass(frozen=True)
class Row:
    """One row: its key (in the data), its label (for people), its values by column key."""

    key: str
    label: str
    values: Mapping[str, Any]
    short: str = ""  # a shorter label, under a chart's column


@dataclass(frozen=True)
class Series:
    """One column drawn in a chart."""

    column: str  # the column's key
    style: str  # its CSS class suffix: current, previous, category, removed…
    legend: str = ""  # its name in the legend ("" for no legend)
    title: str = "{row}: {value}"  # a bar's accessible name; {row}, {value}, {<column>}


@dataclass(frozen=True)
class Chart:
    """How a table is drawn.

    ``columns``: a group of vertical bars per row, one per series, on a y axis
    (values above the bars up to 12 groups; a row's short label under its group,
    split in two lines, the second shown where it changes: ``Jan`` / ``2025``).
    ``bars``: one horizontal bar per row, largest first.
    ``stacked``: one horizontal bar per row, a segment per series.
    """

    kind: str  # columns, bars, stacked
    series: tuple[Series, ...]  # in the order they are drawn
    description: str  # what the chart shows, in words (its SVG description)
    label: str = ""  # the text after a row's bar: "{cases} · {share}"


@dataclass(frozen=True)
class Table:
    """Rows under columns: a breakdown, a comparison, a list of platforms."""

    id: str  # "months": names the chart and the table on a page
    key: str  # "by_month": its JSON key
    csv: str  # "month": its CSV section
    title: str
    head: Column  # the rows' keys (its JSON key) and labels (its heading)
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    empty: str  # the plain-text line said instead of a table without rows
    total: Row | None = None
    total_key: str = ""  # the JSON key of the total; "": the total is for people only
    note: str = ""
    chart: Chart | None = None
    half: bool = False  # half a page wide: two such tables side by side

    def column(self, key: str) -> Column:
        return next(column for column in self.columns if column.key == key)

    @property
    def people_columns(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.people)

    @property
    def data_columns(self) -> tuple[Column, ...]:
        return tuple(column for column in self.columns if column.data)


@dataclass(frozen=True)
class Record:
    """Named figures, for the data formats only: ``cases`` → opened, previous, change…"""

    key: str  # its JSON key
    csv: tuple[str, str]  # its CSV section and key
    columns: tuple[Column, ...]
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Figure:
    """A key figure for people: ``Cases opened: 25 (25% more than …: 20)``."""

    label: str  # "Cases opened"
    value: Any
    kind: str = COUNT
    unit: str = ""  # "business hours"
    detail: str = ""  # a few words about it
    previous: int | None = None  # the same figure a year before, after the detail
    summary: bool = True  # in the short form (plain text) too


@dataclass(frozen=True)
class Figures:
    figures: tuple[Figure, ...]


Block = Figures | Record | Table


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Span:
    """A piece of prose; ``strong`` ones stand out on a page."""

    text: str
    strong: bool = False


@dataclass(frozen=True)
class Definition:
    term: str
    text: str


@dataclass(frozen=True)
class Document:
    """One report of a period, as data."""

    publisher: str  # the helpline
    kind: str  # "case report"
    title: str  # "Cases from 1 January 2025 to 31 March 2025"
    subtitle: str  # "Compared with …"
    generated_at: datetime
    timezone: str
    period: Period
    previous: Period | None
    sections: tuple[Section, ...]
    facts: Mapping[str, str] = field(default_factory=dict)  # more of the head, for the data
    introduction: tuple[Span, ...] = ()
    definitions: tuple[Definition, ...] = ()
    footnote: str = ""

    @property
    def heading(self) -> str:
        """``Test Helpline: cases from …``."""
        return f"{self.publisher}: {self.title[:1].lower()}{self.title[1:]}"
