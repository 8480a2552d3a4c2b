"""A stalled or hostile mirror cannot hold a run.

Tried as ops would: mirrors that accept TCP and never answer (or hang on uploads) next to
good ones; `mirror sync`/`publish` run in-process, or as real processes (stderr on a
pseudo-terminal, in a session of their own, so a signal to the process group is a
terminal's Ctrl-C) that are sent SIGINT or SIGTERM mid-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mirror import cli
from mirror.config import MirrorConfig, load_config
from mirror.errors import ConfigError, MirrorDeadlineError, MirrorUnreachableError
from mirror.newsroom import NewsroomOptions, RunningNewsroom, serve_newsroom
from mirror.publish.publisher import Deadline, within_deadline
from mirror.storage.directory import LOCK_NAME, DirectoryBackend
from mirror.storage.s3 import S3Backend
from mirror.store import Store
from mirror.trust import minisign

from cli_configs import cli as run_cli
from cli_configs import mirror_table, with_store, write_config
from moto_server import REGION, create_bucket
from stalled_servers import StalledServer, WriteStalledS3

STALL_TIMEOUT_S = 60  # the stalled mirror's own timeout_s in the signal tests
# The one time bound of the signal tests, as the longest wait for the process to exit:
# nothing but time shows that a stop did not wait for a stalled call (the process is gone,
# its connections with it). Far below STALL_TIMEOUT_S, so a stop that waits for the stalled
# mirror fails; generous for a loaded machine (the target is cli.STOP_GRACE_S).
STOPPED_WITHIN_S = 10.0
REACH_S = 180.0  # for a subprocess to get to the point a test waits for


# ---------------------------------------------------------------- helpers


def s3_table(name: str, endpoint: str, bucket: str, timeout_s: float, deadline_s: float) -> str:
    return mirror_table(
        name, type="s3", bucket=bucket, endpoint_url=endpoint, region=REGION,
        public_url=f"{endpoint}/{bucket}/",
    ) + f"timeout_s = {timeout_s}\ndeadline_s = {deadline_s}\n"  # fmt: skip


def site_table(folder: Path) -> str:
    return mirror_table("site", type="directory", path=str(folder), public_url="https://s.example/")


def aws_environment() -> dict[str, str]:
    """This process's environment with fake S3 credentials and none of the host's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )  # fmt: skip
    return env


@contextlib.contextmanager
def newsroom_in_thread(options: NewsroomOptions) -> Iterator[RunningNewsroom]:
    """The sample newsroom on 127.0.0.1 from a thread of its own, stopped at the end."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    holder: list[RunningNewsroom] = []

    async def serve() -> None:
        async with serve_newsroom(options) as running:
            holder.append(running)
            started.set()
            await stop.wait()

    def run() -> None:
        loop.run_until_complete(serve())
        left = asyncio.all_tasks(loop)  # requests still being answered (latency_s)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        yield holder[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


class MirrorProcess:
    """`python -m mirror ARGS` in a session of its own, its stderr on a pseudo-terminal
    (as ops see it: progress bars on) or, `terminal=False`, on a pipe (as cron, journald
    or Loki see it: every line a log record)."""

    def __init__(self, *args: str, env: dict[str, str], terminal: bool = True) -> None:
        master, slave = pty.openpty() if terminal else os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mirror", *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=slave, env=env, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self._master = master
        self._output = b""

    @property
    def output(self) -> str:
        return self._output.decode("utf-8", "replace")

    def read_until(self, text: str, timeout_s: float = REACH_S) -> bool:
        """Read stderr until `text` shows (True), the process ends or time is up."""
        deadline = time.monotonic() + timeout_s
        while text not in self.output:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                return False
        return True

    def _read(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self._master], [], [], timeout_s)
        if not ready:
            return True
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # EIO: the process and its children are gone
            return False
        self._output += chunk
        return bool(chunk)

    def interrupt(self, number: int = signal.SIGINT) -> None:
        """Signal the process group, as a terminal's Ctrl-C does."""
        os.killpg(self.process.pid, number)

    def wait(self, timeout_s: float) -> int:
        """The exit status (killed after `timeout_s`: the test fails), stderr read to the end."""
        try:
            status = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise
        finally:
            while self._read(0.5):
                pass
            os.close(self._master)
        return status

    def children(self) -> set[int]:
        """The pids whose parent is this process (its worker processes)."""
        return children_of(self.process.pid)


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ---------------------------------------------------------------- timeouts and deadlines


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ("deadline_s = 0\n", "mirrors[0].deadline_s: must be above 0"),
        ("deadline_s = 100000\n", "mirrors[0].deadline_s: must be above 0 and at most 86_400"),
        ("timeout_s = inf\n", "mirrors[0].timeout_s"),
        ("timeout_s = -1\n", "mirrors[0].timeout_s: must be above 0"),
        ('timeout_s = "5"\n', "mirrors[0].timeout_s: must be a number"),
    ],
)
def test_a_mirrors_timeout_and_deadline_have_ranges(tmp_path: Path, lines: str, words: str) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9/", site_table(tmp_path / "site") + lines)
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_config(path)


