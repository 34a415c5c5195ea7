"""What mailroom really logs, through the filter ``setup_logging`` installs: the
pipeline and the outbox sender over a relay that refuses some recipients, and the
command line in a process of its own."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailroom.app import App
from mailroom.cli.main import setup_logging
from mailroom.privacy.redaction import own_addresses
from mailroom.sending.sender import send_due
from mailroom.sending.transports import SmtpTransport
from tests.factories import deliver, mail
from tests.integration.smtp_sink import SmtpSink, smtp_sink_fixture  # noqa: F401
from tests.integration.test_cli import run_cli

JO = "jo.smith@school.example"
HELPLINE = "helpline@helpline.example"


@pytest.fixture
def mailroom_log(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """stderr of a mailroom process: ``setup_logging`` where nothing set up logging yet."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = []
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    setup_logging(False, own_addresses(app.settings))
    yield stderr
    root.handlers = saved
    root.setLevel(level)


def test_pipeline_and_sender_log_no_ones_address(app: App, smtp_sink: SmtpSink,
                                                 mailroom_log: io.StringIO) -> None:
    app.transport_override = SmtpTransport("127.0.0.1", smtp_sink.port, timeout=5)
    smtp_sink.refuse(550, "5.1.1 <jo.smith@school.example>: no such user", at="rcpt",
                     recipients=[JO])
    smtp_sink.refuse(550, at="rcpt", recipients=["ben@helpline.example"])
    assert deliver(app, mail(sender=JO, name="Jo Smith")) == "created"
    send_due(app)
    log = mailroom_log.getvalue()
    lines = log.splitlines()
    assert any("failed after 1 attempts: relay refused every recipient: 550 …@school.example: "
               "550 5.1.1 <…@school.example>: no such user" in line for line in lines), log
    assert any("refused some recipients: …@helpline.example: 550" in line for line in lines), log
    assert any("sent outbox" in line and "to …@helpline.example" in line for line in lines), log
    assert "jo.smith" not in log and "ben@" not in log and "anna@" not in log


def test_the_command_line_logs_through_the_filter(tmp_path: Path) -> None:
    """A process of its own: ``mailroom ingest`` then ``mailroom outbox flush``."""
    from tests.factories import build_settings

    build_settings(tmp_path, f"sqlite:///{tmp_path / 'var' / 'mailroom.db'}")
    env = {"MAILROOM_CONFIG": str(tmp_path / "mailroom.toml")}
    # written today: older mail imported from files is not acknowledged
    (tmp_path / "jo.eml").write_bytes(mail(sender=JO, name="Jo Smith", date=datetime.now(UTC)))
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert run_cli("ingest", str(tmp_path / "jo.eml"), env=env).returncode == 0
    flushed = run_cli("outbox", "flush", env=env)
    assert flushed.returncode == 0, flushed.stderr
    assert "(acknowledgement) to …@school.example" in flushed.stderr
    assert "jo.smith" not in flushed.stderr + flushed.stdout


def test_debug_lines_keep_the_address(app: App, mailroom_log: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("mailroom.test").debug("looking at %s", JO)
    logging.getLogger("mailroom.test").info("looked at %s for %s", JO, HELPLINE)
    debug, info = mailroom_log.getvalue().splitlines()[-2:]
    assert debug.endswith(f"looking at {JO}")
    assert info.endswith(f"looked at …@school.example for {HELPLINE}")
