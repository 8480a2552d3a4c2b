"""SIGKILL at any moment leaves a directory mirror that verifies.

Publishes run in a subprocess against a DirectoryBackend folder and are killed with
SIGKILL many times: at moments the publish reaches itself (right after `pending` is
written, just before its Nth file is renamed into place: a temp file written, not yet
renamed), and after a delay drawn from a seeded generator (wherever the publish then
is: on a fast machine it may have finished). The editions alternate between two contents
(with rising versions: a lower one is refused), so each publish adds, revises and
deletes files. Meanwhile a verifier in this process checks the folder again and again.
After every kill the folder must verify: nothing missing, tampered or badly signed
(files no manifest lists yet or any more are `extra` in a folder, never to a reader).
A last, unkilled publish completes the newest version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from mirror.config import MirrorConfig
from mirror.publish.publisher import gc_mirror
from mirror.storage.directory import LOCK_NAME, TEMP_PREFIX, DirectoryBackend
from mirror.trust import minisign
from mirror.verify.run import VerifyReport

from editions import make_edition, verify

KILLS = 40

# Imports once, then forks one child per publish (fast to start, killed alone): reads
# "<edition folder>\t<when to die>" per line, answers with the child's pid; the child
# SIGKILLs itself when told ("after:NAME": once NAME is renamed into place; "rename:N":
# just before its Nth rename), else writes its result into <edition>.result.json and
# exits.
WORKER = """
import asyncio, json, os, signal, sys
from pathlib import Path
from mirror.trust import minisign
from mirror.config import MirrorConfig
from mirror.publish.publisher import PublishOptions, publish_mirror
from mirror.storage.directory import DirectoryBackend

async def publish(folder: Path, edition: Path, key: minisign.PublicKey) -> None:
    mirror = MirrorConfig(name="killed", type="directory", public_url="", path=folder)
    backend = DirectoryBackend(mirror)
    result = await publish_mirror(
        backend, edition, key, PublishOptions(allow_shrink=True, concurrency=4)
    )
    await backend.close()
    temp = Path(f"{edition}.result.tmp")  # atomic: a kill mid-write leaves no result
    temp.write_text(json.dumps(result.to_json()))
    os.replace(temp, f"{edition}.result.json")

def die_when(spec: str) -> None:
    kind, _, value = spec.partition(":")
    real_replace, renames = os.replace, []

    def replace(source, target):
        renames.append(target)
        if kind == "rename" and len(renames) == int(value):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(source, target)
        if kind == "after" and Path(target).name == value:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace

folder, key = Path(sys.argv[1]), minisign.parse_public_key(sys.argv[2])
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
print("ready", flush=True)
for line in sys.stdin:
    edition, spec = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        die_when(spec)
        asyncio.run(publish(folder, Path(edition), key))
        os._exit(0)
    print(pid, flush=True)
