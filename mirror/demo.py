"""`mirror demo`: the pipeline offline, against the built-in sample newsroom on loopback:
fetch, keygen, build and sign, verify.

The demo folder is the demo's own: each run starts it afresh (the sample newsroom gets
a new port every time, so an old store would point nowhere).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mirror.build import BuildReport, build_edition
from mirror.config import load_config
from mirror.errors import UsageError
from mirror.fetch import FetchReport, fetch_articles
from mirror.keyring import build_inputs, make_keys
from mirror.newsroom import NewsroomOptions, config_for, serve_newsroom
from mirror.progress import Progress
from mirror.store import RunLock, Store
from mirror.verify import VerifyReport, verify_target

DEMO_MARKER = ".mirror-demo"


@dataclass(frozen=True)
class DemoReport:
    folder: Path
    config_path: Path
    store_path: Path
    newsroom_url: str
    fetch: FetchReport
    build: BuildReport
    verify: VerifyReport
    edition: Path
    public_key: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "config": str(self.config_path),
            "store": str(self.store_path),
            "newsroom": self.newsroom_url,
            "fetch": self.fetch.to_json(),
            "build": self.build.to_json(),
            "verify": self.verify.to_json(),
            "edition": str(self.edition),
        }

    def summary(self) -> str:
        return "\n".join(
            (
                f"demo against the sample newsroom at {self.newsroom_url}",
                self.fetch.summary(),
                self.build.summary(),
                f"verify: {self.verify.summary()}",
                f"open {(self.edition / 'index.html').as_uri()}",
                f"check it yourself: mirror verify {self.edition} --key {self.public_key}",
            )
        )

    @property
    def failed(self) -> bool:
        return bool(self.fetch.failed) or not self.verify.ok


def prepare_folder(folder: Path) -> None:
    """Start the demo folder afresh, refusing to wipe a folder that is not a demo's."""
    if folder.exists() and any(folder.iterdir()) and not (folder / DEMO_MARKER).exists():
        raise UsageError(f"{folder} exists and is not a mirror demo folder; pick another --dir")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / DEMO_MARKER).write_text("made by `mirror demo`; deleted by the next one\n")


async def run_demo(folder: Path, *, articles: int, progress: Progress) -> DemoReport:
    """Serve the sample newsroom on loopback, fetch it, make keys, build and verify."""
    prepare_folder(folder)
    options = NewsroomOptions(articles=articles)
    now = datetime.now(UTC)
    async with serve_newsroom(options) as running:
        config_path = folder / "mirror.toml"
        config_path.write_text(config_for(running.base_url, folder), encoding="utf-8")
        config = load_config(config_path)
        with RunLock(config.state.path), Store(config.state.path) as store:
            fetched = await fetch_articles(config, store, now=now, progress=progress)
            make_keys(config, root=False, out=None, passphrase_env=None)
            built = await build_edition(config, store, build_inputs(config, now=now), now=now)
    public = config.signing.public_key_file
    checked = await verify_target(
        str(config.edition.output_dir), str(public), now=now, state_dir=folder / "cache"
    )
    return DemoReport(
        folder,
        config_path,
        config.state.path,
        running.base_url,
        fetched,
        built,
        checked,
        config.edition.output_dir,
        public,
    )
