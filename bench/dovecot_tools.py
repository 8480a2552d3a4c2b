"""Debian's Dovecot on 127.0.0.1 for the mail-in bench: one passwd-file user, a Maildir,
plain IMAP on loopback, every finished IMAP command logged (to count round trips), all in
a fresh folder removed at the end. Run as root, Dovecot's processes use its own `dovecot`
and `dovenull` users; otherwise the current user."""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchkit import free_port, stop, wait_listening

DOVECOT = "/usr/sbin/dovecot"
USERNAME = "news"
PASSWORD = "bench-imap-password"
FINISHED = ": Debug: Command finished: "


@dataclass(frozen=True)
class Dovecot:
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"imap+insecure://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.folder / "dovecot.log"

    def append_all(self, mailbox: str, messages: list[bytes]) -> None:
        """APPEND every message over one IMAP session."""
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=60)
        try:
            client.login(USERNAME, PASSWORD)
            for message in messages:
                status, _ = client.append(mailbox, "", None, message)
                if status != "OK":
                    raise RuntimeError(f"APPEND answered {status}")
        finally:
            client.logout()

    def log_size(self) -> int:
        return self.log_file.stat().st_size

    def commands_since(self, offset: int) -> list[str]:
        """The IMAP commands logged-in sessions finished since `offset` in the log."""
        with self.log_file.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
        return [line.split(FINISHED, 1)[1] for line in text.splitlines() if FINISHED in line]


def _config(folder: Path, port: int) -> str:
    if os.geteuid() == 0:
        internal, login = "dovecot", "dovenull"
        mail = pwd.getpwnam("dovecot")
    else:
        internal = login = pwd.getpwuid(os.geteuid()).pw_name
        mail = pwd.getpwuid(os.geteuid())
    group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
    for name in ("mail", "home"):
        (folder / name).mkdir()
        os.chown(folder / name, mail.pw_uid, mail.pw_gid)
    return f"""\
base_dir = {folder / "run"}
state_dir = {folder / "state"}
log_path = {folder / "dovecot.log"}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = 1
first_valid_gid = 0
mail_location = maildir:{folder / "mail"}
log_debug = event=imap_command_finished
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder / "users"}
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={folder / "home"}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


@contextmanager
def dovecot_server() -> Iterator[Dovecot]:
    """`dovecot -F` on a free loopback port; stopped and its folder removed at the end."""
    if not Path(DOVECOT).exists():
        raise RuntimeError(f"{DOVECOT} is missing: apt-get install dovecot-imapd")
    folder = Path(tempfile.mkdtemp(prefix="dovecot-bench-"))  # short: UNIX socket paths
    folder.chmod(0o755)
    for name in ("run", "state"):
        (folder / name).mkdir()
    (folder / "users").write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}::::::\n")
    port = free_port()
    (folder / "dovecot.conf").write_text(_config(folder, port))
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(folder / "dovecot.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_listening(port, process, "dovecot")
        yield Dovecot(port, folder)
    finally:
        stop(process)
        shutil.rmtree(folder, ignore_errors=True)
