"""Render any report :class:`~mailroom.reports.document.Document` as text, JSON, CSV or HTML.

Each format knows how to show the blocks of a document, never which report it
is: a new section, table or report needs no code here.

- **text** (default): for a terminal or an email. The heading, the key
  figures of the short form (``summary``), each table people read as aligned
  columns (label left, figures right, its total row last, its ``empty`` line
  when it has no rows), then the footnote. No section titles, notes or prose.
- **json**: one document: the head (``helpline``, ``generated_at``,
  ``timezone``, the document's facts, ``period`` with its ``kind``,
  ``previous_period``), then each record and table under its key, in document
  order. A record is an object; a table is a list of objects, its rows' key
  under the head column's key, or, when it has a single figure per row, an
  object of key → figure; an exported total comes under its ``total_key``.
  Grouped columns nest (``"outcomes": {…}``). Business hours are rounded to 2
  decimals, percentages to 1, rates (0–1) to 4; a figure that cannot be
  computed (no answer yet) is ``null``.
- **csv**: long format, one figure per row, header ``section,key,metric,value``:
  the period's dates, the records (each under its section and key), then the
  tables (each under its section, a row's key, an exported total last), one row
  per metric.
  An empty value means "cannot be computed" (no answer yet, nothing to compare).
- **markdown**: for a wiki, a repository or a mail that renders Markdown: the heading,
  the subtitle and the introduction, then each section under its title (``##``): the
  key figures as a list (each with its words and last year's figure), each table people
  read under its title (``###``) and note as a pipe table (GitHub Flavored Markdown:
  figures aligned right, the total row last, in bold), then the definitions and the
  footnote. Records, data only, are left out, as in the text.
- **html**: one self-contained file (``mailroom/templates/reports/report.html.j2``):
  the introduction, the key figures as cards (a large figure with a one-word
  unit, the rest of a longer unit in the words under it), each section with its tables as
  figures (title, note, legend, chart, and the data table of what the chart
  draws: no total row; two half-width tables side by side), the definitions;
  inline CSS, charts as inline SVG (each with a title, a description and a
  data table; geometry in :mod:`mailroom.reports.charts`), no script and no
  external resource — a Content-Security-Policy forbids loading any — so it
  reads the same offline, printed or archived.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mailroom.reports.charts import Drawing, draw
from mailroom.reports.data import Period
from mailroom.reports.document import (
    TEXT,
    Block,
    Column,
    Document,
    Figure,
    Figures,
    Record,
    Row,
    Table,
    for_data,
    for_people,
)

__all__ = [
    "FORMATS",
    "csv_rows",
    "json_data",
    "render",
    "render_csv",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
]

FORMATS = ("text", "markdown", "json", "csv", "html")
HTML_TEMPLATE = "reports/report.html.j2"


def render(document: Document, fmt: str, template_dirs: Sequence[Path]) -> str:
    """The document in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "html":
        return render_html(document, template_dirs)
    renderers: dict[str, Callable[[Document], str]] = {
        "text": render_text, "markdown": render_markdown, "json": render_json,
        "csv": render_csv}
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return renderers[fmt](document)


def blocks(document: Document) -> Iterator[Block]:
    for section in document.sections:
        yield from section.blocks


# --- JSON ----------------------------------------------------------------------------


def json_data(document: Document) -> dict[str, Any]:
    """The document as plain data (the JSON format)."""
    data: dict[str, Any] = {
        "helpline": document.publisher,
        "generated_at": document.generated_at.isoformat(),
        "timezone": document.timezone,
        **document.facts,
        "period": _period(document.period) | {"kind": document.period.kind()},
    }
    if document.previous is not None:
        data["previous_period"] = _period(document.previous)
    for block in blocks(document):
        if isinstance(block, Record):
            data[block.key] = _values(block.columns, block.values)
        elif isinstance(block, Table):
            data[block.key] = _table_data(block)
            if block.total is not None and block.total_key:
                data[block.total_key] = _row_data(block, block.total)
    return data


def _period(period: Period) -> dict[str, Any]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


def _values(columns: Sequence[Column], values: Mapping[str, Any]) -> dict[str, Any]:
    """The exported values by key; a group's under the group's key, where its first one is."""
    out: dict[str, Any] = {}
    for column in columns:
        if column.data:
            into = out.setdefault(column.group, {}) if column.group else out
            into[column.key] = for_data(values[column.key], column.kind)
    return out


