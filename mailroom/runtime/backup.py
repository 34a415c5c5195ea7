"""``mailroom backup`` and ``mailroom restore``: everything a helpline needs back.

A backup is a folder (0700, its files 0600: it holds every case):

- ``manifest.json``: what is in it, the schema revision, when it was made;
- the database: ``mailroom.db``, a copy made with SQLite's online backup API
  (consistent while the daemon writes), or ``database.pgdump``, made by
  ``pg_dump --format=custom`` for PostgreSQL (when ``pg_dump`` is not on the
  PATH the rest is written and the command to run is printed);
- ``attachments/``: the blob store, regular files only (a link planted in the
  store is not followed);
- ``secret``: the key that signs reply addresses. Without it every reply
  address already sent out stops verifying, and replies to them land as new
  cases;
- ``totp.key``: the key the console's second-factor secrets are encrypted with
  (``security.totp_key_file``), when there is one. Without it nobody who set up
  a second factor can sign in to the restored console. It is in the backup
  because a backup is for getting the helpline back, and holds every case and
  the signing secret already: it is as confidential as the data directory. The
  key's use is for the database on its own (a dump, a replica, the database
  server's disks), which holds no secret anyone can make codes with;
- ``mailroom.toml``: the configuration file, for reference (restore does not
  apply it).

The database is copied first, the attachments after it: a blob is written
before the row that names it commits, so every file the copied database
names is in the copy (unless it was erased in between, as it was meant to be).

Restore goes the other way into the configured places, and only into empty
ones: a database with no tables and an attachment folder with no files. It
checks everything before it writes anything. The secret replaces the one a
fresh data directory generated at its first start (``var/secret`` or
``security.secret_file``); a secret given in the configuration or the
environment is not overwritten, and the result says when it differs.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from mailroom import __version__
from mailroom.errors import MailroomError
from mailroom.private import create_private_file, make_private_dir
from mailroom.settings import Settings
from mailroom.store.db import make_engine, normalise_url, unavailable_as_store_error
from mailroom.store.models import StaffUser
from mailroom.store.schema import current_revision, head_revision
from mailroom.web.totp import is_clear

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "mailroom.db"
PG_DUMP_FILE = "database.pgdump"
ATTACHMENTS = "attachments"
SECRET = "secret"
TOTP_KEY = "totp.key"
CONFIG_COPY = "mailroom.toml"


@dataclass
class BackupResult:
    """What a backup holds; ``database_missing`` says how to add the database by hand."""

    folder: str
    database: str
    schema: str | None
    attachments: int
    attachment_bytes: int
    database_missing: str | None = None
    totp_key: bool = False  # the key of the second-factor secrets is in it


@dataclass
class RestoreResult:
    database: str
    schema: str | None
    attachments: int
    secret: str
    totp_key: str | None = None  # where the key of the second-factor secrets went
    notes: list[str] = field(default_factory=list)


# --- backup ------------------------------------------------------------------


def backup(settings: Settings, out: Path) -> BackupResult:
    """Write a backup of ``settings``' helpline into the new or empty folder ``out``."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MailroomError(f"{out} exists and is not an empty folder: choose a new one")
    make_private_dir(out)
    os.chmod(out, 0o700)
    url = make_url(normalise_url(settings.database_url))
    schema = _schema(settings.database_url)
    missing = None
    if url.get_backend_name() == "sqlite":
        database = SQLITE_FILE
        _sqlite_copy(Path(_sqlite_path(url)), out / SQLITE_FILE, create=True)
    else:
        database = PG_DUMP_FILE
        missing = _pg_dump(url, out / PG_DUMP_FILE)
    count, size = _copy_files(settings.attachments_dir, out / ATTACHMENTS)
    _write_private(out / SECRET, settings.secret + b"\n")
    totp_key = _copy_totp_key(settings.totp_key_path, out / TOTP_KEY)
    if settings.source is not None and settings.source.is_file():
        _write_private(out / CONFIG_COPY, settings.source.read_bytes())
    result = BackupResult(str(out), database, schema, count, size, missing, totp_key)
    manifest = {"format": FORMAT, "mailroom": __version__,
                "created": datetime.now(UTC).isoformat(timespec="seconds"), **asdict(result)}
    _write_private(out / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
    return result


def _copy_totp_key(path: Path, target: Path) -> bool:
    """The key file of the second-factor secrets, when there is one (there is none until
    someone sets up a second factor)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise MailroomError(f"cannot read the TOTP key {path}: {exc.strerror}") from None
    _write_private(target, data)
    return True


def _schema(database_url: str) -> str | None:
    engine = make_engine(database_url)
    try:
        with unavailable_as_store_error():
            return current_revision(engine)
    finally:
        engine.dispose()


def _sqlite_path(url: URL) -> str:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise MailroomError(f"cannot back up the SQLite database {url.database!r}: not a file")
    return url.database


def _sqlite_copy(source: Path, target: Path, *, create: bool) -> None:
    """Copy a SQLite database page by page with its online backup API (a consistent
    snapshot, while others write)."""
    if not source.is_file():
        raise MailroomError(f"no SQLite database at {source}")
    if create:
        os.close(create_private_file(target))
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target, timeout=30)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries it
    (a password on a command line is visible to every user in ``ps``)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def pg_dump_command(url: URL, target: Path) -> list[str]:
    conninfo, _env = _libpq(url)
    return ["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
            f"--file={target}", f"--dbname={conninfo}"]


def _pg_dump(url: URL, target: Path) -> str | None:
    """Run ``pg_dump`` into ``target``; the command to run by hand when it is missing."""
    command = pg_dump_command(url, target)
    shown = " ".join(command) + (" (with PGPASSWORD set)" if url.password else "")
    if shutil.which("pg_dump") is None:
        return f"pg_dump not found: install the PostgreSQL client and run: {shown}"
    os.close(create_private_file(target))  # 0600 before pg_dump writes into it
    _conninfo, env = _libpq(url)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MailroomError(f"pg_dump failed: {done.stderr.strip() or done.returncode}")
    return None


def _copy_files(source: Path, target: Path) -> tuple[int, int]:
    """Copy the regular files under ``source`` (links are not followed); (count, bytes)."""
    make_private_dir(target)
    count = size = 0
    for path in _regular_files(source):
        destination = target / path.relative_to(source)
        make_private_dir(destination.parent)
        with path.open("rb") as reader, os.fdopen(create_private_file(destination), "wb") as out:
            shutil.copyfileobj(reader, out)
        count += 1
        size += path.stat().st_size
    return count, size


def _regular_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode) and not name.startswith("."):
                yield path


def _write_private(path: Path, data: bytes) -> None:
    with os.fdopen(create_private_file(path), "wb") as handle:
        handle.write(data)


# --- restore -----------------------------------------------------------------


def restore(settings: Settings, folder: Path) -> RestoreResult:
    """Put the backup in ``folder`` back into the configured (empty) database, attachment
    folder and secret file."""
    manifest = _read_manifest(folder)
    url = make_url(normalise_url(settings.database_url))
    sqlite = url.get_backend_name() == "sqlite"
    _check_restorable(manifest, folder, settings, sqlite)
    if sqlite:
        _sqlite_copy(folder / SQLITE_FILE, Path(_sqlite_path(url)), create=False)
    else:
        _pg_restore(url, folder / PG_DUMP_FILE)
    count, _size = _copy_files(folder / ATTACHMENTS, settings.attachments_dir)
    secret, notes = _restore_secret(settings, (folder / SECRET).read_bytes().strip())
    totp_key = _restore_totp_key(settings, folder / TOTP_KEY, notes)
    schema = _schema(settings.database_url)
    if schema != head_revision():
        notes.append(f"the database is at schema {schema}, this mailroom at {head_revision()}:"
                     " run `mailroom db upgrade`")
    return RestoreResult(manifest["database"], schema, count, secret, totp_key, notes)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise MailroomError(f"{folder} is not a mailroom backup (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise MailroomError(f"cannot read {folder / MANIFEST}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise MailroomError(f"{folder}: backup format {manifest.get('format')!r} is not "
                            f"one this mailroom reads ({FORMAT})")
    return manifest


def _check_restorable(manifest: dict[str, Any], folder: Path, settings: Settings,
                      sqlite: bool) -> None:
    """Everything that would stop the restore, before anything is written."""
    wanted = SQLITE_FILE if sqlite else PG_DUMP_FILE
    if manifest.get("database") != wanted:
        kind = "SQLite" if sqlite else "PostgreSQL"
        raise MailroomError(f"the backup holds {manifest.get('database')}, but database.url "
                            f"is {kind}: restore into the same kind of database")
    for name in (wanted, SECRET):
        if not (folder / name).is_file():
            raise MailroomError(f"{folder / name}: missing from the backup")
    if not sqlite and shutil.which("pg_restore") is None:
        raise MailroomError("pg_restore not found: install the PostgreSQL client")
    engine = make_engine(settings.database_url)
    try:
        with unavailable_as_store_error():
            tables = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise MailroomError("the configured database is not empty: restore only into a new "
                            f"database ({len(tables)} tables found)")
    if any(True for _ in _regular_files(settings.attachments_dir)):
        raise MailroomError(f"{settings.attachments_dir} holds files already: restore only "
                            "into an empty attachment folder")


def _pg_restore(url: URL, dump: Path) -> None:
    conninfo, env = _libpq(url)
    done = subprocess.run(
        ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
         f"--dbname={conninfo}", str(dump)],
        env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MailroomError(f"pg_restore failed: {done.stderr.strip() or done.returncode}")


def _restore_totp_key(settings: Settings, kept: Path, notes: list[str]) -> str | None:
    """Put the backup's TOTP key where this installation keeps it; without one, say whose
    second factor the restored database holds encrypted (they must set it up again)."""
    path = settings.totp_key_path
    if kept.is_file():
        data = kept.read_bytes()
        if path.is_file() and path.read_bytes().strip() != data.strip():
            notes.append(f"{path} held another TOTP key: replaced by the backup's")
        _replace_private(path, data)
        return str(path)
    sealed = _sealed_second_factors(settings.database_url)
    if sealed:
        notes.append(f"the backup holds no {TOTP_KEY}, and the second factor of "
                     f"{', '.join(sealed)} is encrypted with it: remove and add them again "
                     "(`mailroom users remove`, `mailroom users add`) so they set it up anew")
    return None


def _sealed_second_factors(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        with unavailable_as_store_error(), engine.connect() as connection:
            rows = connection.execute(select(StaffUser.address, StaffUser.totp_secret).where(
                StaffUser.totp_secret.is_not(None))).all()
    except SQLAlchemyError:  # a schema too old to have them
        return []
    finally:
        engine.dispose()
    return sorted(address for address, stored in rows if stored and not is_clear(stored))


def _replace_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` 0600 in one step (a temporary file renamed over it)."""
    make_private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.restoring")
    temporary.unlink(missing_ok=True)
    _write_private(temporary, data)
    os.replace(temporary, path)


def _restore_secret(settings: Settings, secret: bytes) -> tuple[str, list[str]]:
    """Write the backup's key where this installation keeps it; or say that the one the
    configuration gives differs."""
    if settings.secret_file is None:
        if settings.secret == secret:
            return "configured (the same)", []
        return "configured (different)", [
            "the secret in the configuration or MAILROOM_SECRET differs from the backup's: "
            "reply addresses sent before the backup will not verify until it is set to "
            f"the content of the backup's {SECRET} file"]
    path = settings.secret_file
    _replace_private(path, secret + b"\n")
    return str(path), []
