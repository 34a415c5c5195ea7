"""``mailroom templates list [--json]``: every template, where it is read from, and the
variables it may use (:mod:`mailroom.outbox.catalogue`).

To change a mail, copy the shipped template of the same name into the folder
``paths.templates`` names (relative: in the data directory) and edit it there; it is
read before the shipped one. The variables listed are all a template receives.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from mailroom.cli.context import settings_from
from mailroom.cli.options import add_json
from mailroom.cli.output import EXIT_OK, emit
from mailroom.outbox.catalogue import TemplateInfo, template_catalogue


def register(sub: Any) -> None:
    templates = sub.add_parser("templates", help="the templates mail is written from")
    templates_sub = templates.add_subparsers(dest="templates_command")
    templates_sub.required = True
    listing = templates_sub.add_parser(
        "list", help="every template, where it is read from, and its variables")
    add_json(listing)
    listing.set_defaults(handler=cmd_templates_list)


def cmd_templates_list(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    found = template_catalogue(settings.template_dirs)
    emit([_view(info) for info in found], args.json, _text)
    return EXIT_OK


def _view(info: TemplateInfo) -> dict[str, Any]:
    return {"name": info.name, "formats": info.formats, "source": str(info.source),
            "overridden": info.overridden, "purpose": info.purpose,
            "variables": [asdict(v) for v in info.variables]}


def _text(views: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    listed = [v for view in views for v in view["variables"]]
    name_width = max((len(v["name"]) for v in listed), default=0)
    type_width = max((len(v["type"]) for v in listed), default=0)
    for view in views:
        own = "  (the helpline's own)" if view["overridden"] else ""
        lines.append(f"{view['name']} [{', '.join(view['formats'])}]{own}")
        if view["purpose"]:
            lines.append(f"    {view['purpose']}")
        lines += [f"    {v['name']:<{name_width}}  {v['type']:<{type_width}}  {v['meaning']}"
                  for v in view["variables"]]
    return "\n".join(lines)
