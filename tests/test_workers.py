from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirror.workers import ParserPool


def environment_seen_by_worker() -> tuple[dict[str, str], bytes]:
    return dict(os.environ), Path("/proc/self/environ").read_bytes()


async def test_workers_hold_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_SMTP_PASSWORD", "hunter2-smtp")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2-aws")
    with ParserPool(2) as pool:
        for _ in range(4):
            environ, raw = await pool.run(environment_seen_by_worker)
            assert "MIRROR_SMTP_PASSWORD" not in environ
            assert "AWS_SECRET_ACCESS_KEY" not in environ
            assert b"hunter2" not in raw
    assert os.environ["MIRROR_SMTP_PASSWORD"] == "hunter2-smtp"  # the parent keeps its own


async def test_closed_pool_refuses_work() -> None:
    pool = ParserPool(1)
    with pool:
        assert await pool.run(os.getpid) != os.getpid()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(os.getpid)
