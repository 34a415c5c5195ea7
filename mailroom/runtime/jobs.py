"""Every piece of work that runs on its own, listed once, with who drives it.

``mailroom run`` has one driver for each piece of work: its inbox worker
processes the inbox and sends the outbox (woken by the doors, and every few
seconds), and its scheduler runs :data:`SCHEDULED` at their intervals.
``mailroom tick`` runs :data:`EVERY_JOB` once, in that order, so that mail the
other jobs queue goes out in the same tick.
"""

from __future__ import annotations

from datetime import timedelta

from mailroom.cases.escalations import follow_up_due
from mailroom.cases.reminders import send_due_reminders
from mailroom.cases.sla_notices import send_sla_notices
from mailroom.pipeline import process_inbox
from mailroom.privacy.retention import run_retention_job
from mailroom.reports.digest import send_daily_digest
from mailroom.runtime.scheduler import Job
from mailroom.sending.sender import send_due

INBOX = Job("process_inbox", timedelta(seconds=30), process_inbox)
FOLLOW_UPS = Job("escalation_follow_ups", timedelta(minutes=15), follow_up_due)
REMINDERS = Job("reminders", timedelta(minutes=5), send_due_reminders)
SLA_NOTICES = Job("sla_notices", timedelta(minutes=5), send_sla_notices)
RETENTION = Job("retention", timedelta(days=1), run_retention_job, gated=True)
DIGEST = Job("daily_digest", timedelta(minutes=10), send_daily_digest, gated=True)
OUTBOX = Job("send_outbox", timedelta(seconds=10), send_due)

EVERY_JOB: tuple[Job, ...] = (INBOX, FOLLOW_UPS, REMINDERS, SLA_NOTICES, RETENTION, DIGEST,
                              OUTBOX)
# the daemon's worker drives the rest
SCHEDULED: tuple[Job, ...] = (FOLLOW_UPS, REMINDERS, SLA_NOTICES, RETENTION, DIGEST)
