"""A throwaway Postfix on loopback, configured with the shipped examples.

``PostfixServer`` writes a private instance into a temporary directory (its own
``main.cf``, ``master.cf``, queue, data directory and log file), appends the
example configuration from ``docs/examples/postfix/`` with this test's ports
and paths put in, starts ``postfix -c DIR start`` and stops it with
``postfix -c DIR stop``. Its SMTP server listens on a 127.0.0.1 port below the
kernel's ephemeral range, which ``bind(0)`` never hands out: no server of the
tests (they all bind port 0) can take it between the choice and Postfix's bind.
Postfix binds a port it is given, so a port some other process holds is seen
(its master exits, or the greeting is not this instance's) and another is tried.
It needs root (Postfix's master runs as root and drops to ``postfix``); the
pipe runs as ``nobody`` here, as the ``mailroom`` user in production. See
``shared/notes/postfix-fixture.md`` for the pitfalls this avoids.

    with PostfixServer.relay_to(mailroom_port) as postfix:
        postfix.send(raw, mail_from=..., to=[...])
"""

from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "docs" / "examples" / "postfix"
HOST = "127.0.0.1"
WAIT_LIMIT = 120.0  # seconds before a wait gives up (a hang, never a speed test)
PIPE_USER = "nobody"

BASE_MAIN_CF = """\
# Written by tests/postfix.py: a private, throwaway instance.
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = fixture.localdomain
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtputf8_enable = no
smtp_tls_loglevel = 1
"""

BASE_MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
tlsmgr unix - - n 1000? 1 tlsmgr
"""


def postfix_problem() -> str | None:
    """Why a Postfix instance cannot run here, or None."""
    if shutil.which("postfix") is None or shutil.which("postqueue") is None:
        return "postfix not found; install it with .ci/run (Debian package postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user (install the Debian package postfix)"
    return None


def mailroom_for_pipe(folder: Path) -> Path | None:
    """A ``mailroom`` command the pipe's user can run, or None.

    This environment's own when that user can reach it; else (a Python under
    ``/root``, say) a script in ``folder`` that runs the system's Python of the
    same version on this environment's packages.
    """
    own = Path(sys.executable).parent / "mailroom"
    if _runs_as_pipe_user([str(own), "--version"]):
        return own
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    packages = ":".join([*(p for p in sys.path if p.endswith("site-packages")), str(REPO)])
    for python in (Path("/usr/bin") / version, Path("/usr/local/bin") / version):
        script = folder / "mailroom"
        script.write_text(f'#!/bin/sh\nPYTHONPATH="{packages}" exec {python} -m mailroom "$@"\n')
        script.chmod(0o755)
        if python.is_file() and _runs_as_pipe_user([str(script), "--version"]):
            return script
    return None


def _runs_as_pipe_user(command: list[str]) -> bool:
    try:
        done = subprocess.run(command, user=PIPE_USER, capture_output=True, timeout=60,
                              check=False, cwd="/")
    except OSError:
        return False
    return done.returncode == 0


def unassigned_port(rng: random.Random) -> int:
    """A free loopback port below the ephemeral range (bind(0) never gives it)."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    low = int(ephemeral[0]) if ephemeral else 32768
    for _ in range(1000):
        port = rng.randrange(max(1024, low - 10_000), low)
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port below the ephemeral range")


PORT_TRIES = 5  # ports tried when another process holds the one chosen


