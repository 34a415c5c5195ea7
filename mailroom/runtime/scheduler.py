"""Running jobs: once each (``mailroom tick``), or at intervals (APScheduler, in
``mailroom run``). The jobs themselves are listed in :mod:`mailroom.runtime.jobs`.

Each job's own work is claimable (inbox rows and outbox rows are claimed with
``FOR UPDATE SKIP LOCKED`` or a lease, escalations by their due time), so two
processes running the same job never do the same piece twice. Every job run
through :func:`run_job` records when it last ran in ``job_runs`` (``mailroom
status`` shows it); jobs with a long interval (retention) take a lease there
as well, so only one process runs them per interval.

``mailroom tick`` calls :func:`run_due_jobs` once with every job;
``mailroom run`` drives the scheduled ones from APScheduler
(:func:`start_background`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailroom.app import App, Clock
from mailroom.store.db import is_postgres, unavailable_as_store_error
from mailroom.store.models import JobRun

log = logging.getLogger("mailroom.runtime.scheduler")

LEASE = timedelta(minutes=30)


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta  # how often the daemon runs it
    run: Callable[[App], Any]
    gated: bool = False  # True: at most once per `every`, across all processes


def run_job(app: App, job: Job) -> Any:
    """Run one job now, unless it is gated and another process ran it recently."""
    if job.gated and not acquire(app.sessions, app.now(), job):
        return "not due"
    try:
        result = job.run(app)
    finally:
        if job.gated:
            release(app.sessions, app.clock, job)
    if not job.gated:
        record_run(app.sessions, app.clock, job)
    return result


def run_due_jobs(app: App, jobs: Sequence[Job]) -> dict[str, Any]:
    """Every job once, in order (gated ones only when due); the results by job name."""
    results: dict[str, Any] = {}
    for job in jobs:
        try:
            results[job.name] = run_job(app, job)
        except Exception as exc:  # noqa: BLE001 - one failing job never stops the others
            log.exception("job %s failed", job.name)
            results[job.name] = f"error: {type(exc).__name__}: {exc}"
    return results


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire(sessions: sessionmaker[Session], now: datetime, job: Job) -> bool:
    """Take the job's lease when it is due at ``now`` and nobody holds it."""
    with unavailable_as_store_error():
        _ensure_row(sessions, job.name)
        with sessions.begin() as session:
            stmt = select(JobRun).where(JobRun.name == job.name)
            if is_postgres(session):
                stmt = stmt.with_for_update(skip_locked=True)
            row = session.execute(stmt).scalar()
            if row is None or (row.locked_until and row.locked_until > now):
                return False
            if row.last_run_at and row.last_run_at + job.every > now:
                return False
            row.locked_until, row.locked_by = now + LEASE, _holder()
            return True


def release(sessions: sessionmaker[Session], clock: Clock, job: Job) -> None:
    with unavailable_as_store_error(), sessions.begin() as session:
        row = session.get(JobRun, job.name)
        if row is not None:
            row.last_run_at, row.locked_until, row.locked_by = clock(), None, None


def record_run(sessions: sessionmaker[Session], clock: Clock, job: Job) -> None:
    """Remember that ``job`` has just run to its end."""
    with unavailable_as_store_error():
        _ensure_row(sessions, job.name)
        with sessions.begin() as session:
            row = session.get(JobRun, job.name)
            if row is not None:
                row.last_run_at = clock()


def _ensure_row(sessions: sessionmaker[Session], name: str) -> None:
    try:
        with sessions.begin() as session:
            if session.get(JobRun, name) is None:
                session.add(JobRun(name=name))
    except IntegrityError:  # another process created it first
        pass


def start_background(app: App, jobs: Sequence[Job]) -> BackgroundScheduler:
    """An APScheduler running each job at its interval in this process."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
    for job in jobs:
        scheduler.add_job(_guarded, "interval", args=(app, job), id=job.name,
                          seconds=job.every.total_seconds(), next_run_time=None)
    scheduler.start()
    for job in jobs:
        scheduler.modify_job(job.name, next_run_time=_soon(app.clock))
    return scheduler


def _soon(clock: Clock) -> datetime:
    return clock() + timedelta(seconds=1)


def _guarded(app: App, job: Job) -> None:
    try:
        result = run_job(app, job)
        if result:
            log.debug("job %s: %s", job.name, result)
    except Exception:  # noqa: BLE001 - the scheduler thread must survive
        log.exception("job %s failed", job.name)
