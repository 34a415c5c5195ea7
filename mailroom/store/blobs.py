"""Content-addressed file store for attachment bytes.

A blob lives at ``root/ab/cd/<sha256>``, named by the SHA-256 of its content,
so storing the same attachment twice costs nothing and a name can never be
chosen by a sender. Writes go to a temporary file in the same directory, are
fsynced and renamed into place (``os.replace``), so a reader never sees half
a blob. Every path is opened relative to a directory descriptor with
``O_NOFOLLOW``: a symlink planted inside the store cannot redirect a read or
a write outside it. Folders are 0700 and files 0600 whatever the umask
(:mod:`mailroom.private`). Pure filesystem (POSIX), no database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mailroom.private import DIR_MODE, create_private_file, make_private_dir

_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class BlobStore:
    """Blobs under ``root``, addressed by the hex SHA-256 of their bytes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its SHA-256 hex digest."""
        sha256 = hashlib.sha256(data).hexdigest()
        with self._directory(sha256, create=True) as dir_fd:
            if _size(sha256, dir_fd) != len(data):
                _write_atomically(dir_fd, sha256, data)
        return sha256

    def get(self, sha256: str) -> bytes:
        """The bytes of a blob; ``FileNotFoundError`` if it is not stored."""
        with self.open(sha256) as handle:
            return handle.read()

    def open(self, sha256: str) -> BinaryIO:
        """A binary file object reading the blob (caller closes it)."""
        with self._directory(sha256, create=False) as dir_fd:
            fd = os.open(sha256, _READ_FLAGS, dir_fd=dir_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise FileNotFoundError(f"blob {sha256} is not a regular file")
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def exists(self, sha256: str) -> bool:
        try:
            with self._directory(sha256, create=False) as dir_fd:
                return _size(sha256, dir_fd) is not None
        except (FileNotFoundError, NotADirectoryError):
            return False

    def delete(self, sha256: str) -> bool:
        """Remove a blob; False if it was not there."""
        try:
            with self._directory(sha256, create=False) as dir_fd:
                os.unlink(sha256, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def path_for(self, sha256: str) -> Path:
        """``root/ab/cd/<sha256>``; ``ValueError`` unless 64 lower-case hex digits."""
        _check(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    @contextlib.contextmanager
    def _directory(self, sha256: str, *, create: bool) -> Iterator[int]:
        """A descriptor for ``root/ab/cd``, reached without following symlinks."""
        _check(sha256)
        if create:
            make_private_dir(self.root)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in (sha256[:2], sha256[2:4]):
                child = _subdirectory(fd, name, create)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)


def _check(sha256: object) -> None:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r:.80}")


def _subdirectory(parent_fd: int, name: str, create: bool) -> int:
    """Open (or make, 0700) subdirectory ``name`` of ``parent_fd``, never via a symlink."""
    created = False
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, DIR_MODE, dir_fd=parent_fd)
            created = True
            os.fsync(parent_fd)
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError as exc:  # ELOOP: O_NOFOLLOW refused a symlink
        raise NotADirectoryError(f"{name!r} in the blob store is not a directory") from exc
    if created:
        os.fchmod(fd, DIR_MODE)  # the umask may have taken bits away
    return fd


def _size(name: str, dir_fd: int) -> int | None:
    """Size of regular file ``name``, or None if absent (or not a regular file)."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _write_atomically(dir_fd: int, name: str, data: bytes) -> None:
    temporary = f".tmp-{name[:16]}-{secrets.token_hex(8)}"
    fd = create_private_file(temporary, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb", closefd=True) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)
