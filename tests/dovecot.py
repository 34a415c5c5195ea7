"""A throwaway Dovecot IMAP server on loopback, for tests that talk real IMAP.

``DovecotServer`` writes a private configuration and passwd-file into a
temporary directory, starts ``dovecot -F -c CONF`` on a 127.0.0.1 port the
test holds, waits until it greets, and stops it with ``dovecot -c CONF stop``.
Mail lives in Maildirs under the same directory, which
:meth:`DovecotServer.close` removes.

Dovecot cannot listen on port 0 and report the port it got, so the port is a
:class:`tests.ports.PortReservation`, held from creation to :meth:`close`.
Each start hands Dovecot a socket already listening on it, the way systemd's
socket activation does (``LISTEN_FDS``; Debian builds Dovecot with it): Dovecot
uses that socket instead of binding one. While the server is stopped,
connections are refused and no other process can take the port.

    with DovecotServer.create() as server:
        mailbox = server.add_mailbox()            # a fresh user with an empty INBOX
        mailbox.deliver(make_message(1))          # APPEND over IMAP
        account = mailbox.account(batch_size=10)  # the mailroom ImapAccount for it

Logins come from a pool written before start (Dovecot re-reads its
passwd-file at most once a second). ``stop()`` is a real outage: connected
clients are dropped, and ``start()`` brings the same mailboxes back on the
same port. Run as root (as on CI), mail processes run as ``dovecot`` and
login processes as ``dovenull`` (the package creates both); run as anyone
else, every process runs as that user. See ``shared/notes/dovecot-fixture.md``.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path
from types import TracebackType

from imapclient import IMAPClient

from mailroom.settings import ImapAccount
from tests.ports import PortReservation

HOST = "127.0.0.1"
USER_POOL = 64  # logins written before start: Dovecot re-reads its passwd-file once a second
START_TIMEOUT = 60.0  # until it greets: generous, a busy machine is slow to start it
STOP_TIMEOUT = 10.0

CONFIG_TEMPLATE = """\
# Written by tests/dovecot.py: a private, throwaway instance.
instance_name = mailroom-test-{port}
protocols = imap
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {uid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{root}/mail/%u
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  {login_chroot}
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
# No brute-force penalty: a login-failure test must not slow down the tests after it.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{extra}
"""


@dataclass(frozen=True)
class ImapUser:
    """A mailbox owner on the test server."""

    name: str
    password: str


class DovecotError(RuntimeError):
    """The test server could not be started or stopped."""


def find_binary() -> str | None:
    """Path of the ``dovecot`` binary (``/usr/sbin`` is often not on PATH)."""
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


class DovecotServer:
    """One private Dovecot instance; ``start``/``stop`` may be called repeatedly."""

    def __init__(self, root: Path, binary: str, *, extra_config: str = "") -> None:
        self.root = root
        self.binary = binary
        self.host = HOST
        self._reservation = PortReservation(HOST)
        self.port = self._reservation.port
        self.config = root / "dovecot.conf"
        self.passwd = root / "passwd"
        self._extra = extra_config
        self._pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._pool = [_new_user() for _ in range(USER_POOL)]
        self._prepare()

    @classmethod
    def create(cls, *, extra_config: str = "", binary: str | None = None) -> DovecotServer:
        """A started server in a fresh temporary directory."""
        binary = binary or find_binary()
        if binary is None:
            raise DovecotError("dovecot binary not found (apt-get install -y dovecot-imapd)")
        root = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-"))
        server = cls(root, binary, extra_config=extra_config)
        try:
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    # --- files ---------------------------------------------------------------

    def _prepare(self) -> None:
        mail_owner = _mail_owner()
        self.root.chmod(0o755)  # login and mail processes must traverse it
        (self.root / "mail").mkdir()
        os.chown(self.root / "mail", mail_owner.pw_uid, mail_owner.pw_gid)
        self.passwd.write_text("".join(_passwd_line(user) for user in self._pool))
        self.passwd.chmod(0o644)
        self.config.write_text(self._render_config(mail_owner))

    def _render_config(self, mail_owner: pwd.struct_passwd) -> str:
        as_root = os.geteuid() == 0
        return CONFIG_TEMPLATE.format(
            root=self.root, host=self.host, port=self.port,
            uid=mail_owner.pw_uid, gid=mail_owner.pw_gid,
            login_user="dovenull" if as_root else mail_owner.pw_name,
            internal_user="dovecot" if as_root else mail_owner.pw_name,
            internal_group="dovecot" if as_root else grp.getgrgid(mail_owner.pw_gid).gr_name,
            login_chroot="" if as_root else "chroot =",
            extra=self._extra,
        )

    def add_user(self, name: str | None = None, password: str | None = None) -> ImapUser:
        """A login nobody used yet: from the pool, else appended to the passwd-file.

        Dovecot looks at its passwd-file at most once a second, so an appended
        login is usable only from the next second on: we wait for it.
        """
        if name is None and password is None and self._pool:
            return self._pool.pop()
        user = ImapUser(name or _new_user().name, password or _new_user().password)
        with self.passwd.open("a") as handle:
            handle.write(_passwd_line(user))
        time.sleep(1.05 - time.time() % 1)
        return user

    def add_mailbox(self) -> Mailbox:
        """A fresh user with an empty INBOX, wrapped in domain-level helpers."""
        return Mailbox(self, self.add_user())

    def log_tail(self, lines: int = 30) -> str:
        path = self.root / "dovecot.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # --- process -------------------------------------------------------------

    def start(self) -> None:
        """Start the master process on the held port and wait until the port greets."""
        # The daemon inherits stdout/stderr: a pipe would never reach EOF, so use a file.
        errors = self.root / "start.err"
        listener = self._reservation.listener()
        try:
            fd = listener.fileno()
            # systemd's protocol: the socket as fd 3, LISTEN_PID naming the process that
            # uses it (the shell's pid, which exec keeps for dovecot); bash, since some
            # shells cannot name a descriptor above 9
            renumber = f"exec 3<&{fd} {fd}<&-; " if fd != 3 else ""
            command = (f"{renumber}LISTEN_PID=$$ LISTEN_FDS=1 exec "
                       f"{shlex.quote(self.binary)} -F -c {shlex.quote(str(self.config))}")
            with errors.open("w") as handle:
                self._process = subprocess.Popen(
                    ["bash", "-c", command], pass_fds=[fd],
                    stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
                )
        finally:
            listener.close()  # Dovecot has its own copy; once it stops, nothing listens
        self._pid = self._process.pid
        self._wait_until_ready()

    def stop(self) -> None:
        """Stop the server as an outage would: the master and every process it started.

        ``dovecot stop`` ends the master, but here the imap processes of
        connected clients (and ``log``/``stats``) outlive it, so those are
        ended too, by pid: a stopped server must drop its clients.
        """
        if self._pid is None:
            return
        children = _children_of(self._pid)
        subprocess.run(
            [self.binary, "-c", str(self.config), "stop"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            check=False,
        )
        _end_processes([self._pid])
        _end_processes([pid for pid in children if self._owns(pid)])
        if self._process is not None:
            self._process.wait(timeout=STOP_TIMEOUT)  # reap it
            self._process = None
        self._pid = None

    def kill_sessions(self) -> None:
        """SIGKILL every imap process: their clients see the connection drop without a BYE."""
        children = _children_of(self._pid) if self._pid else []
        sessions = [pid for pid in children if self._title(pid).endswith(b"/imap")]
        for pid in sessions:
            os.kill(pid, signal.SIGKILL)
        _wait_for_exit(sessions, STOP_TIMEOUT)

    def _owns(self, pid: int) -> bool:
        """Is ``pid`` (still) one of this instance's processes? Guards against pid reuse."""
        return self._title(pid).startswith(f"dovecot-mailroom-test-{self.port}/".encode())

    @staticmethod
    def _title(pid: int) -> bytes:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0 ")
        except OSError:
            return b""

    def close(self) -> None:
        """Stop the server and remove every file it had."""
        try:
            self.stop()
        finally:
            self._reservation.close()
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                errors = (self.root / "start.err").read_text()
                self.stop()
                raise DovecotError(f"dovecot failed to start: {errors}\n{self.log_tail()}")
            if self._greets():
                return
            time.sleep(0.05)
        raise DovecotError(f"dovecot did not answer on {self.host}:{self.port}\n{self.log_tail()}")

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    # --- clients -------------------------------------------------------------

    def connect(self, user: ImapUser) -> IMAPClient:
        """A logged-in imapclient connection (the caller logs out)."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(user.name, user.password)
        return client

    def account(self, user: ImapUser, **overrides: object) -> ImapAccount:
        """The mailroom account configuration that polls ``user``'s mailbox."""
        values: dict[str, object] = {
            "name": user.name, "host": self.host, "port": self.port,
            "username": user.name, "password": user.password, "security": "none",
        }
        values.update(overrides)
        return ImapAccount(**values)  # type: ignore[arg-type]


def _new_user() -> ImapUser:
    return ImapUser(f"u{uuid.uuid4().hex[:10]}", uuid.uuid4().hex)


def _passwd_line(user: ImapUser) -> str:
    return f"{user.name}:{{PLAIN}}{user.password}::::::\n"


def _mail_owner() -> pwd.struct_passwd:
    """Who owns the Maildirs: ``dovecot`` when we are root, else ourselves."""
    if os.geteuid() == 0:
        return pwd.getpwnam("dovecot")
    return pwd.getpwuid(os.geteuid())


def _children_of(parent: int) -> list[int]:
    """Pids whose parent is ``parent`` (Dovecot's processes are all the master's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def _end_processes(pids: list[int]) -> None:
    """Wait for ``pids`` to exit after a SIGTERM; SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            if _is_running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        if _wait_for_exit(pids, STOP_TIMEOUT if sig == signal.SIGTERM else 2.0):
            return


def _wait_for_exit(pids: list[int], timeout: float) -> bool:
    """True once every pid is gone (or a zombie nobody reaps, as in some containers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_is_running(pid) for pid in pids):
            return True
        time.sleep(0.02)
    return False


def _is_running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@dataclass(frozen=True)
class Mailbox:
    """One user's mailbox on a test server, seen the way a test wants to see it."""

    server: DovecotServer
    user: ImapUser

    def account(self, **overrides: object) -> ImapAccount:
        return self.server.account(self.user, **overrides)

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        append_messages(self.server, self.user, folder, messages)

    def message_ids(self, folder: str = "INBOX") -> list[str]:
        return folder_message_ids(self.server, self.user, folder)

    def search(self, folder: str, criteria: str | list[str]) -> list[int]:
        """UIDs in ``folder`` matching ``criteria``, e.g. ``"SEEN"``."""
        client = self.server.connect(self.user)
        try:
            client.select_folder(folder, readonly=True)
            return sorted(client.search(criteria))
        finally:
            client.logout()

    def recreate_folder(self, folder: str) -> None:
        """Delete and create ``folder`` again: it gets a new UIDVALIDITY."""
        client = self.server.connect(self.user)
        try:
            client.delete_folder(folder)
            client.create_folder(folder)
        finally:
            client.logout()


# --- mail helpers -------------------------------------------------------------


def make_message(number: int, *, tag: str = "test", body: str | None = None) -> bytes:
    """A small, valid message whose Message-ID is ``<tag-number@mailroom.test>``."""
    msg = EmailMessage()
    msg["From"] = f"Requester {number} <requester{number}@example.org>"
    msg["To"] = "helpline@mailroom.test"
    msg["Subject"] = f"Report {number}"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{tag}-{number}@mailroom.test>"
    msg.set_content(body or f"Message number {number}.\n")
    return msg.as_bytes(policy=SMTP)  # CRLF line ends, as on the wire


def append_messages(
    server: DovecotServer, user: ImapUser, folder: str, messages: Iterable[bytes]
) -> None:
    """APPEND each message to ``folder`` (created when missing) over a new connection."""
    client = server.connect(user)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        for raw in messages:
            client.append(folder, raw)
    finally:
        client.logout()


def folder_message_ids(server: DovecotServer, user: ImapUser, folder: str) -> list[str]:
    """The Message-ID of every message in ``folder``, in UID order ([] if it is missing)."""
    client = server.connect(user)
    try:
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        uids = sorted(client.search("ALL"))
        fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
        return [_header_value(fetched[uid]) for uid in uids if uid in fetched]
    finally:
        client.logout()


def _header_value(data: dict[bytes, bytes]) -> str:
    raw = next(value for key, value in data.items() if key.startswith(b"BODY"))
    return raw.decode().partition(":")[2].strip()
