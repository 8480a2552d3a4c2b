"""Logs on stderr: one line per event (newlines in messages and tracebacks escaped),
`--log-json` one JSON object per line, and never an address or a secret in either, on a
whole demo and on a digest sent to a real SMTP server with AUTH, at -vv."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import sys
from pathlib import Path

import pytest

from mirror.cli import configure_logging, run
from mirror.logs import JsonLineFormatter, OneLineFormatter, one_line

from cli_configs import mirror_table, with_store, write_config
from smtp_servers import make_certificate, smtp_server

ADDRESSES = ("reader-en@example.org", "reader-ru@example.org", "chitatel@example.net")


def record(message: str, *, traceback: bool = False) -> logging.LogRecord:
    """A record as `log.exception` (traceback) or `log.warning` makes it."""
    exc_info = None
    if traceback:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("mirror", logging.WARNING, __file__, 1, message, (), exc_info)


def test_a_message_and_its_traceback_make_one_line() -> None:
    line = OneLineFormatter().format(record("two\nlines\tand \x1b[31mred", traceback=True))
    assert "\n" not in line and "\x1b" not in line
    assert line.startswith("mirror: two\\nlines\\tand \\x1b[31mred | Traceback (most recent")
    assert "ValueError: bad\\nvalue" in line
    assert one_line("a\u2028b\rc") == "a\\u2028b\\rc"


def test_json_lines_carry_ts_level_logger_msg_and_exc() -> None:
    formatter = JsonLineFormatter()
    plain = json.loads(formatter.format(record("line\none")))
    assert set(plain) == {"ts", "level", "logger", "msg"}
    assert plain["msg"] == "line\none" and plain["level"] == "warning"
    assert plain["logger"] == "mirror" and plain["ts"].endswith("+00:00")
    failed = formatter.format(record("oops", traceback=True))
    assert "\n" not in failed
    assert "ValueError: bad\nvalue" in json.loads(failed)["exc"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_json_is_a_global_flag(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mirror.toml"
    config.write_text("[publication]\nnmae = 'x'\n")
    args = ["-c", str(config), "status"]
    status = run(["--log-json", *args] if where == "before" else [*args, "--log-json"])
    assert status == 2
    lines = capsys.readouterr().err.splitlines()
    entries = [json.loads(line) for line in lines]
    assert entries and all(entry["level"] == "error" for entry in entries)
    assert "did you mean" in entries[-1]["msg"] or "nmae" in entries[-1]["msg"]
    configure_logging(0)  # the next test logs as usual


def assert_nothing_private(output: str, secrets_made: list[bytes], key_file: Path) -> None:
    for address in ADDRESSES:
        assert address not in output, address
    for value in secrets_made:
        for spelled in (
            value.hex(),
            base64.b64encode(value).decode(),
            base64.urlsafe_b64encode(value).decode().rstrip("="),
        ):
            assert spelled[:16] not in output
    for line in key_file.read_text().splitlines()[1:]:  # the secret key, base64
        assert line[:24] not in output


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["text", "json"])
def test_a_whole_demo_at_debug_logs_no_address_or_secret(
    mode: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[bytes] = []
    real = secrets.token_bytes

    def recorded(count: int | None = None) -> bytes:
        made.append(real(count))
        return made[-1]

    monkeypatch.setattr(secrets, "token_bytes", recorded)
    folder = tmp_path / "demo"
    flags = ["--log-json"] if mode == "json" else []
    status = run([*flags, "-vv", "demo", "--dir", str(folder), "--articles", "4", "--no-serve"])
    out = capsys.readouterr()
    assert status == 0, out.err
    lines = out.err.splitlines()
    assert len(lines) > 10
    if mode == "json":
        entries = [json.loads(line) for line in lines]  # every line one object
        assert "info" in {entry["level"] for entry in entries}
        debug = {entry["logger"] for entry in entries if entry["level"] == "debug"}
        for stage in ("fetch", "build", "publish", "digest"):  # so the checks below see them
            assert f"mirror.detail.{stage}" in debug, (stage, debug)
    else:
        assert all(line.startswith("mirror: ") for line in lines)
    assert len(made) >= 2  # the demo's own secrets were made, and are checked for below
    key_file = next((folder / "keys").glob("*.key"))
    assert_nothing_private(out.out + out.err, made, key_file)
    outbox = "".join(p.read_text() for p in folder.rglob("*.eml"))
    assert "reader-en@example.org" in outbox  # the addresses were there to leak


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["text", "json"])
def test_a_digest_sent_with_smtp_auth_logs_no_address_or_password(
    mode: str,
    tmp_path: Path,
    fetched_store: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = "Pa55-word-" + secrets.token_hex(8)
    unsubscribe = "unsubscribe-" + secrets.token_hex(16)
    cert = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_file))  # the client trusts it
    monkeypatch.setenv("MIRROR_SMTP_PASSWORD", password)
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", unsubscribe)
    with smtp_server(starttls=cert.server_context(), logins={"mirror": password}) as server:
        tables = mirror_table("site", type="directory", path=str(tmp_path / "www"),
                              public_url="https://m.example.net/")  # fmt: skip
        config = with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store)
        text = config.read_text().replace(
            "[digest]\n",
            f'[digest]\nsmtp_url = "smtp://127.0.0.1:{server.port}"\nsmtp_username = "mirror"\n'
            'unsubscribe_url = "https://n.example.org/u"\n',
        )
        config.write_text(text)
        for address in ADDRESSES[:2]:
            assert run(["-c", str(config), "subscribers", "add", address]) == 0
        assert run(["-c", str(config), "build"]) == 0
        capsys.readouterr()
        flags = ["--log-json"] if mode == "json" else []
        status = run([*flags, "-vv", "-c", str(config), "digest", "send", "--json"])
        out = capsys.readouterr()
    assert status == 0, out.err
    assert json.loads(out.out)["sent"] == 2
    assert sorted(r for m in server.handler.received for r in m.rcpt_tos) == sorted(ADDRESSES[:2])
    if mode == "json":
        assert all(json.loads(line)["msg"] for line in out.err.splitlines())
    for private in (*ADDRESSES, password, unsubscribe):
        assert private not in out.out + out.err, private
    key_file = tmp_path / "keys" / "mirror.key"
    assert_nothing_private(out.out + out.err, [], key_file)


# What other code prints: an uncaught exception in a thread, a warning, asyncio's "Task
# exception was never retrieved", an uncaught exception in the main thread, and the
# forced exit's line, in that order.
OTHER_OUTPUT = """
import asyncio, gc, sys, threading, warnings
from mirror import cli
cli.configure_logging(0, json_lines=sys.argv[1] == "json")

