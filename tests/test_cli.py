from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.store import RunLock

CONFIG = """
[source]
feeds = ["http://127.0.0.1:9/rss.xml"]
allowed_hosts = ["127.0.0.1"]
retries = 0
"""


def write_config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "mirror.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_config_exits_2_with_one_clear_line_and_no_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[source]\nconcurency = 4\n")
    result = subprocess.run(
        [sys.executable, "-m", "mirror", "-c", str(path), "fetch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "source.concurency" in result.stderr and "did you mean" in result.stderr
    assert result.stdout == ""


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run(["no-such-command"])
    assert caught.value.code == 2


def test_config_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "[sorce]\n")
    monkeypatch.setenv("MIRROR_CONFIG", str(path))
    assert run(["fetch"]) == 2
    assert str(path) in capsys.readouterr().err


def test_second_run_is_refused_while_one_holds_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    with RunLock(tmp_path / "state" / "mirror.db"):
        assert run(["-c", str(path), "fetch"]) == 2
    assert "another mirror run" in capsys.readouterr().err


def test_unreachable_feed_is_a_partial_run_reported_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    path = write_config(tmp_path)
    assert run(["-c", str(path), "fetch", "--json"]) == 1
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert report["failed"][0]["url"] == "http://127.0.0.1:9/rss.xml"
    assert report["new"] == 0
    assert "failed" in out.err


def test_backup_copies_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    assert run(["-c", str(path), "backup", str(tmp_path / "copy.db")]) == 2  # no store yet
    previous = os.umask(0o022)
    try:
        run(["-c", str(path), "fetch"])
        assert run(["-c", str(path), "backup", str(tmp_path / "copy.db")]) == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "copy.db").stat().st_size > 0
    assert stat.S_IMODE((tmp_path / "copy.db").stat().st_mode) == 0o600  # subscribers inside
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(["--help"])
    out = capsys.readouterr().out
    for command in ("fetch", "backup", "demo"):
        assert command in out
    assert "Exit status" in out


AS_A_PLAIN_USER = (  # root or not, a process of this uid with no capabilities (no ptrace)
    "import sys\nfrom mirror import sandbox\nsandbox._drop_capabilities(sandbox._libc())\n"
)
READER = (
    AS_A_PLAIN_USER
    + """
try:
    data = open(f"/proc/{sys.argv[1]}/environ", "rb").read()
    print("read", b"hunter2" in data)
except PermissionError:
    print("denied")
"""
)


def environ_seen_by_a_same_uid_process(target_code: str, config: Path) -> str:
    env = {**os.environ, "MIRROR_SMTP_PASSWORD": "hunter2-smtp"}
    target = subprocess.Popen(
        [sys.executable, "-c", AS_A_PLAIN_USER + target_code, str(config)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert target.stdout is not None and target.stdout.readline().strip() == "ready"
        reader = subprocess.run(
            [sys.executable, "-c", READER, str(target.pid)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return reader.stdout.strip() or reader.stderr
    finally:
        target.kill()
        target.wait()


def test_no_process_of_the_same_user_reads_the_secrets_in_mirrors_environment(
    tmp_path: Path,
) -> None:
    """The CLI makes itself non-dumpable before it reads a secret, so /proc/<pid>/environ
    (and memory) is closed to other processes of its user; a plain process is not."""
    plain = "print('ready', flush=True)\nsys.stdin.read()\n"
    assert environ_seen_by_a_same_uid_process(plain, tmp_path) == "read True"
    through_cli = (
        "from mirror.cli import run\n"
        "run(['-c', sys.argv[1], 'fetch'])\n"  # a missing config: exits 2, process stays
        "print('ready', flush=True)\nsys.stdin.read()\n"
    )
    assert environ_seen_by_a_same_uid_process(through_cli, tmp_path / "no.toml") == "denied"
