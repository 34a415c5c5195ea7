"""``mailroom status``: is mailroom doing its work, and does anything need an admin?

It reads, and changes nothing: the outbox (how many messages are unsent, since
when), the inbox (messages waiting to be processed, ``bad`` and ``shunt``
ones), each IMAP account's last successful poll (``imap_state.updated_at``),
each scheduled job's last run (``job_runs``), whether the database can be
reached and its schema is current, and the free space where the data
directory is. Each limit is a setting (``[status]``,
:class:`~mailroom.settings.StatusLimits`); every limit passed is one line in
``needs_admin``, and the command's exit status is 1 when there is any.

The inbox worker's own work (processing the inbox, sending the outbox) shows
as the age of the oldest message waiting for it; the scheduled jobs
(:data:`~mailroom.runtime.jobs.SCHEDULED`) by their last run.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.runtime.describe import first_line
from mailroom.runtime.jobs import SCHEDULED
from mailroom.settings import Settings
from mailroom.store.models import ImapState, InboxItem, JobRun, OutboxItem
from mailroom.store.schema import current_revision, head_revision
from mailroom.vocabulary import InboxStatus, OutboxStatus

MB = 1024 * 1024


def disk_status(settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """Free space on the file system of the data directory (or of the nearest folder
    above it that exists)."""
    where = Path(settings.var_dir)
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free // MB
    minimum = settings.status_limits.disk_min_free_mb
    problems = [f"disk: {free} MB free for {settings.var_dir}, less than {minimum} MB"] \
        if free < minimum else []
    return {"data_dir": str(settings.var_dir), "free_mb": free, "min_free_mb": minimum}, problems


def collect_status(app: App) -> dict[str, Any]:
    """Everything ``mailroom status`` shows; ``needs_admin`` lists each limit passed."""
    settings = app.settings
    disk, problems = disk_status(settings)
    report: dict[str, Any] = {"needs_admin": problems, "disk": disk}
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        schema = current_revision(app.engine)
        with app.sessions() as session:
            now = app.now()
            report["outbox"] = _outbox(session, settings, now, problems)
            report["inbox"] = _inbox(session, settings, now, problems)
            report["imap"] = _imap(session, settings, now, problems)
            report["jobs"] = _jobs(session, settings, now, problems)
    except SQLAlchemyError as exc:
        problems.append(f"database: cannot be reached: {first_line(exc)}")
        report["database"] = {"url": url, "reachable": False}
        return report
    report["database"] = {"url": url, "reachable": True, "schema": schema,
                          "schema_current": schema == head_revision()}
    if schema != head_revision():
        problems.append(f"database: the schema is at {schema or 'nothing'}, the code needs "
                        f"{head_revision()}: run `mailroom db upgrade`")
    return report


def _minutes(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round((now - then).total_seconds() / 60, 1)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _outbox(session: Session, settings: Settings, now: datetime,
            problems: list[str]) -> dict[str, Any]:
    limits = settings.status_limits
    unsent_statuses = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
    unsent, oldest = session.execute(
        select(func.count(), func.min(OutboxItem.created_at))
        .where(OutboxItem.status.in_(unsent_statuses))).one()
    failed = session.scalar(select(func.count()).where(OutboxItem.status == OutboxStatus.FAILED))
    waited = _minutes(now, oldest)
    if unsent > limits.outbox_max_queued:
        problems.append(f"outbox: {unsent} messages unsent, more than "
                        f"{limits.outbox_max_queued}")
    if waited is not None and waited > limits.outbox_max_wait_minutes:
        problems.append(f"outbox: the oldest unsent message has waited {waited:g} minutes, "
                        f"more than {limits.outbox_max_wait_minutes} (is the relay reachable? "
                        "`mailroom outbox list --status queued`)")
    return {"unsent": unsent, "oldest_unsent_at": _iso(oldest), "oldest_wait_minutes": waited,
            "failed": failed}


def _inbox(session: Session, settings: Settings, now: datetime,
           problems: list[str]) -> dict[str, Any]:
    limits = settings.status_limits
    counts = dict(session.execute(
        select(InboxItem.status, func.count()).group_by(InboxItem.status)).all())
    since = now - timedelta(hours=limits.failed_window_hours)
    recent = dict(session.execute(
        select(InboxItem.status, func.count())
        .where(InboxItem.status.in_((InboxStatus.BAD, InboxStatus.SHUNT)),
               InboxItem.received_at >= since)
        .group_by(InboxItem.status)).all())
    oldest_new = session.scalar(
        select(func.min(InboxItem.received_at)).where(InboxItem.status == InboxStatus.NEW))
    waited = _minutes(now, oldest_new)
    if waited is not None and waited > limits.inbox_max_wait_minutes:
        problems.append(f"inbox: the oldest message not processed has waited {waited:g} "
                        f"minutes, more than {limits.inbox_max_wait_minutes} (is `mailroom run` "
                        "running, or `mailroom tick` from cron?)")
    for status, allowed in ((InboxStatus.SHUNT, limits.max_recent_shunt),
                            (InboxStatus.BAD, limits.max_recent_bad)):
        if recent.get(status, 0) > allowed:
            problems.append(f"inbox: {recent[status]} {status} messages in the last "
                            f"{limits.failed_window_hours} hours, more than {allowed} "
                            f"(`mailroom inbox list --status {status}`, then `inbox retry`)")
    return {"new": counts.get(InboxStatus.NEW, 0), "oldest_new_at": _iso(oldest_new),
            "bad": counts.get(InboxStatus.BAD, 0), "shunt": counts.get(InboxStatus.SHUNT, 0),
            f"bad_last_{limits.failed_window_hours}h": recent.get(InboxStatus.BAD, 0),
            f"shunt_last_{limits.failed_window_hours}h": recent.get(InboxStatus.SHUNT, 0)}


def _imap(session: Session, settings: Settings, now: datetime,
          problems: list[str]) -> list[dict[str, Any]]:
    limit = settings.status_limits.imap_max_silence_minutes
    polls = dict(session.execute(select(ImapState.account, ImapState.updated_at)).all())
    accounts = []
    for account in settings.imap_accounts:
        last = polls.get(account.name)
        ago = _minutes(now, last)
        if ago is None or ago > limit:
            said = "never polled" if ago is None else f"last polled {ago:g} minutes ago"
            problems.append(f"imap {account.name}: {said}, more than {limit} minutes "
                            f"(can {account.host}:{account.port} be reached? is `mailroom run` "
                            "running?)")
        accounts.append({"account": account.name, "last_poll_at": _iso(last),
                         "minutes_ago": ago})
    return accounts


def _jobs(session: Session, settings: Settings, now: datetime,
          problems: list[str]) -> list[dict[str, Any]]:
    grace = timedelta(minutes=settings.status_limits.job_grace_minutes)
    runs = dict(session.execute(select(JobRun.name, JobRun.last_run_at)).all())
    jobs = []
    for job in SCHEDULED:
        last = runs.get(job.name)
        if last is None or now - last > job.every + grace:
            said = "never ran" if last is None else f"last ran {_minutes(now, last):g} minutes ago"
            problems.append(f"job {job.name}: {said}, it runs every "
                            f"{job.every.total_seconds() / 60:g} minutes (is `mailroom run` "
                            "running, or `mailroom tick` from cron?)")
        jobs.append({"name": job.name, "every_minutes": job.every.total_seconds() / 60,
                     "last_run_at": _iso(last), "minutes_ago": _minutes(now, last)})
    return jobs
