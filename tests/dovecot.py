"""Debian's Dovecot on 127.0.0.1 for tests: a real IMAP server in a temp folder.

`dovecot_server(keep_log_in, tls=...)` starts `/usr/sbin/dovecot -F -c <folder>/dovecot.conf`
on free ports (plain IMAP, and with `tls` STARTTLS on it plus an imaps listener using a
self-signed certificate made here), one passwd-file user with a plain password, mail in a
Maildir, all in a fresh folder in /tmp (readable by Dovecot's users, a short path for its
sockets) that is removed at the end; the log is kept in the test's own folder. Dovecot's
processes refuse root: run as root, the mail and internal processes use the `dovecot`
user and the login processes `dovenull` (both made by the package); otherwise they all
run as the current user.

`Dovecot.append(mailbox, message)` puts a message there over IMAP APPEND (stdlib imaplib,
not the client under test); `Dovecot.commands_since(mark)` lists the IMAP commands
logged-in sessions sent, from Dovecot's own log (`Command finished: ...` debug lines).
One server per test: parallel-safe under pytest-xdist.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smtp_servers import Certificate, free_port, make_certificate

DOVECOT = "/usr/sbin/dovecot"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
LOG_SETTLE_S = 5.0  # Dovecot's log process writes a session's lines shortly after it ends
USERNAME = "reader"
PASSWORD = 'pa"ss wörd\\1'  # quotes, a space, a backslash, non-ASCII: quoting must hold
FINISHED = ": Debug: Command finished: "
DISCONNECTED = ": Info: Disconnected: "
LOGGED_IN = "imap-login: Info: Login: "
SESSION_ENDED = re.compile(r"^\S+ \S+ \S+ imap\(.*: Info: Disconnected: ", re.MULTILINE)


@dataclass(frozen=True)
class Dovecot:
    """A running Dovecot: where it listens, who may log in, where it logs."""

    port: int  # plain IMAP (STARTTLS offered when tls)
    tls_port: int  # imaps; 0 when started without tls
    username: str
    password: str
    folder: Path
    log_file: Path
    certificate: Certificate | None

    def url(self, scheme: str = "imap+insecure") -> str:
        port = self.tls_port if scheme == "imaps" else self.port
        return f"{scheme}://127.0.0.1:{port}"

    def _login(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client._encoding = "utf-8"  # type: ignore[attr-defined]  # the non-ASCII password
        client.login(self.username, self.password)  # imaplib quotes the password
        return client

    def append(self, mailbox: str, message: bytes) -> None:
        """Put `message` into `mailbox` (created if missing) with IMAP APPEND."""
        client = self._login()
        try:
            client.create(_quoted(mailbox))  # NO when it exists: fine
            status, _ = client.append(_quoted(mailbox), "", None, message)
            assert status == "OK", status
        finally:
            client.logout()

    def uids(self, mailbox: str) -> list[int]:
        """The UIDs of the messages in `mailbox` not marked \\Deleted ([] if none)."""
        client = self._login()
        try:
            status, _ = client.select(_quoted(mailbox), readonly=True)
            if status != "OK":
                return []
            _, data = client.uid("SEARCH", "UNDELETED")
            return [int(uid) for uid in (data[0] or b"").split()]
        finally:
            client.logout()

    def mark(self) -> int:
        """Where the log ends once every session so far has been logged to its end: pass
        it to `commands_since`."""
        deadline = time.monotonic() + LOG_SETTLE_S
        while time.monotonic() < deadline:
            text = self.log()
            if text.count(LOGGED_IN) == len(SESSION_ENDED.findall(text)):
                break
            time.sleep(0.05)
        return self.log_file.stat().st_size

    def commands_since(self, mark: int, sessions: int = 1) -> list[str]:
        """The IMAP commands logged-in sessions sent since `mark` (LOGIN and what came
        before it are the login process's, not counted), once `sessions` have ended."""
        deadline = time.monotonic() + LOG_SETTLE_S
        while True:
            text = self.log_since(mark)
            if text.count(DISCONNECTED) >= sessions or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [
            line.split(FINISHED, 1)[1].strip() for line in text.splitlines() if FINISHED in line
        ]

    def log_since(self, mark: int) -> str:
        with self.log_file.open("rb") as log:
            log.seek(mark)
            return log.read().decode("utf-8", "replace")

    def log(self) -> str:
        return self.log_since(0)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dovecot_missing() -> None:
    """Fail on CI (where .ci/run installs dovecot-imapd), skip elsewhere."""
    if Path(DOVECOT).exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{DOVECOT} is missing: .ci/run installs dovecot-imapd")
    pytest.skip(f"{DOVECOT} is missing (apt-get install dovecot-imapd)")


@dataclass(frozen=True)
class _Users:
    internal: str  # Dovecot's own processes and the mail processes
    login: str  # imap-login: never root
    mail_uid: int
    mail_gid: int


def _users() -> _Users:
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return _Users(me.pw_name, me.pw_name, me.pw_uid, me.pw_gid)
    mail = pwd.getpwnam("dovecot")
    return _Users("dovecot", "dovenull", mail.pw_uid, mail.pw_gid)


def _config(folder: Path, users: _Users, port: int, tls_port: int) -> str:
    tls = (
        f"ssl = yes\nssl_cert = <{folder / 'cert.pem'}\nssl_key = <{folder / 'key.pem'}\n"
        if tls_port
        else "ssl = no\n"
    )
    return f"""\
base_dir = {folder / "run"}
state_dir = {folder / "state"}
log_path = {folder / "dovecot.log"}
protocols = imap
listen = 127.0.0.1
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {users.internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(users.internal).pw_gid).gr_name}
default_login_user = {users.login}
first_valid_uid = 1
first_valid_gid = 0
mail_location = maildir:{folder / "mail"}
log_debug = event=imap_command_finished
imap_idle_notify_interval = 2 mins
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder / "users"}
}}
userdb {{
  driver = static
  args = uid={users.mail_uid} gid={users.mail_gid} home={folder / "home"}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
"""


def _prepare(folder: Path, users: _Users, tls: bool) -> Certificate | None:
    for name in ("run", "state", "mail", "home"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for name in ("mail", "home"):
        os.chown(folder / name, users.mail_uid, users.mail_gid)
    # passwd-file: user:{SCHEME}password:uid:gid:gecos:home:shell:extra; ':' ends a field
    (folder / "users").write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}::::::\n", encoding="utf-8")
    return make_certificate(folder) if tls else None


@contextlib.contextmanager
def dovecot_server(keep_log_in: Path, *, tls: bool = False) -> Iterator[Dovecot]:
    """A Dovecot on 127.0.0.1 serving one user; stopped at exit, its log then copied
    into `keep_log_in`."""
    dovecot_missing()
    users = _users()
    # not pytest's tmp_path: it is private to root, and Dovecot's users must reach this
    folder = Path(tempfile.mkdtemp(prefix="dovecot-"))  # short: UNIX socket paths
    folder.chmod(0o755)
    certificate = _prepare(folder, users, tls)
    port, tls_port = free_port(), free_port() if tls else 0
    config = folder / "dovecot.conf"
    config.write_text(_config(folder, users, port, tls_port), encoding="utf-8")
    with (folder / "dovecot.stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    server = Dovecot(
        port, tls_port, USERNAME, PASSWORD, folder, folder / "dovecot.log", certificate
    )
    try:
        _wait_listening(proc, server)
        yield server
    finally:
        _stop(proc)
        with contextlib.suppress(OSError):
            shutil.copy(server.log_file, keep_log_in / "dovecot.log")
        shutil.rmtree(folder, ignore_errors=True)


def _wait_listening(proc: subprocess.Popen[bytes], server: Dovecot) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stderr = (server.folder / "dovecot.stderr").read_text(errors="replace")
            raise RuntimeError(f"dovecot exited ({proc.returncode}): {stderr}{_log(server)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen within {START_TIMEOUT_S} s{_log(server)}")


def _log(server: Dovecot) -> str:
    return f"\n{server.log()}" if server.log_file.exists() else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the master (it stops its children), SIGKILL to the group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
