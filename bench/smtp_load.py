"""SMTP load client, run in its own process: N concurrent smtplib clients.

``python -m bench.smtp_load --port 2525 --mail-dir DIR --clients 20 --seconds 8``

Each client thread holds one connection (EHLO once) and sends messages from
``DIR`` (``*.eml``, loaded into memory first) round-robin until the time is
up: MAIL FROM, RCPT TO, DATA. The time of a message is taken from the moment
its final ``CRLF . CRLF`` has been handed to the socket to the moment the
server's reply arrives, the "DATA end to 250" the door is judged by. Every
send rewrites the Message-ID so that no two are the same (the door would
otherwise de-duplicate them). One warm-up message per client is not
counted. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import resource
import smtplib
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PERIOD_AT_LINE_START = re.compile(rb"(?m)^\.")
MESSAGE_ID = b"Message-ID: <"


@dataclass
class Tally:
    """What one client saw."""

    latencies: list[float] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    sender: str
    recipient: str
    messages: tuple[bytes, ...]
    deadline_seconds: float


def load_messages(directory: Path) -> tuple[bytes, ...]:
    """Every ``*.eml``, dot-stuffed and ending in CRLF, ready for DATA."""
    out = []
    for path in sorted(directory.glob("*.eml")):
        raw = PERIOD_AT_LINE_START.sub(b"..", path.read_bytes())
        out.append(raw if raw.endswith(b"\r\n") else raw + b"\r\n")
    return tuple(out)


def unique(raw: bytes, serial: int) -> bytes:
    return raw.replace(MESSAGE_ID, MESSAGE_ID + f"load{serial}.".encode(), 1)


def send_one(client: smtplib.SMTP, plan: Plan, raw: bytes, tally: Tally | None) -> None:
    """One transaction on an open connection; time DATA end → reply."""
    client.mail(plan.sender)
    code, _ = client.rcpt(plan.recipient)
    if code != 250:
        raise smtplib.SMTPRecipientsRefused({plan.recipient: (code, b"")})
    code, _ = client.docmd("DATA")
    if code != 354:
        raise smtplib.SMTPDataError(code, b"DATA refused")
    client.send(raw + b".\r\n")
    began = time.perf_counter()
    code, _ = client.getreply()
    if tally is not None:
        tally.latencies.append(time.perf_counter() - began)
        tally.codes[code] = tally.codes.get(code, 0) + 1


def run_client(plan: Plan, serials: itertools.count[int], start: threading.Barrier,
               window: list[float], tally: Tally) -> None:
    passed = False
    try:
        with smtplib.SMTP(plan.host, plan.port, timeout=120) as client:
            client.ehlo("load.bench.example")
            send_one(client, plan, unique(plan.messages[0], next(serials)), None)
            start.wait()
            passed = True
            while time.perf_counter() < window[0] + plan.deadline_seconds:
                serial = next(serials)
                raw = plan.messages[serial % len(plan.messages)]
                send_one(client, plan, unique(raw, serial), tally)
    except threading.BrokenBarrierError:
        tally.errors.append("another client failed to start")
    except (OSError, smtplib.SMTPException) as exc:
        tally.errors.append(f"{type(exc).__name__}: {exc}")
        if not passed:
            start.abort()


def run(plan: Plan, clients: int) -> dict[str, object]:
    """Start the clients together; return rate, latency percentiles and counts."""
    serials = itertools.count()
    window = [0.0]
    start = threading.Barrier(clients + 1)
    tallies = [Tally() for _ in range(clients)]
    threads = [threading.Thread(target=run_client, args=(plan, serials, start, window, t))
               for t in tallies]
    for thread in threads:
        thread.start()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    window[0] = time.perf_counter()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(timeout=120)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - window[0]
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return summarise(tallies, elapsed, cpu)


def summarise(tallies: list[Tally], elapsed: float, cpu: float) -> dict[str, object]:
    """Rate, latency percentiles (and every latency, for pooling runs), reply codes."""
    latencies = sorted(x for t in tallies for x in t.latencies)
    codes: dict[str, int] = {}
    for tally in tallies:
        for code, n in tally.codes.items():
            codes[str(code)] = codes.get(str(code), 0) + n
    return {
        "messages": len(latencies), "seconds": elapsed,
        "rate": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 0.50) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
        "codes": codes, "errors": [e for t in tallies for e in t.errors][:5],
        "client_cpu_share": cpu / elapsed if elapsed else 0.0,
        "latencies_ms": [round(x * 1000, 3) for x in latencies],
    }


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(share * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mail-dir", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--sender", default="load@school.example.org.uk")
    parser.add_argument("--recipient", default="helpline@helpline.example")
    args = parser.parse_args(argv)
    plan = Plan(args.host, args.port, args.sender, args.recipient,
                load_messages(args.mail_dir), args.seconds)
    if not plan.messages:
        print(f"no *.eml in {args.mail_dir}", file=sys.stderr)
        return 2
    json.dump(run(plan, args.clients), sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
