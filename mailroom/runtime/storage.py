"""What mailroom keeps on disk, tightened at start.

:func:`secure_storage` (called when an App is built, and by ``mailroom
check-config``, which says what it changed) removes the group and other
permission bits of what already exists: ``var/``, the folders mailroom makes
in it, the secret in it, the configured attachment and sent-mail folders and the
TOTP key file when they are inside ``var/``, and the SQLite database's files
wherever they are.
What is missing is made 0700/0600 by whatever needs it first
(:mod:`mailroom.private`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mailroom.private import Tightened, tighten
from mailroom.sending.transports import FileTransport, transport_from_url
from mailroom.settings import Settings
from mailroom.store.db import database_files

# What mailroom creates in var/ (besides the database): see docs/reports-and-data-protection.md.
VAR_FOLDERS = ("attachments", "outbox-sent", "locks", "exports")
VAR_FILES = ("secret",)


def secure_storage(settings: Settings) -> list[Tightened]:
    """Tighten what mailroom keeps, where it exists: ``var/``, its folders and secret, the
    configured attachment and sent-mail folders when they are inside ``var/``, and the
    SQLite database's files. Returns what changed. (What is missing is made 0700/0600
    by whatever needs it first.)"""
    var_dir = Path(settings.var_dir)
    paths = [var_dir, *(var_dir / name for name in (*VAR_FOLDERS, *VAR_FILES))]
    paths += [p for p in (settings.attachments_dir, _sent_folder(settings),
                          settings.totp_key_path)
              if p is not None and _inside(p, var_dir)]
    paths += database_files(settings.database_url)
    changed = []
    for path in dict.fromkeys(Path(os.path.normpath(p)) for p in paths):
        result = tighten(path)
        if result is not None:
            changed.append(result)
    return changed


def _sent_folder(settings: Settings) -> Path | None:
    with contextlib.suppress(ValueError):
        transport = transport_from_url(settings.outbound_url)
        if isinstance(transport, FileTransport):
            return transport.directory
    return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))
    except OSError:
        return False
