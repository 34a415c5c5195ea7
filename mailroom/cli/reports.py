"""Subcommands for statistics and personal data: ``report``, ``export``, ``erase``,
``retention`` (SPEC sections 9 and 10)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from mailroom.cli.context import open_app
from mailroom.cli.options import add_json
from mailroom.cli.output import EXIT_ERROR, EXIT_OK, emit
from mailroom.errors import MailroomError, UsageError
from mailroom.privacy.dataprotection import (
    EXPORTS_FOLDER,
    erase_requester,
    export_requester,
    find_holdings,
    normalise_address,
)
from mailroom.privacy.retention import apply_retention
from mailroom.reports.cases import case_report
from mailroom.reports.data import Period, build_report
from mailroom.reports.formats import FORMATS, render


def register(sub: Any) -> None:
    report = sub.add_parser("report", help="case statistics for a period (dates inclusive)")
    report.add_argument("--from", dest="start", required=True, type=parse_date, metavar="DATE",
                        help="first day, YYYY-MM-DD, in the helpline's time zone")
    report.add_argument("--to", dest="end", required=True, type=parse_date, metavar="DATE",
                        help="last day (included), YYYY-MM-DD")
    report.add_argument("--format", choices=FORMATS, default="text", help="default text")
    report.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    report.add_argument("--with-accounts", action="store_true",
                        help="list the accounts reported in more than one case (not for "
                             "publication: the report then names accounts)")
    report.set_defaults(handler=cmd_report)

    export = sub.add_parser("export", help="write everything held about one address")
    export.add_argument("--requester", required=True, metavar="ADDRESS")
    export.add_argument("--out", metavar="DIR",
                        help="where to create the export (default: exports in the data "
                             "directory, which erase cleans; elsewhere, delete it by hand)")
    add_json(export)
    export.set_defaults(handler=cmd_export)

    erase = sub.add_parser("erase", help="erase what is held about one address")
    erase.add_argument("--requester", required=True, metavar="ADDRESS")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_json(erase)
    erase.set_defaults(handler=cmd_erase)

    retention = sub.add_parser("retention", help="purge closed cases past the retention period")
    retention.add_argument("--dry-run", action="store_true",
                           help="say what would go, change nothing")
    add_json(retention)
    retention.set_defaults(handler=cmd_retention)


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def cmd_report(args: argparse.Namespace) -> int:

    try:
        period = Period(args.start, args.end)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with open_app(args) as app:
        document = case_report(build_report(app, period, with_accounts=args.with_accounts))
        text = render(document, args.format, app.settings.template_dirs)
    if args.out:
        _write_out(Path(args.out), text)
        print(f"report written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _write_out(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MailroomError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_export(args: argparse.Namespace) -> int:

    with open_app(args) as app:
        default = app.settings.var_dir / EXPORTS_FOLDER
        out = Path(args.out) if args.out else default
        target = export_requester(app, args.requester, out)
    counts = json.loads((target / "export.json").read_text(encoding="utf-8"))["counts"]
    emit({"path": str(target), **counts}, args.json,
         lambda r: f"{r['path']}\n" + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    print(_export_note(out, default), file=sys.stderr)
    return EXIT_OK


def _export_note(out: Path, default: Path) -> str:
    """Who deletes the export once it has been handed over."""
    if out.resolve() == default.resolve():
        return ("note: it holds their personal data: delete it once handed over; "
                "`mailroom erase` deletes it too")
    return (f"note: it holds their personal data and is outside {default}: "
            "`mailroom erase` will not find it, delete it by hand once handed over")


def cmd_erase(args: argparse.Namespace) -> int:

    address = normalise_address(args.requester)
    with open_app(args) as app:
        if not args.yes:
            with app.sessions() as session:
                holdings = find_holdings(session, address)
            confirm(address, len(holdings.requester_tickets), len(holdings.other_tickets))
        result = erase_requester(app, address, actor=admin_actor())
    emit(result.as_dict(), args.json, lambda _: result.summary())
    if result.left_behind:
        print(f"mailroom: erase: {len(result.left_behind)} files could not be deleted "
              "(listed above): delete them by hand", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def confirm(address: str, opened: int, took_part: int) -> None:
    """Ask on the terminal; without one, ``--yes`` is required."""
    if not sys.stdin.isatty():
        raise UsageError("erase: no terminal to confirm on; add --yes")
    print(f"This erases what is held about {address}: {opened} cases they opened are closed "
          f"and purged, their part in {took_part} other cases is removed, with their sent "
          "mail files and exports in the data directory. It cannot be undone.", file=sys.stderr)
    answer = input("Type the address again to confirm: ").strip().lower()
    if answer != address:
        raise MailroomError("erase: not confirmed, nothing changed")


def admin_actor() -> str:
    try:
        return f"admin:{getpass.getuser()}"
    except (KeyError, OSError):
        return "admin"


def cmd_retention(args: argparse.Namespace) -> int:

    with open_app(args) as app:
        result = apply_retention(app, dry_run=args.dry_run)
    emit(result.as_dict(), args.json, lambda _: result.summary())
    return EXIT_OK