def test_a_mirrors_timeout_and_deadline_default_to_30_and_120_s(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9/", site_table(tmp_path / "site"))
    (mirror,) = load_config(path).mirrors
    assert (mirror.timeout_s, mirror.deadline_s) == (30.0, 120.0)


async def test_within_deadline_names_the_mirror_that_passed_it() -> None:
    assert await within_deadline(asyncio.sleep(0, "done"), "fast", Deadline(5)) == "done"
    slow = asyncio.ensure_future(asyncio.sleep(30))
    with pytest.raises(MirrorDeadlineError, match=r"slow: not done within its deadline of 0\.2 s"):
        await within_deadline(slow, "slow", Deadline(0.2))
    used_up = asyncio.ensure_future(asyncio.sleep(30))
    with pytest.raises(MirrorDeadlineError, match="deadline of 60 s"):  # used up earlier
        await within_deadline(used_up, "slow", Deadline(60).spending(59.9))
    assert slow.cancelled() and used_up.cancelled()  # abandoned, not waited out


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
async def test_an_s3_call_past_timeout_s_is_abandoned_and_close_does_not_wait() -> None:
    with StalledServer() as stalled:
        mirror = MirrorConfig(
            name="stalled", type="s3", public_url="https://x.example/", bucket="stalled-bucket",
            endpoint_url=stalled.url, region=REGION, timeout_s=1,
        )  # fmt: skip
        backend = S3Backend(mirror)
        # the call's limit, not botocore's own read timeout ("timed out waiting"), 3 times
        with pytest.raises(MirrorUnreachableError, match=r"no answer within 1 s \(timeout_s\)"):
            await backend.get("current", max_bytes=100)
        assert stalled.connected.is_set()

        await backend.close()
    with StalledServer() as stalled:
        slow = S3Backend(replace(mirror, name="slow", endpoint_url=stalled.url, timeout_s=60))
        call = asyncio.create_task(slow.get("current", max_bytes=100))
        assert await asyncio.to_thread(stalled.connected.wait, 10)
        await asyncio.sleep(0.2)  # the call is in its thread, blocked on the socket
        call.cancel()
        await slow.close()  # calls in flight are abandoned, not waited for
        assert stalled.open_connections() == 1  # the call's, still waiting on its 60 s
        with pytest.raises(asyncio.CancelledError):
            await call


async def test_a_directory_call_past_timeout_s_is_abandoned(tmp_path: Path) -> None:
    mirror = MirrorConfig(
        name="locked", type="directory", public_url="https://x.example/", path=tmp_path,
        timeout_s=0.5,
    )  # fmt: skip
    backend = DirectoryBackend(mirror)
    (tmp_path / LOCK_NAME).touch()
    with (tmp_path / LOCK_NAME).open("r+") as held:  # another process holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(MirrorUnreachableError, match=r"no answer within 0\.5 s"):
            await backend.put(
                "current", b"1\n", content_type="text/plain", cache_control="no-cache",
                if_none_match=True,
            )  # fmt: skip
        await backend.close()  # and the lock is still held: the call did not wait for it


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
def test_publish_fails_a_stalled_mirror_at_its_deadline_and_the_good_one_publishes(
    tmp_path: Path,
    fetched_store: Path,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = create_bucket(moto_endpoint)
    with StalledServer() as stalled:
        tables = s3_table("good", moto_endpoint, bucket, 30, 120) + s3_table(
            "stalled", stalled.url, "stalled-bucket", 60, 2
        )
        config = str(
            with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store)
        )
        assert run_cli(capsys, "-c", config, "build")[0] == 0
        status, report, err = run_cli(capsys, "-c", config, "publish", "--json")
        assert stalled.connected.is_set()
        # done before its 60 s timeout_s: a request of the run still waits on it
        assert stalled.open_connections() >= 1
    results = {m["name"]: m for m in report["mirrors"]}
    assert status == 1
    assert results["good"]["ok"] and results["good"]["uploaded"] > 30
    assert results["good"]["version"] == 1
    assert not results["stalled"]["ok"]
    assert "not done within its deadline of 2 s (deadline_s)" in results["stalled"]["error"]
    assert "stalled: FAILED: not done within its deadline" in err


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
def test_sync_bounds_a_stalled_mirror_by_its_deadline_live_read_included(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        newsroom_in_thread(NewsroomOptions(articles=3, feed_items=0)) as newsroom,
        StalledServer() as stalled,
    ):
        tables = site_table(tmp_path / "site") + s3_table(
            "stalled", stalled.url, "stalled-bucket", 60, 3
        )
        config = str(write_config(tmp_path, newsroom.base_url, tables))
        status, report, err = run_cli(capsys, "-c", config, "sync", "--json")
        # the live read before the build used the whole deadline: the publish fails at
        # once, without asking the mirror again, and before its 60 s timeout_s
        assert stalled.connections == stalled.open_connections() == 1
    results = {m["name"]: m for m in report["publish"]["mirrors"]}
    assert status == 1 and results["site"]["ok"] and results["site"]["version"] == 1
    assert "deadline of 3 s" in results["stalled"]["error"]
    assert "publish stalled: FAILED: not done within its deadline of 3 s" in err


# ---------------------------------------------------------------- sync reports each stage


@pytest.mark.usefixtures("aws_env")
def test_sync_checks_the_keys_before_it_fetches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with newsroom_in_thread(NewsroomOptions(articles=3, feed_items=0)) as newsroom:
        path = write_config(tmp_path, newsroom.base_url, site_table(tmp_path / "site"))
        root = minisign.generate_key()
        minisign.write_key_pair(
            root, tmp_path / "keys" / "root.key", tmp_path / "keys" / "root.pub", None
        )
        text = path.read_text().replace(
            "[signing]\n", '[signing]\nroot_public_key_file = "keys/root.pub"\n'
        )
        path.write_text(text)
        status, _, err = run_cli(capsys, "-c", str(path), "sync")
        requests = list(newsroom.newsroom.requests.entries)
    assert status == 2
    assert "keys.json is missing" in err and "signing.certificate_file" in err
    assert requests == []  # nothing fetched, so nothing fetched unreported
    with Store(tmp_path / "state" / "mirror.db") as store:
        assert store.list_articles() == []


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_waits_for_work_and_each_stage_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", screen)
    bar = cli.BarProgress("sync", quiet=False)
    assert screen.getvalue() == ""  # no frozen `sync: 0item` while nothing is known
    bar.add_total(0)
    assert screen.getvalue() == ""
    bar.add_total(2)
    bar.advance(2)
    bar.stage_done("fetch: 2 new")
    assert "2/2" in screen.getvalue()  # closed: its last state stays on screen
    shown = len(screen.getvalue())
    bar.advance()  # between stages: no bar to move
    bar.close()
    assert len(screen.getvalue()) == shown


# ---------------------------------------------------------------- signals


def sync_setup(folder: Path, newsroom: RunningNewsroom, hanging_url: str) -> str:
    tables = site_table(folder / "site") + s3_table(
        "hanging", hanging_url, "hanging-bucket", STALL_TIMEOUT_S, 2 * STALL_TIMEOUT_S
    )
    return str(write_config(folder, newsroom.base_url, tables))


@pytest.mark.slow
def test_ctrl_c_stops_a_sync_held_by_a_stalled_mirror_and_what_was_done_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        newsroom_in_thread(NewsroomOptions(articles=4, feed_items=0)) as newsroom,
        WriteStalledS3() as hanging,
    ):
        config = sync_setup(tmp_path, newsroom, hanging.url)
        run = MirrorProcess("-c", config, "sync", env=aws_environment())
        assert run.read_until("publish site: version 1:"), run.output
        assert hanging.writes.wait(REACH_S)  # the hanging mirror's upload is in flight
        run.interrupt(signal.SIGINT)
        status = run.wait(STOPPED_WITHIN_S)
    output = run.output
    assert status == 130, output
    assert "Traceback" not in output, output
    assert "interrupted (SIGINT): stopped" in output
    lines = [line for line in output.splitlines() if "mirror: " in line]
    stages = [line.split("mirror: ", 1)[1].split(":", 1)[0] for line in lines]
    assert stages[:3] == ["fetch", "build", "publish site"], lines
    assert "0item" not in output
    assert (tmp_path / "site" / "current").read_text() == "1\n"
    # the run lock went with the process: the next run starts (and has nothing to do)
    status, report, _ = run_cli(capsys, "-c", config, "publish", "--mirror", "site", "--json")
    assert status == 0 and report["mirrors"][0]["uploaded"] == 0


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize(
    ("signals", "status", "words"),
    [
        ((signal.SIGTERM,), 143, "interrupted (SIGTERM): stopped"),
        ((signal.SIGINT, signal.SIGINT), 130, "mirror: "),  # the second may come at any point
    ],
)
@pytest.mark.slow
def test_sigterm_or_two_ctrl_c_stop_a_publish_held_by_a_silent_mirror(
    tmp_path: Path,
    fetched_store: Path,
    capsys: pytest.CaptureFixture[str],
    signals: tuple[int, ...],
    status: int,
    words: str,
) -> None:
    with StalledServer() as stalled:
        tables = site_table(tmp_path / "site") + s3_table(
            "silent", stalled.url, "silent-bucket", STALL_TIMEOUT_S, 2 * STALL_TIMEOUT_S
        )
        config = str(
            with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store)
        )
        assert run_cli(capsys, "-c", config, "build")[0] == 0
        run = MirrorProcess("-c", config, "publish", env=aws_environment())
        assert stalled.connected.wait(REACH_S), run.output
        for number in signals:
            run.interrupt(number)
        returned = run.wait(STOPPED_WITHIN_S)
    assert returned == status, run.output
    assert "Traceback" not in run.output and words in run.output, run.output
    assert run_cli(capsys, "-c", config, "publish", "--mirror", "site")[0] == 0  # lock free


