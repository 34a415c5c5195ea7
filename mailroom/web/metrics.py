"""``GET /metrics``: what ``mailroom status`` reads, for Prometheus (prometheus-client).

The figures come from the status report (:func:`mailroom.runtime.status.collect_status`,
handed in by whoever starts the console, since the console sits below the runtime):
outbox depth, oldest unsent and failed messages; inbox waiting, ``bad`` and ``shunt``;
minutes since each IMAP account's last successful poll and each scheduled job's last
run; database reachable and schema current; free disk for the data directory; and how
many limits are passed (``needs_admin``). No case content, address or subject is in
them. Only counts, ages and names of jobs and IMAP accounts.

Who may read it: clients on loopback only (``127.0.0.0/8``, ``::1``), unless
``web.metrics_from`` lists other addresses (a Prometheus server elsewhere). Anyone
else gets 403; the page needs no sign-in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

__all__ = ["StatusSource", "metrics_endpoint", "status_metrics"]

StatusSource = Callable[[], Mapping[str, Any]]
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def status_metrics(status: Mapping[str, Any]) -> Iterator[GaugeMetricFamily]:
    """The gauges of one status report."""
    yield _gauge("mailroom_needs_admin", "limits passed (mailroom status exits 1 when > 0)",
                 len(status.get("needs_admin", [])))
    database = status.get("database", {})
    yield _gauge("mailroom_database_up", "1 when the database answers", bool(database.get(
        "reachable")))
    yield _gauge("mailroom_database_schema_current", "1 when the schema is at the newest "
                 "migration", bool(database.get("schema_current")))
    outbox = status.get("outbox", {})
    yield _gauge("mailroom_outbox_unsent", "outgoing messages not sent yet", outbox.get("unsent"))
    yield _gauge("mailroom_outbox_failed", "outgoing messages given up on", outbox.get("failed"))
    yield _gauge("mailroom_outbox_oldest_wait_minutes", "minutes the oldest unsent message "
                 "has waited (0: none)", outbox.get("oldest_wait_minutes") or 0)
    inbox = status.get("inbox", {})
    inbox_gauge = GaugeMetricFamily("mailroom_inbox_messages", "inbox rows by status",
                                    labels=["status"])
    for name in ("new", "bad", "shunt"):
        if inbox.get(name) is not None:
            inbox_gauge.add_metric([name], float(inbox[name]))
    yield inbox_gauge
    yield _ages("mailroom_imap_minutes_since_poll", "minutes since the account's last "
                "successful poll (-1: never)", "account", status.get("imap", []), "account")
    yield _ages("mailroom_job_minutes_since_run", "minutes since the scheduled job last ran "
                "(-1: never)", "job", status.get("jobs", []), "name")
    disk = status.get("disk", {})
    yield _gauge("mailroom_disk_free_megabytes", "free space for the data directory",
                 disk.get("free_mb"))


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value or 0))


def _ages(name: str, documentation: str, label: str, rows: Iterable[Mapping[str, Any]],
          key: str) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=[label])
    for row in rows:
        ago = row.get("minutes_ago")
        gauge.add_metric([str(row.get(key))], -1.0 if ago is None else float(ago))
    return gauge


class _StatusCollector(Collector):
    def __init__(self, source: StatusSource) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from status_metrics(self.source())


def metrics_endpoint(source: StatusSource, allowed: Iterable[str]
                     ) -> Callable[[Request], Response]:
    """The ``/metrics`` handler: the status as Prometheus text, to allowed clients only."""
    networks = (*LOOPBACK, *(ipaddress.ip_network(a, strict=False) for a in allowed))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(source))

    def metrics(request: Request) -> Response:
        host = request.client.host if request.client else ""
        try:
            client = ipaddress.ip_address(host)
        except ValueError:
            client = None
        if client is None or not any(client in network for network in networks):
            return PlainTextResponse("forbidden\n", status_code=403)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
