"""Folders and files only mailroom's own user may open: 0700 and 0600.

What mailroom keeps on disk is case material or a key to it: the SQLite
database and its ``-wal``/``-shm`` files, attachments, sent mail (the file
transport), exports, locks, the signing secret. Whatever creates one of them
goes through this module, which sets the mode again after creating it
(``chmod``/``fchmod``): the result does not depend on the umask, so a umask of
000 gives the same 0700/0600 as 077.

At start (:func:`mailroom.runtime.storage.secure_storage`: when an App is built, and
in ``mailroom check-config``, which says what it changed) what already exists with wider
permissions is tightened: ``var/`` itself, the folders mailroom makes in it,
the secret in it, and the SQLite database's files wherever they are. Only the
group and other bits go (0755 becomes 0700, 0644 becomes 0600). Folders are
not walked: with ``var/`` at 0700 nobody else can reach anything below it,
and a large attachment store would make every start slow. A folder the admin
chose outside ``var/`` (``paths.attachments``, a ``file://`` outbound
directory) is created 0700 when mailroom creates it, but never changed once
it exists: it may be shared on purpose. Symbolic links are never followed.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "Tightened",
    "create_private_file",
    "log_tightened",
    "make_private_dir",
    "tighten",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
GROUP_AND_OTHERS = 0o077

log = logging.getLogger("mailroom.private")


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and its missing parents, each 0700; existing ones are left alone."""
    path = Path(path)
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by someone else: theirs to set
        os.chmod(directory, DIR_MODE)  # the umask may have taken bits away
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory")
    return path


def create_private_file(path: str | os.PathLike[str], *, dir_fd: int | None = None) -> int:
    """Create a new file (``FileExistsError`` if there is one), 0600; a descriptor to write."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, FILE_MODE, dir_fd=dir_fd)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True)
class Tightened:
    """A file or folder whose group and other permission bits were removed."""

    path: Path
    before: int
    after: int

    def __str__(self) -> str:
        return f"{self.path} ({self.before:04o} -> {self.after:04o})"


def tighten(path: str | os.PathLike[str]) -> Tightened | None:
    """Remove the group and other bits of ``path``; None when absent, a symlink or already
    private. Opened without following links, so the change lands on what was looked at."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:  # ELOOP: a symlink; EACCES: not ours to read, so not ours to change
        return None
    try:
        info = os.fstat(fd)
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            return None
        before = stat.S_IMODE(info.st_mode)
        if not before & GROUP_AND_OTHERS:
            return None
        after = before & ~GROUP_AND_OTHERS
        os.fchmod(fd, after)
    finally:
        os.close(fd)
    return Tightened(Path(path), before, after)


def log_tightened(changes: Iterable[Tightened]) -> None:
    for change in changes:
        log.warning("permissions tightened: %s; only mailroom's user may open it now", change)
