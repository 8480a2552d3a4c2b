"""`mirror demo`: the pipeline offline, against the built-in sample newsroom on loopback.

The demo folder is the demo's own: each run starts it afresh (the sample newsroom gets
a new port every time, so an old store would point nowhere).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mirror.config import load_config
from mirror.errors import UsageError
from mirror.fetch import FetchReport, fetch_articles
from mirror.newsroom import NewsroomOptions, config_for, serve_newsroom
from mirror.progress import Progress
from mirror.store import RunLock, Store

DEMO_MARKER = ".mirror-demo"


@dataclass(frozen=True)
class DemoReport:
    folder: Path
    config_path: Path
    store_path: Path
    newsroom_url: str
    fetch: FetchReport

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "config": str(self.config_path),
            "store": str(self.store_path),
            "newsroom": self.newsroom_url,
            "fetch": self.fetch.to_json(),
        }

    def summary(self) -> str:
        return f"demo against the sample newsroom at {self.newsroom_url}: {self.fetch.summary()}"


def prepare_folder(folder: Path) -> None:
    """Start the demo folder afresh, refusing to wipe a folder that is not a demo's."""
    if folder.exists() and any(folder.iterdir()) and not (folder / DEMO_MARKER).exists():
        raise UsageError(f"{folder} exists and is not a mirror demo folder; pick another --dir")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / DEMO_MARKER).write_text("made by `mirror demo`; deleted by the next one\n")


async def run_demo(folder: Path, *, articles: int, progress: Progress) -> DemoReport:
    """Serve the sample newsroom on loopback and fetch it into a fresh demo store."""
    prepare_folder(folder)
    options = NewsroomOptions(articles=articles)
    async with serve_newsroom(options) as running:
        config_path = folder / "mirror.toml"
        config_path.write_text(config_for(running.base_url, folder), encoding="utf-8")
        config = load_config(config_path)
        with RunLock(config.state.path), Store(config.state.path) as store:
            report = await fetch_articles(config, store, now=datetime.now(UTC), progress=progress)
    return DemoReport(folder, config_path, config.state.path, running.base_url, report)
