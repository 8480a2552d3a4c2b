from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import mirror
from mirror import sandbox
from mirror.errors import SandboxError
from mirror.workers import ParserPool

# What a worker runs here is what a parser exploit could call: stdlib functions, pickled
# by name (a function of this test module is out of the worker's reach: it is confined).


async def test_workers_hold_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_SMTP_PASSWORD", "hunter2-smtp")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2-aws")
    with ParserPool(2) as pool:
        for _ in range(4):
            assert await pool.run(os.getenv, "MIRROR_SMTP_PASSWORD") is None
            assert await pool.run(os.getenv, "AWS_SECRET_ACCESS_KEY") is None
            assert await pool.run(os.getenv, "PATH") == os.environ["PATH"]
    assert os.environ["MIRROR_SMTP_PASSWORD"] == "hunter2-smtp"  # the parent keeps its own


def test_this_kernel_confines_workers() -> None:
    """Linux CI runs a kernel with Landlock: the tests below must not pass vacuously."""
    assert sys.platform.startswith("linux")
    assert sandbox.landlock_abi() >= 1


async def test_a_worker_cannot_read_the_parents_environ_nor_the_signing_key(
    tmp_path: Path,
) -> None:
    key = tmp_path / "keys" / "mirror.key"
    key.parent.mkdir()
    key.write_text("untrusted comment: minisign secret key\nRWQAAEIy...\n")
    key.chmod(0o600)
    parent_environ = Path(f"/proc/{os.getpid()}/environ")
    assert os.access(parent_environ, os.R_OK)  # to this process: what the worker is after
    with ParserPool(1) as pool:
        with pytest.raises(PermissionError):
            await pool.run(Path.read_bytes, parent_environ)
        with pytest.raises(PermissionError):
            await pool.run(Path.read_bytes, key)
        with pytest.raises(PermissionError):
            await pool.run(Path.read_bytes, Path("/etc/passwd"))
        with pytest.raises(PermissionError):
            await pool.run(Path.write_bytes, tmp_path / "dropped", b"x")
        own_code = await pool.run(Path.read_text, Path(mirror.__file__))
        assert "__version__" in own_code  # what parsing needs is still there
    assert not (tmp_path / "dropped").exists()


async def test_a_worker_cannot_open_a_tcp_connection() -> None:
    import socket

    with ParserPool(1) as pool, pytest.raises(PermissionError):
        await pool.run(socket.create_connection, ("127.0.0.1", 9), 5)


def test_a_worker_that_failed_to_confine_itself_refuses_to_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mirror import workers

    monkeypatch.setattr(workers._Confinement, "error", "landlock_add_rule(/x) failed")
    with pytest.raises(SandboxError, match="not confined"):
        workers._confined(os.getpid)
    with pytest.raises(SandboxError, match="not confined"):
        workers._warm_up()


async def test_closed_pool_refuses_work() -> None:
    pool = ParserPool(1)
    with pool:
        assert await pool.run(os.getpid) != os.getpid()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(os.getpid)