@pytest.mark.slow
def test_ctrl_c_during_fetch_stops_the_workers_without_tracebacks(tmp_path: Path) -> None:
    options = NewsroomOptions(articles=6, feed_items=0, latency_s=5.0)
    with newsroom_in_thread(options) as newsroom:
        tables = site_table(tmp_path / "site")
        config = str(write_config(tmp_path, newsroom.base_url, tables))
        run = MirrorProcess("-c", config, "sync", env=aws_environment())
        deadline = time.monotonic() + REACH_S
        while not newsroom.newsroom.requests.entries and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the fetch to start: the pool is up by then
        assert newsroom.newsroom.requests.entries, run.output
        workers = run.children()
        assert workers, "no worker processes"
        run.interrupt(signal.SIGINT)
        status = run.wait(STOPPED_WITHIN_S)
    assert status == 130, run.output
    assert "Traceback" not in run.output and "KeyboardInterrupt" not in run.output, run.output
    gone_by = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < gone_by:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def assert_log_lines(output: str, *, json_lines: bool) -> list[str]:
    """Every line of `output` one log record, none a traceback; their messages."""
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert "never retrieved" not in output and "resource_tracker" not in output, output
    lines = output.splitlines()
    if json_lines:
        records = [json.loads(line) for line in lines]
        assert all(set(record) >= {"ts", "level", "logger", "msg"} for record in records)
        return [record["msg"] for record in records]
    assert all(line.startswith("mirror: ") for line in lines), output
    return [line.removeprefix("mirror: ") for line in lines]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("number", "status", "json_lines"),
    [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)],
)
def test_an_interrupt_during_the_build_stops_sync_in_one_line_records(
    tmp_path: Path, number: int, status: int, json_lines: bool
) -> None:
    with newsroom_in_thread(NewsroomOptions(articles=60, feed_items=0)) as newsroom:
        config = str(write_config(tmp_path, newsroom.base_url, site_table(tmp_path / "site")))
        flags = ["--log-json"] if json_lines else []
        run = MirrorProcess(*flags, "-c", config, "sync", env=aws_environment(), terminal=False)
        # the fetch's summary line is the build's start
        assert run.read_until('"msg": "fetch: ' if json_lines else "mirror: fetch: "), run.output
        run.interrupt(number)
        returned = run.wait(STOPPED_WITHIN_S)
    messages = assert_log_lines(run.output, json_lines=json_lines)
    assert returned == status, run.output
    signal_name = "SIGINT" if status == 130 else "SIGTERM"
    assert messages[-1] == f"interrupted ({signal_name}): stopped", messages
    assert not any(m.startswith("publish") for m in messages), messages  # stopped in build
    assert not (tmp_path / "site" / "current").exists()


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
@pytest.mark.parametrize(
    ("number", "status", "json_lines"),
    [(signal.SIGTERM, 143, True), (signal.SIGINT, 130, False)],
)
def test_an_interrupt_during_the_live_version_read_stops_sync_in_one_line_records(
    tmp_path: Path, number: int, status: int, json_lines: bool
) -> None:
    with (
        newsroom_in_thread(NewsroomOptions(articles=3, feed_items=0)) as newsroom,
        StalledServer() as stalled,
    ):
        tables = s3_table(
            "silent", stalled.url, "silent-bucket", STALL_TIMEOUT_S, 2 * STALL_TIMEOUT_S
        )
        config = str(write_config(tmp_path, newsroom.base_url, tables))
        flags = ["--log-json"] if json_lines else []
        run = MirrorProcess(*flags, "-c", config, "sync", env=aws_environment(), terminal=False)
        assert stalled.connected.wait(REACH_S), run.output  # the live version's request
        run.interrupt(number)
        returned = run.wait(STOPPED_WITHIN_S)
    messages = assert_log_lines(run.output, json_lines=json_lines)
    assert returned == status, run.output
    signal_name = "SIGINT" if status == 130 else "SIGTERM"
    assert messages[-1] == f"interrupted ({signal_name}): stopped", messages
    assert messages[0].startswith("fetch: ") and len(messages) == 2, messages


