"""Peak memory of ``mailroom ingest`` in a child process.

The peak resident set size of the child is read from ``os.wait4`` (the
kernel's ``ru_maxrss`` for that one process) by the small launcher
``bench.peak``, so nothing of this process counts. Three runs: one small
message (the floor: the interpreter and mailroom's imports), a large mbox
written to disk message by message (never held in memory here either), and
one message with a 25 MB attachment.

An mbox of helpline mail at ~125 kB a message would take far longer than the
benchmark's budget to ingest, so the large mbox is mostly messages with big
attachments (screen recordings of 6-20 MB, ten ordinary messages between
two of them): the same bytes in fewer messages.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from bench.corpus import HELPLINE, START, Generator, Mail, Upload, conversation, render
from bench.env import Site

REPO = Path(__file__).resolve().parents[1]
FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
MB = 1024 * 1024


@dataclass(frozen=True)
class Peak:
    """A finished ``mailroom ingest`` child: its peak RSS, time and exit code."""

    rss_bytes: int
    seconds: float
    exit_code: int
    output: str


@dataclass(frozen=True)
class Mailbox:
    path: Path
    messages: int
    size: int
    largest: int


def ingest_peak(site: Site, path: Path, *, timeout: float = 900) -> Peak:
    """Run ``python -m mailroom ingest PATH`` under ``bench.peak``; its peak RSS."""
    result_file = site.directory / "peak.json"
    command = [sys.executable, "-m", "bench.peak", str(result_file), "--",
               sys.executable, "-m", "mailroom", "--config", str(site.config), "ingest",
               "--json", "--no-progress", str(path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0 or not result_file.exists():
        raise RuntimeError(f"bench.peak failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    return Peak(int(result["maxrss_bytes"]), float(result["seconds"]),
                int(result["exit_code"]), done.stdout + done.stderr[-1000:])


# --- inputs ------------------------------------------------------------------------------


def big_message(gen: Generator, size: int, serial: int) -> bytes:
    """A report with one large attachment (a screen recording) of ``size`` bytes."""
    person = gen.person()
    mail = Mail(sender=person, to=(HELPLINE,), subject="Screen recording of the live stream",
                date=START + timedelta(hours=serial), message_id=gen.message_id(person),
                text="The recording of the live stream is attached. It shows the threats.\n")
    mail.uploads = [Upload(f"ScreenRecording_{serial:04d}.mp4", "video/mp4",
                           os.urandom(size))]
    return render(gen, mail)


def write_attachment_message(path: Path, attachment_size: int = 25 * MB) -> int:
    """One message with an ``attachment_size`` attachment; its size in bytes."""
    raw = big_message(Generator(25, "m"), attachment_size, 0)
    path.write_bytes(raw)
    return len(raw)


def write_mbox(path: Path, target: int, *, seed: int = 11) -> Mailbox:
    """An mbox of about ``target`` bytes, written message by message."""
    gen = Generator(seed, "x")
    rng = random.Random(seed)
    messages = size = largest = 0
    with path.open("wb") as out:
        while size < target:
            batch = [big_message(gen, rng.randrange(6 * MB, 20 * MB), messages)]
            start = START + timedelta(days=messages)
            while len(batch) < 11:
                batch += [render(gen, mail) for mail in conversation(gen, start)]
            for raw in batch:
                size += _append_mbox(out, raw)
                largest = max(largest, len(raw))
                messages += 1
    return Mailbox(path, messages, size, largest)


def _append_mbox(out: BinaryIO, raw: bytes) -> int:
    """Write one message in mboxrd form (``>From`` quoting, LF line ends)."""
    body = FROM_LINE.sub(rb">\1", raw.replace(b"\r\n", b"\n"))
    data = b"From bench@helpline.example Mon Jan  5 09:00:00 2026\n" + body
    data += b"\n" if body.endswith(b"\n") else b"\n\n"
    out.write(data)
    return len(data)
