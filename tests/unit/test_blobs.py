"""The content-addressed attachment store, on a real temporary directory."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from mailroom.store.blobs import BlobStore

DATA = b"%PDF-1.4 evidence\n"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink())


def test_put_returns_the_sha256_and_writes_a_fanned_out_path(store: BlobStore) -> None:
    assert store.put(DATA) == SHA
    path = store.root / SHA[:2] / SHA[2:4] / SHA
    assert store.path_for(SHA) == path
    assert path.read_bytes() == DATA


def test_get_open_exists_delete_round_trip(store: BlobStore) -> None:
    store.put(DATA)
    assert store.exists(SHA)
    assert store.get(SHA) == DATA
    with store.open(SHA) as handle:
        assert handle.read(4) == b"%PDF"
    assert store.delete(SHA) is True
    assert not store.exists(SHA)
    assert store.delete(SHA) is False


def test_missing_blob(store: BlobStore) -> None:
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(FileNotFoundError):
        store.get(missing)


def test_put_is_idempotent_and_leaves_no_temporary_files(store: BlobStore) -> None:
    store.put(DATA)
    first = os.stat(store.path_for(SHA))
    assert store.put(DATA) == SHA
    assert os.stat(store.path_for(SHA)).st_ino == first.st_ino  # not rewritten
    assert files_under(store.root) == [store.path_for(SHA)]


def test_put_repairs_a_truncated_blob(store: BlobStore) -> None:
    store.put(DATA)
    store.path_for(SHA).write_bytes(DATA[:3])
    store.put(DATA)
    assert store.get(SHA) == DATA


def test_empty_blob(store: BlobStore) -> None:
    sha = store.put(b"")
    assert sha == hashlib.sha256(b"").hexdigest()
    assert store.get(sha) == b""


def test_blobs_are_private_to_the_service(store: BlobStore) -> None:
    store.put(DATA)
    assert stat.S_IMODE(os.stat(store.path_for(SHA)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path_for(SHA).parent).st_mode) == 0o700


BAD_NAMES = [
    "../../etc/passwd",
    "A" * 64,
    SHA + "\n",
    SHA[:63],
    SHA + "0",
    "g" * 64,
    "../" + SHA[3:],
    "",
]


@pytest.mark.parametrize(
    "name", BAD_NAMES, ids=["dotdot", "upper", "newline", "short", "long", "nonhex", "rel", "empty"]
)
@pytest.mark.parametrize("method", ["path_for", "get", "open", "exists", "delete"])
def test_names_other_than_sha256_hex_are_refused(store: BlobStore, name: str, method: str) -> None:
    with pytest.raises(ValueError):
        getattr(store, method)(name)


def test_symlinked_directory_inside_the_store_is_not_followed(
    store: BlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir()
    (store.root / SHA[:2]).symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError):
        store.put(DATA)
    assert list(outside.iterdir()) == []
    assert not store.exists(SHA)


def test_symlinked_blob_is_not_read(store: BlobStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    store.put(DATA)
    path = store.path_for(SHA)
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(OSError):
        store.get(SHA)


def test_put_replaces_a_planted_symlink_without_writing_through_it(
    store: BlobStore, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"untouched")
    store.put(b"seed")
    path = store.path_for(SHA)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    store.put(DATA)
    assert target.read_bytes() == b"untouched"
    assert not path.is_symlink()
    assert store.get(SHA) == DATA


def test_large_blob(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024)
    sha = store.put(data)
    assert store.get(sha) == data
