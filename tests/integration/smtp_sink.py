"""An in-process SMTP sink for tests: aiosmtpd on a free loopback port.

It records every message it accepts (envelope and bytes) and can be told to
refuse mail with any SMTP reply, at ``MAIL``, ``RCPT`` or ``DATA``, to test
relays that say ``451`` or ``550``. It can speak STARTTLS or implicit TLS
with a self-signed certificate, and ask for AUTH.

As a context manager::

    with SmtpSink() as sink:
        send_something(sink.host, sink.port)
        [delivery] = sink.wait_for(1)

As a pytest fixture (``smtp_sink``, plus ``tls_cert`` for TLS tests), in a
test module::

    from tests.integration.smtp_sink import smtp_sink_fixture  # noqa: F401
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

Stage = Literal["mail", "rcpt", "data"]
TlsMode = Literal["none", "starttls", "implicit"]

DEFAULT_TEXTS = {
    421: "4.3.2 Service not available, closing channel",
    450: "4.2.1 Mailbox unavailable, try again later",
    451: "4.3.0 Temporary failure, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.7.1 Message refused",
    551: "5.1.6 User not local",
    552: "5.3.4 Message too big",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.6.0 Transaction failed",
}


@dataclass(frozen=True)
class Delivery:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    login: str | None  # the AUTH user name, when the client logged in

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class Refusal:
    """Answer ``code text`` at ``stage`` (for ``rcpt``: only to ``recipients``, if given)."""

    code: int
    text: str
    stage: Stage
    recipients: frozenset[str] = frozenset()

    def applies_to(self, stage: Stage, address: str | None = None) -> bool:
        if stage != self.stage:
            return False
        return not self.recipients or (address or "").lower() in self.recipients

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True)
class CertFiles:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1``."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts (only) this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_self_signed_cert(directory: Path) -> CertFiles | None:
    """Make a certificate with ``openssl req``; None when openssl is unavailable."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, check=False, timeout=60)
    return CertFiles(cert=cert, key=key) if done.returncode == 0 else None


class _Handler:
    """aiosmtpd handler: consults the sink's refusals, records what it accepts."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refusal = self.sink.refusal_for("mail")
        if refusal is not None:
            return refusal.line
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refusal = self.sink.refusal_for("rcpt", address)
        if refusal is not None:
            return refusal.line
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self.sink.refusal_for("data")
        if refusal is not None:
            return refusal.line
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        delivery = Delivery(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content),
            tls=session.ssl is not None or self.sink.tls == "implicit",
            login=login,
        )
        self.sink.record(delivery)
        return "250 2.0.0 OK: queued"


class _FreePortController(Controller):
    """A Controller that binds port 0 and keeps the port the OS chose."""

    def _create_server(self) -> Any:
        return self._bind()

    async def _bind(self) -> Any:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server


@dataclass
class SmtpSink:
    """An SMTP server on ``host``:``port`` (chosen when started) that records mail."""

    host: str = "127.0.0.1"
    tls: TlsMode = "none"
    cert: CertFiles | None = None
    auth: tuple[str, str] | None = None  # (user, password) the sink accepts
    port: int = 0
    _deliveries: list[Delivery] = field(default_factory=list, repr=False)
    _refusals: list[Refusal] = field(default_factory=list, repr=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _controller: Controller | None = field(default=None, repr=False)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> SmtpSink:
        if self.tls != "none" and self.cert is None:
            raise ValueError("a TLS sink needs cert=CertFiles(...)")
        controller = _FreePortController(
            _Handler(self), hostname=self.host, port=0, **self._server_options()
        )
        controller.start()
        self._controller = controller
        self.port = controller.port
        return self

    def _server_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.tls == "implicit":
            options["ssl_context"] = self.cert.server_context()  # type: ignore[union-attr]
        elif self.tls == "starttls":
            options["tls_context"] = self.cert.server_context()  # type: ignore[union-attr]
            options["require_starttls"] = True
        if self.auth is not None:
            options.update(
                authenticator=self._authenticate, auth_require_tls=False, auth_required=True
            )
        return options

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- behaviour -------------------------------------------------------------

    def refuse(
        self,
        code: int,
        text: str | None = None,
        *,
        at: Stage = "data",
        recipients: Collection[str] = (),
    ) -> None:
        """Answer ``code`` at ``at`` from now on (``recipients`` narrows ``rcpt``)."""
        line = text or DEFAULT_TEXTS.get(code, "Refused by the test sink")
        refusal = Refusal(code, line, at, frozenset(r.lower() for r in recipients))
        with self._changed:
            self._refusals.append(refusal)

    def accept(self) -> None:
        """Forget every refusal: accept everything again."""
        with self._changed:
            self._refusals.clear()

    def refusal_for(self, stage: Stage, address: str | None = None) -> Refusal | None:
        with self._changed:
            return next((r for r in self._refusals if r.applies_to(stage, address)), None)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            self.auth is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    # -- what arrived ----------------------------------------------------------

    def record(self, delivery: Delivery) -> None:
        with self._changed:
            self._deliveries.append(delivery)
            self._changed.notify_all()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return list(self._deliveries)

    def clear(self) -> None:
        with self._changed:
            self._deliveries.clear()

    def wait_for(self, count: int = 1, timeout: float = 60.0) -> list[Delivery]:
        """Block until ``count`` messages arrived; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} message(s), got {len(self._deliveries)}"
                    )
                self._changed.wait(remaining)
            return list(self._deliveries)


@pytest.fixture(name="smtp_sink")
def smtp_sink_fixture() -> Iterator[SmtpSink]:
    """A plain sink, stopped after the test."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(name="tls_cert", scope="session")
def tls_cert_fixture(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    """A self-signed certificate; skips the test when none can be made."""
    cert = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    if cert is None:
        pytest.skip("openssl is not available to make a test certificate")
    return cert
