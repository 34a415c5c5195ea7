"""The seven parts of the benchmark, each returning rows of the table.

Every part takes the shared :class:`Context` (scratch directory, corpus,
options) and returns :class:`~bench.report.Figure` rows; ``bench.run`` calls
them in order and keeps going when one fails.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import console, door, hostile, measure, memory, slow_inputs
from bench.corpus import ThreadTail, generate_sample
from bench.env import Site, site
from bench.history import seed_history, threads_for
from bench.report import Figure, megabytes, rate_text
from bench.smtp_load import percentile
from mailroom.addresses import make_reply_address
from mailroom.app import App
from mailroom.runtime.ingest import ingest_paths
from mailroom.settings import Settings

INGEST_FLOOR_SHARE = 0.5  # ingest CPU per message at most 2 x the parse floor's
INGEST_STATEMENTS = 8  # SQL statements per message on PostgreSQL
HISTORY_RATIO = 1.2
SMTP_RATE_SHARE = 0.6
SMTP_P99_FACTOR = 2.0
MBOX_RSS_LIMIT = 300e6
ATTACHMENT_RSS_FACTOR = 6.0
HOSTILE_WRITE_LIMIT = 1.0  # seconds: the longest a message may keep the doors waiting
SLOW_INPUT_LIMIT = 1.0  # CPU seconds for any one input that once backtracked
CORPUS_PARSE_LIMIT = 1.0  # CPU seconds to parse any one message of the shared corpora


@dataclass(frozen=True)
class Options:
    corpus: int = 600
    sample: int = 200
    small_history: int = 1_000
    large_history: int = 100_000
    history_backends: tuple[str, ...] = ("sqlite", "postgresql")
    smtp_clients: int = 20
    smtp_seconds: float = 4.0
    smtp_rounds: int = 3
    mbox_bytes: int = 1_000_000_000
    profile: bool = False


@dataclass
class Context:
    workdir: Path
    options: Options
    backends: tuple[str, ...]
    corpus: list[bytes]
    mail_dir: Path
    floor: measure.Rate | None = None
    reference: measure.Rate | None = None  # mail-parser's parse_from_bytes
    notes: list[str] = field(default_factory=list)

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def backend_label(backend: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend]


# --- 1. parse-only floor ---------------------------------------------------------------


def parse_section(ctx: Context) -> list[Figure]:
    floor = measure.parse_rate(ctx.corpus)
    reference = measure.mailparser_rate(ctx.corpus)
    ctx.floor, ctx.reference = floor, reference
    size = megabytes(floor.size)
    return [
        Figure(f"parse-only: parse_message ({floor.count} msgs, {size})",
               f"{rate_text(floor.per_second, floor.megabytes_per_second)}; "
               f"CPU {floor.cpu_ms:.1f} ms/msg", "floor", data=_rate_data(floor)),
        Figure("parse-only: mailparser.parse_from_bytes (reference)",
               f"{rate_text(reference.per_second, reference.megabytes_per_second)}; "
               f"CPU {reference.cpu_ms:.1f} ms/msg", "-", data=_rate_data(reference)),
    ]


def _rate_data(rate: measure.Rate) -> dict[str, Any]:
    return {"messages": rate.count, "bytes": rate.size, "seconds": round(rate.seconds, 3),
            "cpu_seconds": round(rate.cpu, 3), "per_second": round(rate.per_second, 2)}


# --- 2. full ingest ----------------------------------------------------------------------


def ingest_section(ctx: Context) -> list[Figure]:
    """Per backend: CPU time per message (user + system of this process) beside the
    floor's, which is the target; wall time the same way; SQL statements per message."""
    floor = ctx.floor
    assert floor is not None, "the parse section runs first"
    figures = []
    for backend in ctx.backends:
        with site(backend, ctx.scratch(f"ingest-{backend}")) as where:
            rate, summary = measure.ingest_rate(where, ctx.mail_dir, ctx.corpus)
        if ctx.options.profile and backend == "sqlite":
            _profile_ingest(ctx)
        label, on_sqlite = backend_label(backend), backend == "sqlite"
        cpu_share = floor.cpu / rate.cpu if rate.cpu else 0.0
        wall_share = rate.per_second / floor.per_second
        per_message = rate.statements / rate.count if rate.count else 0.0
        data = _rate_data(rate) | {
            "share_of_floor": round(wall_share, 3), "cpu_share_of_floor": round(cpu_share, 3),
            "cpu_ms_per_message": round(rate.cpu_ms, 2), "floor_cpu_ms": round(floor.cpu_ms, 2),
            "statements_per_message": round(per_message, 2), "outcomes": summary}
        if ctx.reference is not None and rate.cpu:
            data["cpu_share_of_mailparser"] = round(ctx.reference.cpu / rate.cpu, 3)
        figures += [
            Figure(f"mailroom ingest, {label}: CPU/msg",
                   f"{rate.cpu_ms:.1f} ms vs floor {floor.cpu_ms:.1f} ms = {cpu_share:.2f} x floor",
                   f">= {INGEST_FLOOR_SHARE} x floor" if on_sqlite else "-",
                   cpu_share >= INGEST_FLOOR_SHARE if on_sqlite else None, data=data),
            Figure(f"mailroom ingest, {label}: wall/msg",
                   f"{rate.wall_ms:.1f} ms vs floor {floor.wall_ms:.1f} ms = {wall_share:.2f} x "
                   f"floor ({rate_text(rate.per_second)})", "-"),
            Figure(f"mailroom ingest, {label}: SQL statements/msg", f"{per_message:.1f}",
                   "-" if on_sqlite else f"<= {INGEST_STATEMENTS}",
                   None if on_sqlite else per_message <= INGEST_STATEMENTS),
        ]
    return figures