class PostfixServer:
    """One private Postfix: ``main`` and ``master`` are the example files' text to append."""

    def __init__(self, main: str, master: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailroom-postfix-"))
        self.root.chmod(0o755)  # postfix and the pipe's user walk through it
        (self.root / "etc").mkdir()
        (self.root / "spool").mkdir()  # the data directory must not exist yet: postfix's own
        self._rng = random.Random()
        self.config = self.root / "etc"
        self._master = master
        (self.config / "main.cf").write_text(BASE_MAIN_CF.format(root=self.root) + main)
        self._listen_on(unassigned_port(self._rng))

    def _listen_on(self, port: int) -> None:
        self.port = port
        (self.config / "master.cf").write_text(
            BASE_MASTER_CF.format(host=HOST, port=port) + self._master)

    @classmethod
    def relay_to(cls, mailroom_port: int, *, fingerprint: str | None = None) -> PostfixServer:
        """Postfix with ``main.cf`` and ``master.cf`` of the examples, relaying to mailroom;
        with ``fingerprint``, the STARTTLS lines are in force, pinning that certificate."""
        main = (EXAMPLES / "main.cf").read_text().replace("[127.0.0.1]:2525",
                                                          f"[127.0.0.1]:{mailroom_port}")
        master = (EXAMPLES / "master.cf").read_text()
        if fingerprint is not None:
            master = (master.replace("#  -o smtp_tls_", "  -o smtp_tls_")
                      .replace("AA:BB:…", fingerprint))
        return cls(main, master)

    @classmethod
    def pipe_to(cls, mailroom: Path, config: Path) -> PostfixServer:
        """Postfix with ``main-pipe.cf`` and ``master.cf``: ``mailroom ingest -`` run as
        nobody, with ``config``."""
        master = ((EXAMPLES / "master.cf").read_text()
                  .replace("user=mailroom", f"user={PIPE_USER}")
                  .replace("/opt/mailroom/venv/bin/mailroom", str(mailroom))
                  .replace("/etc/mailroom/mailroom.toml", str(config)))
        return cls((EXAMPLES / "main-pipe.cf").read_text(), master)

    # --- running --------------------------------------------------------------

    def __enter__(self) -> PostfixServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["postfix", "-c", str(self.config), *args], capture_output=True,
                              text=True, check=False, timeout=60)

    def start(self) -> None:
        checked = self.postfix("check")
        if checked.returncode != 0:
            raise RuntimeError(f"postfix check failed: {checked.stderr}{self.log()}")
        for _ in range(PORT_TRIES):
            started = self.postfix("start")
            if started.returncode == 0:
                self._wait_for_greeting()
                return
            if not self._bind_refused():
                raise RuntimeError(f"postfix did not start: {started.stderr}{self.log()}")
            self._listen_on(unassigned_port(self._rng))  # taken meanwhile: another one
        raise RuntimeError(f"postfix found no free port in {PORT_TRIES} tries: {self.log()}")

    def _bind_refused(self) -> bool:
        """Postfix's master could not bind its port: another process holds it."""
        return f"port {self.port}: Address already in use" in self.log()

    def _wait_for_greeting(self) -> None:
        """Until this instance greets on its port (the greeting names its host name)."""
        deadline = time.monotonic() + WAIT_LIMIT
        while True:
            try:
                with smtplib.SMTP(timeout=10) as client:
                    code, banner = client.connect(HOST, self.port)
                if code != 220 or b"fixture.localdomain" not in banner:
                    raise RuntimeError(f"not this postfix on {self.port}: {code} {banner!r}")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postfix does not answer on {self.port}: "
                                       f"{self.log()}") from None
                time.sleep(0.1)

    def close(self) -> None:
        self.postfix("stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- mail -----------------------------------------------------------------

    def send(self, raw: bytes, *, mail_from: str,
             to: Iterable[str]) -> dict[str, tuple[int, bytes]]:
        """Hand a message to Postfix's SMTP server; the recipients it refused."""
        with smtplib.SMTP(HOST, self.port, timeout=60) as client:
            return client.sendmail(mail_from, list(to), raw)

    def queue(self) -> list[dict[str, object]]:
        """The messages in Postfix's queue (``postqueue -j``)."""
        listed = subprocess.run(["postqueue", "-c", str(self.config), "-j"], capture_output=True,
                                text=True, check=True, timeout=60)
        return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]

    def flush(self) -> None:
        """Try every deferred message again now (``postqueue -f``)."""
        subprocess.run(["postqueue", "-c", str(self.config), "-f"], capture_output=True,
                       check=True, timeout=60)

    def wait_for_queue(self, done: str, until: object) -> list[dict[str, object]]:
        """Poll the queue until ``until(queue)`` is true; ``done`` names it in the error."""
        deadline = time.monotonic() + WAIT_LIMIT
        while True:
            queue = self.queue()
            if until(queue):  # type: ignore[operator]
                return queue
            if time.monotonic() > deadline:
                raise AssertionError(f"postfix: {done} did not happen; queue {queue}\n"
                                     f"{self.log()}")
            time.sleep(0.1)
