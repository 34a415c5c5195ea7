"""``mailroom backup --out DIR`` and ``mailroom restore DIR`` (:mod:`mailroom.runtime.backup`).

Both read the configuration only; neither needs the daemon stopped for a
backup (SQLite's online backup API, ``pg_dump``). A restore goes into a new
installation: an empty database and attachment folder.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mailroom.cli.context import settings_from
from mailroom.cli.output import EXIT_ERROR, EXIT_OK, emit
from mailroom.runtime.backup import BackupResult, RestoreResult, backup, restore


def register(sub: Any) -> None:
    make = sub.add_parser("backup", help="copy the database, attachments and keys to a folder")
    make.add_argument("--out", required=True, type=Path, metavar="DIR",
                      help="a new (or empty) folder; it is made owner-only (0700)")
    make.add_argument("--json", action="store_true")
    make.set_defaults(handler=cmd_backup)
    back = sub.add_parser("restore", help="restore a backup into an empty database")
    back.add_argument("folder", type=Path, metavar="DIR", help="a folder `mailroom backup` made")
    back.add_argument("--json", action="store_true")
    back.set_defaults(handler=cmd_restore)


def cmd_backup(args: argparse.Namespace) -> int:
    result = backup(settings_from(args), args.out)
    emit(asdict(result), args.json, lambda _data: _backup_text(result))
    return EXIT_OK if result.database_missing is None else EXIT_ERROR


def _backup_text(result: BackupResult) -> str:
    lines = [f"backup in {result.folder}: database ({result.database}, schema {result.schema}), "
             f"{result.attachments} attachment files ({result.attachment_bytes} bytes), secret"
             + (", TOTP key" if result.totp_key else "")]
    if result.database_missing:
        lines.append(f"database NOT included: {result.database_missing}")
    return "\n".join(lines)


def cmd_restore(args: argparse.Namespace) -> int:
    result = restore(settings_from(args), args.folder)
    emit(asdict(result), args.json, lambda _data: _restore_text(result))
    return EXIT_OK


def _restore_text(result: RestoreResult) -> str:
    lines = [f"restored: database ({result.database}, schema {result.schema}), "
             f"{result.attachments} attachment files, secret: {result.secret}"
             + (f", TOTP key: {result.totp_key}" if result.totp_key else "")]
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)
