"""``/metrics``: what ``mailroom status`` reads, as Prometheus text, to loopback only."""

from __future__ import annotations

from functools import partial

from starlette.testclient import TestClient

from mailroom.app import App
from mailroom.runtime.status import collect_status
from mailroom.web.console import build_console
from tests.factories import deliver, mail

LOOPBACK = ("127.0.0.1", 50000)


def client(app: App, *, host: tuple[str, int] = LOOPBACK, status: bool = True) -> TestClient:
    source = partial(collect_status, app) if status else None
    return TestClient(build_console(app, "http://console", lambda: None, source),
                      base_url="http://console", client=host)


def test_the_status_figures_as_prometheus_text(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(status={"disk_min_free_mb": 0})
    deliver(app, mail(subject="Private subject", body="Private words\n"))
    deliver(app, b"")  # unreadable: bad
    answer = client(app).get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    lines = answer.text.splitlines()
    assert "mailroom_database_up 1.0" in lines
    assert "mailroom_database_schema_current 1.0" in lines
    assert "mailroom_outbox_unsent 2.0" in lines  # the acknowledgement, the notification
    assert 'mailroom_inbox_messages{status="bad"} 1.0' in lines
    assert 'mailroom_job_minutes_since_run{job="escalation_follow_ups"} -1.0' in lines
    for private in ("Private", "teacher@school.example", "helpline@helpline.example"):
        assert private not in answer.text


def test_only_loopback_reads_it_unless_the_settings_name_the_reader(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    assert client(app, host=("10.1.2.3", 40000)).get("/metrics").status_code == 403
    assert client(app, host=("::1", 40000)).get("/metrics").status_code == 200
    named = make_app(web={"listen": "127.0.0.1:0", "metrics_from": ["10.1.2.0/24"]})
    assert client(named, host=("10.1.2.3", 40000)).get("/metrics").status_code == 200
    assert client(named, host=("10.1.3.3", 40000)).get("/metrics").status_code == 403


def test_no_status_source_no_metrics(make_app) -> None:  # type: ignore[no-untyped-def]
    assert client(make_app(), status=False).get("/metrics").status_code == 404
