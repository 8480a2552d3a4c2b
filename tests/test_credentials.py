"""Secrets from files named in the config (`*_file` beside each `*_env`): systemd
credentials or a root-owned file hold them, the file wins, errors never show a value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirror.config import load_config
from mirror.credentials import MAX_SECRET_BYTES, read_secret_file
from mirror.digest.run import previous_secrets, secret_from, smtp_password
from mirror.errors import ConfigError
from mirror.trust import minisign
from mirror.trust.keyfiles import load_signing_key

SECRET = "an-unsubscribe-secret-from-a-file"
FAST_KDF = {"kdf_opslimit": 524_288, "kdf_memlimit": 16_777_216}


def secret_file(folder: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_a_secret_file_is_read_whole_with_its_trailing_newline_dropped(tmp_path: Path) -> None:
    assert read_secret_file(secret_file(tmp_path, "a", "p4ss word \n"), key="k") == "p4ss word "
    assert read_secret_file(secret_file(tmp_path, "b", "crlf\r\n"), key="k") == "crlf"
    assert read_secret_file(secret_file(tmp_path, "c", "no newline"), key="k") == "no newline"
    assert read_secret_file(secret_file(tmp_path, "d", "x", 0o440), key="k") == "x"  # group


@pytest.mark.parametrize(
    ("text", "mode", "problem"),
    [
        ("hunter2-secret", 0o644, "open to others"),
        ("hunter2-secret", 0o602, "open to others"),
        ("\n", 0o600, "is empty"),
        ("hunter2-" + "x" * MAX_SECRET_BYTES, 0o600, f"larger than {MAX_SECRET_BYTES}"),
    ],
)
def test_a_bad_secret_file_is_a_named_error_without_its_value(
    tmp_path: Path, text: str, mode: int, problem: str
) -> None:
    path = secret_file(tmp_path, "secret", text, mode)
    with pytest.raises(ConfigError, match=problem) as caught:
        read_secret_file(path, key="digest.smtp_password_file", config_path="mirror.toml")
    message = str(caught.value)
    assert "digest.smtp_password_file" in message and str(path) in message
    assert "hunter2" not in message


def test_missing_binary_and_fifo_secret_files_are_named_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_secret_file(tmp_path / "nothing", key="k")
    (tmp_path / "binary").write_bytes(b"\xff\xfehunter2")
    (tmp_path / "binary").chmod(0o600)
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        read_secret_file(tmp_path / "binary", key="k")
    assert "hunter2" not in str(caught.value)
    os.mkfifo(tmp_path / "fifo", 0o600)  # a reader would block on it forever
    with pytest.raises(ConfigError, match="not a regular file"):
        read_secret_file(tmp_path / "fifo", key="k")
    (tmp_path / "folder").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_secret_file(tmp_path / "folder", key="k")


def config_with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mirror.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_digest_secrets_come_from_their_files_which_win_over_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"  # as systemd's $CREDENTIALS_DIRECTORY
    credentials.mkdir()
    secret_file(credentials, "smtp", "smtp-from-file\n")
    secret_file(credentials, "unsubscribe", SECRET + "\n")
    secret_file(credentials, "previous", "first-secret-0123456\nsecond-secret-012345\n")
    monkeypatch.setenv("MIRROR_SMTP_PASSWORD", "smtp-from-env")
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "unsubscribe-from-the-environment")
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_PREVIOUS_SECRETS", "previous-from-the-environment")
    config = load_config(
        config_with(
            tmp_path,
            '[digest]\nsmtp_url = "smtps://127.0.0.1:465"\nsmtp_username = "mirror"\n'
            f'smtp_password_file = "{credentials}/smtp"\n'
            'unsubscribe_secret_file = "credentials/unsubscribe"\n'  # relative: config folder
            'unsubscribe_previous_secrets_file = "credentials/previous"\n',
        )
    )
    assert smtp_password(config) == "smtp-from-file"
    assert secret_from(config) == SECRET.encode()
    assert previous_secrets(config) == (b"first-secret-0123456", b"second-secret-012345")


def test_a_missing_or_short_secret_file_names_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "unsubscribe-from-the-environment")
    path = config_with(tmp_path, '[digest]\nunsubscribe_secret_file = "gone"\n')
    with pytest.raises(ConfigError, match=r"digest\.unsubscribe_secret_file: .* does not exist"):
        secret_from(load_config(path))
    secret_file(tmp_path, "gone", "short-hunter2")
    with pytest.raises(ConfigError, match="16 characters") as caught:
        secret_from(load_config(path))
    assert "digest.unsubscribe_secret_file" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_the_signing_keys_passphrase_comes_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = minisign.generate_key()
    keys = tmp_path / "keys"
    minisign.write_key_pair(
        key, keys / "mirror.key", keys / "mirror.pub", "correct horse", **FAST_KDF
    )
    secret_file(tmp_path, "passphrase", "correct horse\n")
    monkeypatch.setenv("MIRROR_KEY_PASSPHRASE", "wrong horse")
    config = load_config(
        config_with(
            tmp_path,
            '[signing]\npassphrase_env = "MIRROR_KEY_PASSPHRASE"\npassphrase_file = "passphrase"\n',
        )
    )
    assert load_signing_key(config).public == key.public