@pytest.mark.slow
@pytest.mark.parametrize(
    ("waited_for", "number", "status"),
    [
        ("mirror: fetch: ", signal.SIGTERM, 143),  # during the run: the build is next
        ("mirror: serving the mirrors until Ctrl-C", signal.SIGINT, 130),
    ],
)
def test_an_interrupted_demo_exits_130_or_143_in_one_line_records(
    tmp_path: Path, waited_for: str, number: int, status: int
) -> None:
    run = MirrorProcess(
        "demo", "--dir", str(tmp_path / "demo"), "--articles", "4", env=aws_environment(),
        terminal=False,
    )  # fmt: skip
    assert run.read_until(waited_for), run.output
    run.interrupt(number)
    returned = run.wait(STOPPED_WITHIN_S)
    messages = assert_log_lines(run.output, json_lines=False)
    assert returned == status, run.output
    assert messages[-1] == f"demo stopped ({signal.Signals(number).name})", messages
    assert not any("still stopping" in message for message in messages), messages


# A signal that arrives while one of several tasks runs (here: sent by it): the stop
# cancels the main task, so that task and its siblings unwind through their own
# `finally` rather than one of them raising KeyboardInterrupt mid-step.
INTERRUPTED_TASKS = """
import asyncio, os, signal, sys
from mirror import cli
cli.configure_logging(0, json_lines=True)
cli.INTERRUPTS.install()

async def task(number):
    await asyncio.sleep(0)
    if number == 3:
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once, inside this task's step
    try:
        await asyncio.sleep(60)
    finally:
        print("cleaned", number, flush=True)

async def main():
    await asyncio.gather(*(task(number) for number in range(5)))

try:
    cli.run_async(main())
except KeyboardInterrupt:
    print("stopped", flush=True)
cli.leave(cli.INTERRUPTS.exit_status())
"""


