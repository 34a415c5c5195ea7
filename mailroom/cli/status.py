"""``mailroom status [--json]``: what mailroom is doing and whether an admin is needed.

Exit status 0 when nothing passed its limit (``[status]`` settings), 1 when
something needs an admin (each listed under "needs an admin"), so that a
monitoring check or a cron job can run it as it is.
"""

from __future__ import annotations

import argparse
from typing import Any

from mailroom.cli.context import open_app, settings_from
from mailroom.cli.options import add_json
from mailroom.cli.output import EXIT_ERROR, EXIT_OK, emit
from mailroom.runtime.describe import database_missing
from mailroom.runtime.status import collect_status, disk_status


def register(sub: Any) -> None:
    status = sub.add_parser(
        "status", help="outbox, inbox, IMAP polls, jobs, database and disk; exit 1 when "
                       "something needs an admin")
    add_json(status)
    status.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    missing = database_missing(settings)
    if missing:  # never create a database to look at it
        disk, problems = disk_status(settings)
        report: dict[str, Any] = {"needs_admin": [*problems, missing], "disk": disk,
                                  "database": {"reachable": False}}
    else:
        with open_app(args, check_schema=False) as app:
            report = collect_status(app)
    emit(report, args.json, status_text)
    return EXIT_ERROR if report["needs_admin"] else EXIT_OK


def status_text(report: dict[str, Any]) -> str:
    lines = []
    db = report["database"]
    if db.get("reachable"):
        lines.append(f"database: {db['url']}, schema {db['schema']}"
                     + ("" if db["schema_current"] else " (not current)"))
    disk = report["disk"]
    lines.append(f"disk: {disk['free_mb']} MB free for {disk['data_dir']}")
    if "outbox" in report:
        out = report["outbox"]
        lines.append(f"outbox: {out['unsent']} unsent"
                     + (f", the oldest since {out['oldest_unsent_at']}"
                        if out["oldest_unsent_at"] else "") + f"; {out['failed']} failed")
        inbox = report["inbox"]
        recent = [f"{v} {k.replace('_last_', ' in the last ')}" for k, v in inbox.items()
                  if "_last_" in k]
        lines.append(f"inbox: {inbox['new']} waiting"
                     + (f" since {inbox['oldest_new_at']}" if inbox["oldest_new_at"] else "")
                     + f"; {inbox['bad']} bad, {inbox['shunt']} shunt ({', '.join(recent)})")
        lines += [f"imap {a['account']}: last poll {a['last_poll_at'] or 'never'}"
                  for a in report["imap"]]
        lines += [f"job {j['name']} (every {j['every_minutes']:g} min): last run "
                  f"{j['last_run_at'] or 'never'}" for j in report["jobs"]]
    problems = report["needs_admin"]
    lines.append("needs an admin:" if problems else "nothing needs an admin")
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)