def _row_data(table: Table, row: Row) -> dict[str, Any]:
    return {table.head.key: row.key, **_values(table.columns, row.values)}


def _table_data(table: Table) -> list[dict[str, Any]] | dict[str, Any]:
    exported = table.data_columns
    if len(exported) == 1:
        [only] = exported
        return {row.key: for_data(row.values[only.key], only.kind) for row in table.rows}
    return [_row_data(table, row) for row in table.rows]


def render_json(document: Document) -> str:
    return json.dumps(json_data(document), indent=2, ensure_ascii=False) + "\n"


# --- CSV -----------------------------------------------------------------------------

CsvRow = tuple[str, str, str, Any]


def csv_rows(document: Document) -> Iterator[CsvRow]:
    """One figure per row: (section, key, metric, value); None for "cannot be computed"."""
    periods = [("current", document.period)]
    if document.previous is not None:
        periods.append(("previous", document.previous))
    for key, period in periods:
        yield ("period", key, "from", period.start.isoformat())
        yield ("period", key, "to", period.end.isoformat())
    records = [block for block in blocks(document) if isinstance(block, Record)]
    for record in records:
        yield from _csv_values(*record.csv, record.columns, record.values)
    for block in blocks(document):
        if isinstance(block, Table):
            exported = [*block.rows, *([block.total] if block.total and block.total_key else [])]
            for row in exported:
                yield from _csv_values(block.csv, row.key, block.columns, row.values)


def _csv_values(section: str, key: str, columns: Sequence[Column],
                values: Mapping[str, Any]) -> Iterator[CsvRow]:
    for column in columns:
        if column.metric is not None:
            yield (section, key, column.metric, for_data(values[column.key], column.kind))


def render_csv(document: Document) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "key", "metric", "value"))
    for section, key, metric, value in csv_rows(document):
        writer.writerow((section, key, metric, "" if value is None else value))
    return out.getvalue()


# --- text ----------------------------------------------------------------------------


def render_text(document: Document) -> str:
    parts = [f"{document.heading}\n{document.subtitle} ({document.timezone})"]
    for block in blocks(document):
        if isinstance(block, Figures):
            lines = [_figure_line(figure) for figure in block.figures if figure.summary]
            parts.extend(["\n".join(lines)] if lines else [])
        elif isinstance(block, Table):
            parts.append(_text_table(block))
    if document.footnote:
        parts.append(document.footnote)
    return "\n\n".join(parts) + "\n"


def _figure_line(figure: Figure) -> str:
    """``Cases opened: 25 (25% more than the same quarter last year: 20)``."""
    line = f"{figure.label}: {for_people(figure.value, figure.kind)}"
    if figure.unit:
        line += f" {figure.unit}"
    if figure.previous is not None:
        return f"{line} ({figure.detail}: {figure.previous})"
    return f"{line} ({figure.detail})" if figure.detail else line


def _text_table(table: Table) -> str:
    if not table.rows:
        return table.empty
    columns = table.people_columns
    rows = [*table.rows, *([table.total] if table.total else [])]
    return _aligned([table.head.heading, *(c.heading for c in columns)],
                    [_cells(row, columns) for row in rows])