def test_an_interrupt_cancels_the_main_task_and_every_task_cleans_up() -> None:
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_TASKS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr == ""  # no traceback, no "Task exception was never retrieved"
    cleaned = sorted(done.stdout.splitlines()[:-1])
    assert cleaned == [f"cleaned {n}" for n in range(5)] and done.stdout.endswith("stopped\n")


HANGING_STOP = """
import sys, time
from mirror import cli
cli.INTERRUPTS.install()
try:
    print("running", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    print("stopping", flush=True)
    time.sleep(60)  # a clean-up that hangs
"""


def hanging_stop() -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HANGING_STOP], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == "running\n"
    return process


@pytest.mark.slow
def test_a_stop_that_hangs_is_cut_short_and_a_second_ctrl_c_exits_at_once() -> None:
    process = hanging_stop()
    process.send_signal(signal.SIGINT)
    assert process.wait(STOPPED_WITHIN_S) == 130  # not the clean-up's 60 s
    _, err = process.communicate()
    # the exit came from the grace timer (STOP_GRACE_S), the only one that says this
    assert f"still stopping after {cli.STOP_GRACE_S:g} s: exiting now" in err

    process = hanging_stop()
    assert process.stdout is not None
    process.send_signal(signal.SIGINT)
    assert process.stdout.readline() == "stopping\n"
    process.send_signal(signal.SIGINT)
    assert process.wait(STOPPED_WITHIN_S) == 130
    _, err = process.communicate()
    assert "second interrupt: exiting at once" in err and "still stopping" not in err
    assert "Traceback" not in err


def test_the_exit_statuses_of_signals_are_in_the_readme_and_help() -> None:
    assert cli.EXIT_SIGNALLED == {signal.SIGINT: 130, signal.SIGTERM: 143}
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("### Exit status", 1)[1].split("###", 1)[0]
    assert "| 130 |" in table and "| 143 |" in table
    help_text = " ".join(cli.build_parser().format_help().split())
    assert "130 stopped by SIGINT (Ctrl-C), 143 by SIGTERM" in help_text