def _profile_ingest(ctx: Context) -> None:
    """With ``--profile``: pyinstrument over a second ingest (not the measured one)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        ctx.notes.append("--profile: pyinstrument is not installed; no profile written")
        return
    again = door.REPO / "bench" / "results" / "profile-ingest-sqlite.txt"
    with site("sqlite", ctx.scratch("profile")) as fresh:
        app = fresh.app()
        profiler = Profiler(interval=0.001)
        profiler.start()
        ingest_paths(app, [str(ctx.mail_dir)])
        profiler.stop()
        app.close()
    again.parent.mkdir(parents=True, exist_ok=True)
    again.write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")
    ctx.notes.append(f"ingest profile (SQLite, {len(ctx.corpus)} messages): {again}")


# --- 3. history growth -------------------------------------------------------------------


def history_section(ctx: Context) -> list[Figure]:
    figures = []
    for backend in ctx.options.history_backends:
        if backend in ctx.backends:
            figures.append(_history_on(ctx, backend))
    return figures


def _history_on(ctx: Context, backend: str) -> Figure:
    opts = ctx.options
    sizes = {"small": opts.small_history, "large": opts.large_history}
    with contextlib.ExitStack() as stack:
        sites = {name: stack.enter_context(site(backend, ctx.scratch(f"history-{backend}-{name}")))
                 for name in sizes}
        for name, where in sites.items():
            app = where.app()
            seed_history(app.engine, sizes[name])
            app.close()
        sample = _history_sample(sites["small"].settings, opts)
        with _apps(sites) as apps:
            costs = measure.history_cost(apps, sample)
    small, large = costs["small"], costs["large"]
    ratio = large.median / small.median
    return Figure(
        f"ingest cost/msg, {opts.small_history:,} vs {opts.large_history:,} stored, "
        f"{backend_label(backend)}",
        f"{small.median * 1000:.1f} vs {large.median * 1000:.1f} ms (median) = {ratio:.2f}x",
        f"<= {HISTORY_RATIO}x", ratio <= HISTORY_RATIO,
        data={"sample": len(sample), "measured": len(small.times),
              "median_ms": [round(small.median * 1000, 2), round(large.median * 1000, 2)],
              "mean_ms": [round(small.mean * 1000, 2), round(large.mean * 1000, 2)],
              "mean_ratio": round(large.mean / small.mean, 3), "median_ratio": round(ratio, 3),
              "outcomes": [small.outcomes, large.outcomes]})


def _history_sample(settings: Settings, opts: Options) -> list[bytes]:
    """New cases and replies to cases that exist in both histories."""
    tails: list[ThreadTail] = [t.tail() for t in threads_for(opts.small_history)]
    addresses = {t.ticket_id: make_reply_address(
        local=settings.local_part, domain=settings.domain, kind="t", ident=t.ticket_id,
        role="r", secret=settings.secret) for t in tails}
    return generate_sample(opts.sample, tails, addresses)


@contextlib.contextmanager
def _apps(sites: dict[str, Site]) -> Iterator[dict[str, App]]:
    apps = {name: where.app() for name, where in sites.items()}
    try:
        yield apps
    finally:
        for app in apps.values():
            app.close()


# --- the staff console over a large history ----------------------------------------------


def console_section(ctx: Context) -> list[Figure]:
    """One row per page and database: its p95 (and median) server time against its
    target, beside the same queries run directly through the engine."""
    figures = []
    for backend in ctx.backends:
        with site(backend, ctx.scratch(f"console-{backend}")) as where:
            app = where.app()
            try:
                began = time.perf_counter()
                threads = seed_history(app.engine, ctx.options.large_history)
                seeded = time.perf_counter() - began
                timed = console.time_pages(app, ctx.options.large_history)
            finally:
                app.close()
        label = (f"console at {ctx.options.large_history:,} messages in {threads:,} cases, "
                 f"{backend_label(backend)}")
        for page in timed:
            figures.append(Figure(
                f"{label}: {page.name}",
                f"p95 {_ms(page.p95)} (median {_ms(page.median)}); "
                f"direct query p95 {_ms(page.direct_p95)} (median {_ms(page.direct_median)})",
                f"p95 < {page.target * 1000:.0f} ms",
                page.status == 200 and page.p95 < page.target,
                data={"seed_seconds": round(seeded, 1), "cases": threads, "page": page.name,
                      "path": page.path, "status": page.status,
                      "repeats": console.REPEATS, "median_ms": round(page.median * 1000, 1),
                      "p95_ms": round(page.p95 * 1000, 1),
                      "direct_median_ms": round(page.direct_median * 1000, 1),
                      "direct_p95_ms": round(page.direct_p95 * 1000, 1)}))
    return figures


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# --- 4. the SMTP door --------------------------------------------------------------------


def smtp_section(ctx: Context) -> list[Figure]:
    opts = ctx.options
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], **{b: [] for b in ctx.backends}}
    with contextlib.ExitStack() as stack:
        ports = {"bare": stack.enter_context(door.bare_server(36 * 1024 * 1024))}
        for backend in ctx.backends:
            where = stack.enter_context(site(backend, ctx.scratch(f"smtp-{backend}")))
            ports[backend] = stack.enter_context(door.mailroom_door(
                where, clients=opts.smtp_clients))
        for _ in range(opts.smtp_rounds):  # alternate, so load changes hit all alike
            for name, port in ports.items():
                runs[name].append(door.run_load(port, ctx.mail_dir, clients=opts.smtp_clients,
                                                seconds=opts.smtp_seconds))
    pooled = {name: _pool(results) for name, results in runs.items()}
    return _smtp_figures(pooled, opts.smtp_clients)


def _pool(results: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    seconds = sum(r["seconds"] for r in results)
    codes: dict[str, int] = {}
    for result in results:
        for code, n in result["codes"].items():
            codes[code] = codes.get(code, 0) + n
    return {"messages": len(latencies), "seconds": round(seconds, 2),
            "rate": len(latencies) / seconds if seconds else 0.0,
            "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99),
            "codes": codes, "errors": [e for r in results for e in r["errors"]][:5],
            "client_cpu_share": round(max(r["client_cpu_share"] for r in results), 3)}


def _smtp_figures(pooled: dict[str, dict[str, Any]], clients: int) -> list[Figure]:
    bare = pooled.pop("bare")
    figures = [Figure(f"SMTP, {clients} clients: bare aiosmtpd (stores nothing)",
                      _smtp_text(bare), "reference", data=bare)]
    for backend, result in pooled.items():
        share = result["rate"] / bare["rate"] if bare["rate"] else 0.0
        factor = result["p99_ms"] / bare["p99_ms"] if bare["p99_ms"] else float("inf")
        label = f"SMTP, {clients} clients: mailroom door, {backend_label(backend)}"
        figures += [
            Figure(f"{label}: rate", f"{_smtp_text(result)}; {share:.2f} x bare",
                   f">= {SMTP_RATE_SHARE} x bare", share >= SMTP_RATE_SHARE, data=result),
            Figure(f"{label}: p99", f"{result['p99_ms']:.0f} ms = {factor:.2f} x bare p99",
                   f"<= {SMTP_P99_FACTOR:.0f} x bare p99", factor <= SMTP_P99_FACTOR),
        ]
    return figures


def _smtp_text(result: dict[str, Any]) -> str:
    return (f"{result['rate']:,.0f} msg/s, p50 {result['p50_ms']:.0f} ms, "
            f"p99 {result['p99_ms']:.0f} ms")


# --- 5. the hostile message ---------------------------------------------------------------


def hostile_section(ctx: Context) -> list[Figure]:
    """The 20,000-attachment message: its full parse, and the longest write transaction
    while the pipeline processes it (with the default limits, and with the part limit
    raised so that it is parsed in full before the attachment limit turns it away)."""
    raw = hostile.hostile_message()
    parse = min(hostile.parse_seconds(raw) for _ in range(2))
    name = f"hostile message ({hostile.ATTACHMENTS:,} attachments, {megabytes(len(raw))})"
    figures = [Figure(f"{name}: parse_message, in full", f"{parse:.2f} s", "reference",
                      data={"seconds": round(parse, 3), "bytes": len(raw)})]
    variants = {"default limits": {}, "max_mime_parts raised": {"max_mime_parts": 30_000}}
    for backend in ctx.backends:
        for label, limits in variants.items():
            directory = ctx.scratch(f"hostile-{backend}-{len(limits)}")
            with site(backend, directory, limits=limits) as where:
                app = where.app()
                try:
                    done = hostile.longest_write(app, raw)
                finally:
                    app.close()
            figures.append(Figure(
                f"{name}: longest write transaction, {backend_label(backend)}, {label}",
                f"{done.longest_write * 1000:.1f} ms (process_item {done.seconds:.2f} s, "
                f"{done.outcome})", f"<= {HOSTILE_WRITE_LIMIT:.0f} s",
                done.longest_write <= HOSTILE_WRITE_LIMIT,
                data={"longest_write_ms": round(done.longest_write * 1000, 2),
                      "process_item_seconds": round(done.seconds, 3),
                      "transactions": done.transactions, "outcome": done.outcome,
                      "error": done.error}))
    return figures


# --- 6. slow inputs ----------------------------------------------------------------------


def slow_inputs_section(ctx: Context) -> list[Figure]:
    """The inputs that once made a parser quadratic, and the slowest real message to parse:
    CPU time, so that other work on the machine does not count."""
    timed = slow_inputs.pathological()
    worst = max(timed, key=lambda t: t.seconds)
    figures = [Figure(
        f"slow inputs ({len(timed)}, tests/pathological.py): the slowest, CPU",
        f"{worst.seconds * 1000:.1f} ms ({worst.name})", f"<= {SLOW_INPUT_LIMIT:.0f} s",
        worst.seconds <= SLOW_INPUT_LIMIT,
        data={t.name: round(t.seconds * 1000, 2) for t in timed})]
    parsed = slow_inputs.corpus_parses()
    if not parsed:
        ctx.notes.append("shared corpora absent: their parse times were not measured")
        return figures
    slowest = sorted(parsed, key=lambda t: t.seconds, reverse=True)
    figures.append(Figure(
        f"parse_message, slowest of {len(parsed)} corpus messages, CPU",
        f"{slowest[0].seconds * 1000:.1f} ms ({slowest[0].name})",
        f"<= {CORPUS_PARSE_LIMIT:.0f} s", slowest[0].seconds <= CORPUS_PARSE_LIMIT,
        data={"total_seconds": round(sum(t.seconds for t in parsed), 2),
              "slowest_ms": {t.name: round(t.seconds * 1000, 2) for t in slowest[:10]}}))
    return figures


# --- 7. peak memory ------------------------------------------------------------------------


def memory_section(ctx: Context) -> list[Figure]:
    return [_floor_peak(ctx), _mbox_peak(ctx), _attachment_peak(ctx)]


def _floor_peak(ctx: Context) -> Figure:
    path = ctx.scratch("memory-floor") / "one.eml"
    path.write_bytes(ctx.corpus[0])
    with site("sqlite", ctx.scratch("memory-floor/site")) as where:
        peak = memory.ingest_peak(where, path)
    return Figure("peak RSS, mailroom ingest of one small message (baseline)",
                  megabytes(peak.rss_bytes), "reference", data=_peak_data(peak))


def _mbox_peak(ctx: Context) -> Figure:
    scratch = ctx.scratch("memory-mbox")
    box = memory.write_mbox(scratch / "big.mbox", ctx.options.mbox_bytes)
    try:
        with site("sqlite", scratch / "site") as where:
            peak = memory.ingest_peak(where, box.path)
    finally:
        box.path.unlink(missing_ok=True)
    return Figure(
        f"peak RSS, mailroom ingest of a {megabytes(box.size)} mbox ({box.messages} msgs, "
        f"largest {megabytes(box.largest)})",
        f"{megabytes(peak.rss_bytes)} ({box.size / peak.seconds / 1e6:.1f} MB/s)",
        f"< {megabytes(MBOX_RSS_LIMIT)}", peak.exit_code == 0 and peak.rss_bytes < MBOX_RSS_LIMIT,
        data=_peak_data(peak) | {"mbox_bytes": box.size, "messages": box.messages,
                                 "largest_message": box.largest})


def _attachment_peak(ctx: Context) -> Figure:
    scratch = ctx.scratch("memory-attachment")
    size = memory.write_attachment_message(scratch / "attachment.eml")
    with site("sqlite", scratch / "site") as where:
        peak = memory.ingest_peak(where, scratch / "attachment.eml")
    factor = peak.rss_bytes / size
    return Figure(
        f"peak RSS, one message with a 25 MB attachment ({megabytes(size)})",
        f"{megabytes(peak.rss_bytes)} = {factor:.1f} x message size",
        f"< {ATTACHMENT_RSS_FACTOR:.0f} x message size",
        peak.exit_code == 0 and factor < ATTACHMENT_RSS_FACTOR,
        data=_peak_data(peak) | {"message_bytes": size, "factor": round(factor, 2)})


def _peak_data(peak: memory.Peak) -> dict[str, Any]:
    return {"rss_bytes": peak.rss_bytes, "seconds": round(peak.seconds, 2),
            "exit_code": peak.exit_code, "output": peak.output[-500:]}


def quiet_logs() -> None:
    """Outcome logs at INFO would flood the terminal; warnings still show."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
