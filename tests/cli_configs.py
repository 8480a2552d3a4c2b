"""Configs written for CLI tests, and `cli`: run a command, parse its --json output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.config import Config, load_config
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


def with_root(config: str, folder: Path) -> str:
    """The config with an offline root key (made in `folder`/offline)."""
    root = minisign.generate_key()
    offline = folder / "offline"
    minisign.write_key_pair(root, offline / "root.key", offline / "root.pub", None)
    path = Path(config)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace(
            "[signing]\n", f'[signing]\nroot_public_key_file = "{offline / "root.pub"}"\n'
        ),
        encoding="utf-8",
    )
    return str(offline / "root.key")


def keyed_config(fetched_store: Path, folder: Path) -> Config:
    """A config of its own in `folder`, with a copy of the fetched store and new keys."""
    path = folder / "mirror.toml"
    path.write_text(config_for("http://127.0.0.1:9/", folder), encoding="utf-8")
    config = load_config(path)
    config.state.path.parent.mkdir(parents=True)
    shutil.copy(fetched_store, config.state.path)
    key = minisign.generate_key()
    minisign.write_key_pair(
        key, config.signing.secret_key_file, config.signing.public_key_file, None
    )
    return config