def fail():
    raise ValueError("in a thread\\\\nsecond line")

thread = threading.Thread(target=fail, name="worker-1")
thread.start()
thread.join()
warnings.warn("a library's warning")

async def lost():
    raise RuntimeError("lost task")

async def main():
    asyncio.get_running_loop().create_task(lost())
    await asyncio.sleep(0.01)

asyncio.run(main())
gc.collect()
if sys.argv[2] == "hard":
    cli.hard_exit(143, "still stopping after 1.5 s: exiting now")
raise LookupError("uncaught")
"""


@pytest.mark.parametrize("mode", ["json", "plain"])
@pytest.mark.parametrize("ending", ["hard", "uncaught"])
def test_what_other_code_prints_goes_through_the_one_line_formatters(
    mode: str, ending: str
) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", OTHER_OUTPUT, mode, ending], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == (143 if ending == "hard" else 1), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 4, done.stderr
    if mode == "json":
        messages = [json.loads(line)["msg"] for line in lines]
    else:
        assert all(line.startswith("mirror: ") for line in lines), done.stderr
        messages = [line.removeprefix("mirror: ").split(" | ")[0] for line in lines]
    assert messages[0].startswith("uncaught in worker-1: ValueError: in a thread")
    assert "a library's warning" in messages[1]
    assert messages[2].startswith("Task exception was never retrieved")
    last = {"hard": "still stopping after 1.5 s: exiting now", "uncaught": "uncaught LookupError"}
    assert messages[3].startswith(last[ending])


# ---------------------------------------------------------------- -q: errors and warnings


def test_a_quiet_sync_says_which_feed_and_mirror_failed_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], web_root: tuple[Path, str]
) -> None:
    from servers import closed_port

    dead = f"http://127.0.0.1:{closed_port()}"
    tables = mirror_table(
        "site", type="directory", path=str(web_root[0] / "s"), public_url=web_root[1] + "s/"
    ) + mirror_table(
        "gone", type="directory", path=str(tmp_path / "file" / "gone"),
        public_url="https://g.example/",
    )  # fmt: skip
    (tmp_path / "file").write_text("a file where the mirror's folder should be")
    config = str(write_config(tmp_path, dead + "/", tables))
    status = run(["-q", "-c", config, "sync"])
    err = capsys.readouterr().err
    assert status == 1
    lines = err.splitlines()
    failures = [
        n for n, line in enumerate(lines) if line.startswith(f"mirror: fetch failed: {dead}/")
    ]
    assert failures, err
    fetch_line = next(n for n, line in enumerate(lines) if line.startswith("mirror: fetch: "))
    assert failures[0] == fetch_line + 1, err  # listed beside the fetch line, not at the end
    assert any(line.startswith("mirror: fetch: ") and " failed" in line for line in lines), err
    assert any(line.startswith("mirror: publish gone: FAILED") for line in lines), err
    assert not any(line.startswith("mirror: publish site:") for line in lines), err  # info

    status = run(["-q", "-c", config, "status"])
    err = capsys.readouterr().err
    assert status == 1 and "gone" in err and "mirror: site" not in err, err


def test_fetch_failures_are_listed_up_to_20_then_counted() -> None:
    from mirror.fetch.stage import Failure, FetchReport

    report = FetchReport(
        failed=[Failure(f"https://o.example/{n}", "404 Not Found") for n in range(25)]
    )
    lines = report.failure_lines()
    assert lines[0] == "fetch failed: https://o.example/0: 404 Not Found"
    assert len(lines) == 21 and lines[-1] == "... and 5 more failed (all in --json)"


@pytest.mark.parametrize(
    ("flag", "shown"), [(None, set()), ("-v", {"info"}), ("-vv", {"info", "debug"})]
)
def test_v_shows_the_detail_loggers_info_and_vv_their_debug(
    flag: str | None, shown: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging({None: 0, "-v": 1, "-vv": 2}[flag])
    detail = logging.getLogger("mirror.detail.fetch")
    detail.info("an info line")
    detail.debug("a debug line")
    err = capsys.readouterr().err
    assert ("an info line" in err) == ("info" in shown)
    assert ("a debug line" in err) == ("debug" in shown)
    configure_logging(0)
