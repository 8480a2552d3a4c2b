"""Configs written for CLI tests, and `cli`: run a command, parse its --json output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.newsroom import RunningNewsroom, config_for
from mirror.trust import minisign


def mirror_table(name: str, **values: str) -> str:
    body = "".join(f'{key} = "{value}"\n' for key, value in values.items())
    return f'\n[[mirrors]]\nname = "{name}"\n{body}'


def write_config(folder: Path, base: str, tables: str) -> Path:
    path = folder / "mirror.toml"
    path.write_text(config_for(base, folder) + tables, encoding="utf-8")
    key = minisign.generate_key()
    minisign.write_key_pair(
        key, folder / "keys" / "mirror.key", folder / "keys" / "mirror.pub", None
    )
    return path


def with_store(path: Path, store: Path) -> Path:
    (path.parent / "state").mkdir(exist_ok=True)
    shutil.copy(store, path.parent / "state" / "mirror.db")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    status = run(list(args))
    out = capsys.readouterr()
    return status, (json.loads(out.out) if out.out.strip() else {}), out.err


def sync_config(
    folder: Path, newsroom: RunningNewsroom, web_root: tuple[Path, str], digest: str = ""
) -> str:
    """A config fetching from `newsroom`, publishing to one folder mirror ("site") under
    `web_root`, mailing into the outbox; `digest`: more lines for [digest]."""
    root, base = web_root
    tables = mirror_table("site", type="directory", path=str(root / "s"), public_url=base + "s/")
    path = write_config(folder, newsroom.base_url, tables)
    path.write_text(
        path.read_text().replace(
            "[digest]\n", '[digest]\nunsubscribe_url = "https://n.example.org/u"\n' + digest
        )
    )
    return str(path)
