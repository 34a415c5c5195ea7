"""A throwaway self-signed certificate, made by ``openssl``, for 127.0.0.1 and
helpline.example (the test's helpline domain)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI


def self_signed(folder: Path) -> tuple[Path, Path]:
    """``(certificate, key)`` in ``folder``; skips without ``openssl`` (fails in CI)."""
    if shutil.which("openssl") is None:
        if IN_CI:
            pytest.fail("openssl is required in CI")
        pytest.skip("openssl not found (apt-get install openssl)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=helpline.example", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:helpline.example"],
        check=True, capture_output=True, timeout=120)
    return cert, key
