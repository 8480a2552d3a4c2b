"""Secrets (SMTP password, unsubscribe secrets, key passphrases) from a file or a variable.

Each secret the config names has an `*_env` key (an environment variable) and a `*_file`
key (a file: a systemd credential in `$CREDENTIALS_DIRECTORY`, a root-owned 0600 file).
When the file is set it wins and the variable is not read. A secret file is read whole,
up to `MAX_SECRET_BYTES`, as UTF-8 with one trailing newline dropped; it must be a
regular file that others cannot read. Errors name the file and the key, never the value.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from mirror.errors import ConfigError

MAX_SECRET_BYTES = 65_536


@dataclass(frozen=True)
class SecretSource:
    """Where one secret comes from; `key` is its config key without the suffix
    (`digest.smtp_password`), for messages."""

    key: str
    file: Path | None
    env: str

    def read(self, config_path: str) -> str | None:
        """The secret: the file's if `file` is set, else the variable's; None when the
        variable is unset (a missing or unreadable file is a ConfigError)."""
        if self.file is not None:
            return read_secret_file(self.file, key=self.key_used(), config_path=config_path)
        if not self.env:
            return None
        return os.environ.get(self.env)

    def require(self, config_path: str, what: str) -> str:
        """The secret; a ConfigError naming where it was looked for when it is not set."""
        value = self.read(config_path)
        if value is None:
            raise self.refusal(
                config_path, f"({what}) is not set (or name a file in {self.key}_file)"
            )
        return value

    def refusal(self, config_path: str, problem: str) -> ConfigError:
        """The ConfigError for this secret: where it was looked for, then `problem`."""
        return ConfigError(f"{self.where()} {problem}", path=config_path, key=self.key_used())

    def where(self) -> str:
        """Where the secret was looked for, for a message: never the value."""
        return f"the file {self.file}" if self.file is not None else f"the variable ${self.env}"

    def key_used(self) -> str:
        """The config key that chose the source: `*_file` when set, else `*_env`."""
        return f"{self.key}_file" if self.file is not None else f"{self.key}_env"


def read_secret_file(path: Path, *, key: str, config_path: str = "") -> str:
    """One secret file's text (see the module docstring); ConfigError naming `key`."""

    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"the secret file {path} {problem}", path=config_path, key=key)

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise refuse("does not exist") from None
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refuse("is not a regular file")
        if info.st_mode & 0o007:
            raise refuse(f"is open to others (mode {stat.S_IMODE(info.st_mode):04o}): chmod o= it")
        data = b""
        while len(data) <= MAX_SECRET_BYTES:
            chunk = os.read(fd, MAX_SECRET_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise refuse(f"is larger than {MAX_SECRET_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise refuse("is empty")
    return text