def _cells(row: Row, columns: Sequence[Column]) -> list[str]:
    return [row.label, *(for_people(row.values[c.key], c.kind) for c in columns)]


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The first column left, the others right, two spaces apart."""
    cells = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [row[0].ljust(widths[0]),
                  *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


# --- Markdown ------------------------------------------------------------------------


def render_markdown(document: Document) -> str:
    parts = [f"# {_md(document.heading)}", f"{_md(document.subtitle)} ({document.timezone})"]
    if document.introduction:
        parts.append(_md("".join(span.text for span in document.introduction)))
    for section in document.sections:
        shown = [_md_block(block) for block in section.blocks]
        if any(shown):
            parts.append(f"## {_md(section.title)}")
            parts.extend(block for block in shown if block)
    if document.definitions:
        parts.append("## About these figures")
        parts.append("\n".join(f"- **{_md(d.term)}**: {_md(d.text)}"
                               for d in document.definitions))
    if document.footnote:
        parts.append(_md(document.footnote.strip()))
    return "\n\n".join(parts) + "\n"


def _md_block(block: Block) -> str:
    if isinstance(block, Figures):
        return "\n".join(f"- {_md(_figure_line(figure))}" for figure in block.figures)
    if isinstance(block, Table):
        return _md_table(block)
    return ""  # a record is data only


def _md_table(table: Table) -> str:
    lines = [f"### {_md(table.title)}"]
    if table.note:
        lines += ["", _md(table.note)]
    lines.append("")
    if not table.rows:
        lines.append(_md(table.empty))
        return "\n".join(lines)
    columns = table.people_columns
    lines.append("| " + " | ".join(_md(h) for h in [table.head.label,
                                                   *(c.label for c in columns)]) + " |")
    lines.append("| --- |" + "".join(" --- |" if c.kind == TEXT else " ---: |"
                                      for c in columns))
    for row in table.rows:
        lines.append("| " + " | ".join(_md(cell) for cell in _cells(row, columns)) + " |")
    if table.total is not None:
        lines.append("| " + " | ".join(f"**{_md(cell)}**" if cell else ""
                                       for cell in _cells(table.total, columns)) + " |")
    return "\n".join(lines)


def _md(text: str) -> str:
    """Text that Markdown shows as it is: no table breaks, no emphasis, no HTML."""
    for char in "\\|*_`[]<>#":
        text = text.replace(char, f"\\{char}")
    return text.replace("\n", " ")


# --- HTML ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """A key figure on the page."""

    value: str
    unit: str  # shown after the value, when there is one
    what: str
    more: str


@dataclass(frozen=True)
class TableView:
    """A table on the page: its chart and the data table of what the chart draws."""

    id: str
    title: str
    note: str
    drawing: Drawing | None
    headers: list[str]
    rows: list[list[str]]
    half: bool

    @property
    def wide(self) -> bool:
        """Many columns: set closer, so that the table fits the page."""
        return len(self.headers) > 8


@dataclass(frozen=True)
class Part:
    """What a section shows, in order: ``cards``, ``table`` or ``pair`` (of tables)."""

    kind: str
    items: list[Any]


def html_context(document: Document) -> dict[str, Any]:
    """What the HTML template shows: the document, each section's parts, the footer time."""
    sections = [(section, parts) for section in document.sections
                if (parts := _parts(section.blocks))]
    return {"doc": document, "sections": sections,
            "generated": _local_time(document)}


def _parts(section_blocks: Sequence[Block]) -> list[Part]:
    """Cards and tables in order; consecutive half-width tables side by side, two by two."""
    parts: list[Part] = []
    for block in section_blocks:
        if isinstance(block, Figures):
            parts.append(Part("cards", [_card(figure) for figure in block.figures]))
        elif isinstance(block, Table):
            view = _table_view(block)
            last = parts[-1] if parts else None
            if view.half and last and last.kind == "pair" and len(last.items) == 1:
                last.items.append(view)
            else:
                parts.append(Part("pair" if view.half else "table", [view]))
    return parts


def _card(figure: Figure) -> Card:
    """A large figure carries a one-word unit ("hours"); a longer unit ("business hours")
    is said in full in the words under it."""
    words = [figure.detail] if figure.detail else []
    unit = figure.unit
    if len(unit.split()) > 1:
        words.insert(0, f"in {unit}")
        unit = unit.split()[-1]
    more = "; ".join(words) + (f" ({figure.previous})" if figure.previous else "")
    return Card(for_people(figure.value, figure.kind), unit if figure.value is not None else "",
                figure.label[:1].lower() + figure.label[1:], more)


def _table_view(table: Table) -> TableView:
    drawing = draw(table)
    ident = drawing.id if drawing else f"table-{table.id}"
    columns = table.people_columns
    return TableView(ident, table.title, table.note, drawing,
                     [table.head.label, *(c.label for c in columns)],
                     [_cells(row, columns) for row in table.rows], table.half)


def _local_time(document: Document) -> str:
    local = document.generated_at.astimezone(ZoneInfo(document.timezone))
    return f"{local.day} {local:%B %Y, %H:%M}"


def render_html(document: Document, template_dirs: Sequence[Path]) -> str:
    env = Environment(loader=FileSystemLoader(list(template_dirs)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _svg_number
    return env.get_template(HTML_TEMPLATE).render(html_context(document))


def _svg_number(value: float) -> str:
    """Coordinates with at most one decimal, no trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
