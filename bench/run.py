"""``make bench`` / ``python -m bench.run``: measure everything, print one table.

Runs the parts in order: parse-only floor, full ingest (SQLite and
PostgreSQL), ingest cost with a small and a large history, the SMTP door
under concurrent clients, the hostile message (the longest write transaction
while it is processed), the inputs that once made a parser quadratic, peak
memory. A part that fails becomes an error row; the others still run. The
table is printed and written as JSON to ``bench/results/latest.json``. Scratch
files (databases, the mbox) live in a temporary directory that is removed at
the end; PostgreSQL databases are created and dropped. ``--quick`` runs
everything small, as a smoke test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench import sections
from bench.corpus import generate_corpus
from bench.env import BACKENDS
from bench.measure import write_eml_files
from bench.report import RESULTS, Figure, machine, render_table, write_json
from bench.sections import Context, Options
from tests.pg_server import pg_problem

PARTS: tuple[tuple[str, Callable[[Context], list[Figure]]], ...] = (
    ("parse", sections.parse_section),
    ("ingest", sections.ingest_section),
    ("history", sections.history_section),
    ("smtp", sections.smtp_section),
    ("hostile", sections.hostile_section),
    ("slow-inputs", sections.slow_inputs_section),
    ("memory", sections.memory_section),
    ("console", sections.console_section),
)
QUICK = Options(corpus=120, sample=60, large_history=5_000, smtp_seconds=1.5, smtp_rounds=1,
                mbox_bytes=60_000_000)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--only", nargs="+", choices=[name for name, _ in PARTS],
                        help="run only these parts (parse always runs: it is the floor)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--history-sqlite-only", action="store_true",
                        help="the 1k-vs-100k history test on SQLite only")
    parser.add_argument("--corpus", type=int, help="corpus size (messages, default 600)")
    parser.add_argument("--mbox-mb", type=int, help="size of the large mbox (MB, default 1000)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile a SQLite ingest with pyinstrument (results/)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    opts = QUICK if args.quick else Options()
    if args.corpus:
        opts = replace(opts, corpus=args.corpus)
    if args.mbox_mb:
        opts = replace(opts, mbox_bytes=args.mbox_mb * 1_000_000)
    if args.history_sqlite_only:
        opts = replace(opts, history_backends=("sqlite",))
    return replace(opts, profile=args.profile)


def backends(args: argparse.Namespace, notes: list[str]) -> tuple[str, ...]:
    if args.no_postgres:
        return ("sqlite",)
    problem = pg_problem()
    if problem:
        notes.append(f"PostgreSQL skipped: {problem}")
        return ("sqlite",)
    return BACKENDS


def run_parts(ctx: Context, only: list[str] | None, timings: dict[str, float]) -> list[Figure]:
    figures: list[Figure] = []
    for name, part in PARTS:
        if only and name != "parse" and name not in only:
            continue
        began = time.perf_counter()
        progress(f"{name} ...")
        try:
            figures += part(ctx)
        except Exception as exc:  # noqa: BLE001 - one failed part must not lose the rest
            traceback.print_exc()
            figures.append(Figure(f"{name}: FAILED", f"{type(exc).__name__}: {exc}"[:120],
                                  met=False, failed=True))
        timings[name] = round(time.perf_counter() - began, 1)
        progress(f"{name} done in {timings[name]:.0f}s")
    return figures


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections.quiet_logs()
    started, before = time.perf_counter(), machine()
    load_before = before["load_average"]
    notes: list[str] = []
    opts = options_from(args)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-") as scratch:
        workdir = Path(scratch)
        progress(f"generating a corpus of {opts.corpus} messages in {workdir}")
        corpus = generate_corpus(opts.corpus)
        ctx = Context(workdir, opts, backends(args, notes), corpus,
                      write_eml_files(corpus, workdir / "corpus"), notes=notes)
        figures = run_parts(ctx, args.only, timings)
    total = time.perf_counter() - started
    after = machine()
    context = {"machine_before": before, "machine_after": after, "seconds": round(total, 1),
               "part_seconds": timings, "options": vars(opts), "notes": notes}
    print(render_table(figures))
    print(f"\n{len(corpus)} corpus messages; {total:.0f}s in all ({timings}); "
          f"load average {load_before} before, {after['load_average']} after")
    for note in notes:
        print(f"note: {note}")
    print(f"written to {write_json(figures, context, args.output)}")
    return 1 if any(f.failed for f in figures) else 0  # a missed target is not an error


if __name__ == "__main__":
    sys.exit(main())
