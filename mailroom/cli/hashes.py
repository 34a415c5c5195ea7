"""``mailroom hashes import FILE | list | remove HASH``: the safeguarding hash blocklist.

- ``import FILE [--note TEXT] [--json]`` adds a hash list (CSV: hex SHA-256 or
  MD5 in the first column, told apart by length; an optional header row; an
  optional note in the second column) and flags the cases that already hold one
  of its files. It prints how many were added, already listed and rejected,
  with the line number of each rejected line. Exit 0 when every line was read;
  1 when some were rejected (the others are imported: fix those lines and import
  the file again, which adds nothing twice) or the file cannot be read.
- ``list [--source case|import|command] [--json]``: every entry, oldest first,
  with where it came from, when and by whom.
- ``remove HASH [--reason TEXT]``: an admin's correction, recorded as an event.
  Exit 1 when the hash is not listed, 2 when HASH is not a SHA-256 or MD5.

Each runs in one transaction: an import that fails half-way adds nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailroom.cases.safeguarding import import_hash_list, remove_listed_hash
from mailroom.cli.context import cli_actor, open_app
from mailroom.cli.options import add_json
from mailroom.cli.output import EXIT_ERROR, EXIT_OK, emit
from mailroom.errors import MailroomError, UsageError
from mailroom.store.db import unavailable_as_store_error
from mailroom.store.hashes import SOURCES, entry_view, hash_kind, list_entries


def register(sub: Any) -> None:
    hashes = sub.add_parser(
        "hashes", help="the hash blocklist: files never forwarded, in any case"
    ).add_subparsers(dest="hashes_command")
    hashes.required = True
    imported = hashes.add_parser("import", help="add a CSV list of SHA-256 or MD5 hashes")
    imported.add_argument("file", metavar="FILE")
    imported.add_argument("--note", metavar="TEXT", help="kept with every hash of the file")
    add_json(imported)
    imported.set_defaults(handler=cmd_hashes_import)
    listing = hashes.add_parser("list", help="the listed hashes, oldest first")
    listing.add_argument("--source", choices=SOURCES,
                         help="only the hashes listed this way (default: all)")
    add_json(listing)
    listing.set_defaults(handler=cmd_hashes_list)
    remove = hashes.add_parser("remove", help="take a hash off the list (audited)")
    remove.add_argument("hash", metavar="HASH", help="its SHA-256 or MD5")
    remove.add_argument("--reason", metavar="TEXT", help="why, for the audit trail")
    add_json(remove)
    remove.set_defaults(handler=cmd_hashes_remove)


def cmd_hashes_import(args: argparse.Namespace) -> int:

    lines = read_lines(Path(args.file))
    with open_app(args) as app, unavailable_as_store_error(), app.sessions.begin() as session:
        report = import_hash_list(app.settings, app.blobs, session, lines, clock=app.clock,
                                  origin=args.file, actor=cli_actor(), note=args.note)
    view = {"file": args.file, "added": report.added, "already_listed": report.already_listed,
            "rejected": [{"line": line, "reason": why} for line, why in report.rejected],
            "header": report.header, "cases_flagged": list(report.cases_flagged)}
    emit(view, args.json, import_text)
    if report.rejected:
        lines_named = ", ".join(str(line) for line, _ in report.rejected)
        print(f"mailroom: {len(report.rejected)} line(s) of {args.file} rejected "
              f"(line {lines_named}); the others were imported", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def read_lines(path: Path) -> list[str]:
    """The file's lines (UTF-8, a byte-order mark allowed); one-line errors otherwise."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise MailroomError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise MailroomError(f"{path} is not a UTF-8 text file of hashes") from None
    except OSError as exc:
        raise MailroomError(f"cannot read {path}: {exc.strerror}") from None


def import_text(view: dict[str, Any]) -> str:
    lines = [f"{view['file']}: {view['added']} added, {view['already_listed']} already listed, "
             f"{len(view['rejected'])} rejected"]
    if view["header"]:
        lines.append(f"  line 1 read as a header: {view['header']}")
    lines += [f"  line {r['line']}: rejected: {r['reason']}" for r in view["rejected"]]
    if view["cases_flagged"]:
        lines.append("  cases flagged illegal (they hold a listed file): "
                     + ", ".join(view["cases_flagged"]))
    return "\n".join(lines)


def cmd_hashes_list(args: argparse.Namespace) -> int:

    with open_app(args) as app, app.sessions() as session:
        entries = list_entries(session, args.source)
    emit(entries, args.json, list_text)
    return EXIT_OK


def list_text(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "no hashes listed"
    rows = [f"{'HASH':<64} {'SOURCE':<7} {'CASE':<11} {'ADDED':<25} BY / NOTE"]
    for e in entries:
        shown = e["sha256"] or f"{e['md5']} (MD5)"
        extra = f"  md5 {e['md5']}" if e["sha256"] and e["md5"] else ""
        rows.append(f"{shown:<64} {e['source']:<7} {(e['case'] or '-'):<11} "
                    f"{e['added_at'][:25]:<25} {e['added_by']}"
                    f"{' / ' + e['note'] if e['note'] else ''}{extra}")
    return "\n".join(rows)


def cmd_hashes_remove(args: argparse.Namespace) -> int:

    if hash_kind(args.hash) is None:
        raise UsageError(f"not a SHA-256 (64 hex digits) or MD5 (32) hash: {args.hash!r}")
    with open_app(args) as app, unavailable_as_store_error(), app.sessions.begin() as session:
        entry = remove_listed_hash(session, args.hash, actor=cli_actor(), now=app.now(),
                                   reason=args.reason)
        if entry is None:
            raise MailroomError(f"{args.hash} is not on the blocklist")
        view = entry_view(entry)
    emit(view, args.json, lambda v: f"removed {v['sha256'] or v['md5']} from the blocklist "
                                    f"(listed by {v['added_by']}, source {v['source']})")
    return EXIT_OK