"""


def content(variant: int) -> dict[str, bytes]:
    """Two sites that differ in every way: pages added, removed and revised."""
    first, last = (0, 30) if variant == 0 else (4, 36)
    files = {
        "index.html": f"<html>index {variant}</html>".encode() * 50,
        "feed.xml": f"<feed>{variant}</feed>".encode() * 50,
        "mirrors.json": b"[]",
        "archive/2026-10.html": f"<html>october {variant}</html>".encode(),
        "archive/2026-11.html": f"<html>november {variant}</html>".encode(),
    }
    for number in range(first, last):
        revised = variant if number % 5 == 0 else 0
        page = f"<html>article {number} revision {revised}</html>".encode() * 40
        files[f"articles/2026/{10 + number % 2}/a{number}.html"] = page
    return files


def listed_files(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not path.relative_to(folder).as_posix().startswith("manifests/")
    }


class Verifier:
    """Checks the mirror folder; says why a check failed."""

    def __init__(
        self, folder: Path, key: minisign.PublicKey, state: Path, editions: Mapping[int, Path]
    ) -> None:
        self.folder, self.key, self.state, self.editions = folder, key, state, editions
        self.known = set().union(*(listed_files(edition) for edition in editions.values()))
        self.runs = 0

    def pointers(self) -> tuple[bytes | None, ...]:
        found = (self.folder / name for name in ("current", "pending"))
        return tuple(path.read_bytes() if path.exists() else None for path in found)

    async def problem(self) -> str | None:
        """None when the folder verifies (extras only of the editions' own files)."""
        self.runs += 1
        try:
            report = await verify(self.folder, self.key, self.state)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return self.report_problem(report)

    def report_problem(self, report: VerifyReport) -> str | None:
        if report.missing or report.tampered or report.errors:
            return f"missing {report.missing}, tampered {report.tampered}, {report.errors}"
        foreign = [p for p in report.extra if p not in self.known and not _backend_file(p)]
        return f"unknown extra files {foreign}" if foreign else None

    async def watch(self, problems: list[str]) -> None:
        """Verify until cancelled; a failed run counts only if the pointers held still."""
        while True:
            before = self.pointers()
            problem = await self.problem()
            if problem and self.pointers() == before:
                problems.append(f"while publishing, pointers {before}: {problem}")
            await asyncio.sleep(0.005)  # leave the CPU to the publish


def _backend_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name == LOCK_NAME or name.startswith(TEMP_PREFIX)


class Forker:
    """The subprocess that forks the publishes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, folder: Path, key: minisign.PublicKey) -> Forker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, str(folder), key.line(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
        return cls(process)

    async def publish(
        self, edition: Path, kill_after_s: float | None = None, *, die: str = ""
    ) -> dict[str, object] | None:
        """One publish in a child process, SIGKILLed `kill_after_s` after it started, or
        by itself at the moment `die` names (see WORKER). Its result, unless it was
        killed first."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{edition}\t{die}\n".encode())
        await self.process.stdin.drain()
        pid = int(await self.process.stdout.readline())
        if kill_after_s is not None:
            await asyncio.sleep(kill_after_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return await asyncio.to_thread(_result_once_gone, pid, edition)

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await self.process.wait()


def _result_once_gone(pid: int, edition: Path) -> dict[str, object] | None:
    """Wait for the child `pid` to be gone; its result, if it wrote one."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.002)
    result = Path(f"{edition}.result.json")
    return json.loads(result.read_text()) if result.exists() else None


@pytest.mark.slow
async def test_sigkill_at_any_moment_leaves_a_mirror_that_verifies(tmp_path: Path) -> None:
    secret = minisign.generate_key()
    key = secret.public
    variants = [content(0), content(1)]
    editions: dict[int, Path] = {}

    def edition(version: int) -> Path:
        if version not in editions:
            files: Mapping[str, bytes] = variants[version % 2]
            make_edition(tmp_path / f"edition-{version}", secret, version, files)
            editions[version] = tmp_path / f"edition-{version}"
        return editions[version]

    for version in range(1, KILLS + 4):
        edition(version)
    folder = tmp_path / "mirror"
    verifier = Verifier(folder, key, tmp_path / "state", editions)

    forker = await Forker.start(folder, key)
    for version in (1, 2):
        done = await forker.publish(edition(version))
        assert done is not None and done["ok"], done
        assert await verifier.problem() is None
    assert done is not None
    duration = float(str(done["seconds"]))  # one incremental publish, in seconds

    rng = random.Random(20261124)
    problems: list[str] = []
    watcher = asyncio.create_task(verifier.watch(problems))
    outcomes: dict[str, int] = {"killed at a moment it reached": 0, "timed kills sent": 0}
    try:
        for version in range(3, KILLS + 3):
            if version % 2:  # at a moment of its own: the kill always lands there
                # every publish renames at least 9 files: its manifest and signature,
                # `pending`, index, feed, two archive months, `current`
                die = "after:pending" if version % 4 == 1 else f"rename:{rng.randint(1, 9)}"
                result = await forker.publish(edition(version), die=die)
                assert result is None, f"the publish of {version} outlived {die}"
                if die == "after:pending":
                    assert (folder / "pending").exists()
                outcomes["killed at a moment it reached"] += 1
            else:  # after a delay: mid-publish, or after it on a fast machine
                await forker.publish(edition(version), rng.uniform(0, duration))
                outcomes["timed kills sent"] += 1
            problem = await verifier.problem()
            assert problem is None, f"after killing the publish of {version}: {problem}"
        final = await forker.publish(edition(KILLS + 3))
    finally:
        watcher.cancel()
        await forker.stop()
    assert not problems, problems[:3]
    assert outcomes == {"killed at a moment it reached": KILLS // 2, "timed kills sent": KILLS // 2}

    newest = KILLS + 3
    assert final is not None and final["ok"], final
    report = await verify(folder, key, tmp_path / "state")
    assert report.version == newest and report.pending is None
    assert verifier.report_problem(report) is None
    backend = DirectoryBackend(MirrorConfig("killed", "directory", "", path=folder))
    try:
        await gc_mirror(backend, edition(newest), key)
    finally:
        await backend.close()
    report = await verify(folder, key, tmp_path / "state")
    assert [p for p in report.extra if not _backend_file(p)] == [], report
    assert verifier.runs > KILLS
