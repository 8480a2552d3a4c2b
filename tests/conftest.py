"""Fixtures shared by several test modules: moto's S3 server and fake AWS credentials,
a store fetched from the sample newsroom, the sample newsroom and a web root served from
threads (for CLI tests: the CLI runs its own loop), the stock minisign binary, Dovecot
(IMAP) per test."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.config import load_config
from mirror.fetch.stage import fetch_articles
from mirror.newsroom import NewsroomOptions, RunningNewsroom, config_for, serve_newsroom
from mirror.newsroom.state import DEFAULT_REFERENCE
from mirror.store import Store
from mirror.trust import minisign

from dovecot import Dovecot, dovecot_server
from moto_server import REGION, start_moto, stop_moto

NOW = DEFAULT_REFERENCE + timedelta(hours=6)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of a moto S3 server running for this test session (worker)."""
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    proc, url = start_moto(log_path)
    try:
        yield url
    finally:
        stop_moto(proc)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake AWS credentials and region in the environment; nothing else of the host's."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                 "AWS_SECURITY_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_ROLE_ARN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module")
def fetched_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the sample newsroom's articles, fetched once for this module."""
    folder = tmp_path_factory.mktemp("fetched")

    async def fill() -> Path:
        options = NewsroomOptions(articles=8, feed_items=0, image_size=(900, 600))
        async with serve_newsroom(options) as running:
            path = folder / "mirror.toml"
            path.write_text(config_for(running.base_url, folder), encoding="utf-8")
            config = load_config(path)
            with Store(config.state.path) as store:
                report = await fetch_articles(config, store, now=NOW)
                assert report.failed == [] and report.new == 8
            return config.state.path

    return asyncio.run(fill())


class Forbidding(http.server.SimpleHTTPRequestHandler):
    """A static server that answers 403 under /private/, like a bucket that isn't public."""

    def do_GET(self) -> None:
        if self.path.startswith("/private/"):
            self.send_error(403)
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (a thread: the CLI runs its own loop)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(Forbidding, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def newsroom() -> Iterator[RunningNewsroom]:
    """The sample newsroom (5 articles, all in the feed) served on 127.0.0.1 from a
    thread of its own (the CLI runs its own loop), stopped at the end."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    holder: list[RunningNewsroom] = []

    async def serve() -> None:
        async with serve_newsroom(NewsroomOptions(articles=5, feed_items=0)) as running:
            holder.append(running)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30)
    yield holder[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


SECRET = "a-long-enough-unsubscribe-secret"


@pytest.fixture
def built(tmp_path: Path, fetched_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose edition is built (8 articles, English and Russian)."""
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", SECRET)
    path = tmp_path / "mirror.toml"
    text = config_for("http://127.0.0.1:9/", tmp_path) + (
        '\n[[mirrors]]\nname = "a"\ntype = "directory"\npath = "a"\n'
        'public_url = "https://a.example.net/m/"\n'
        '\n[[mirrors]]\nname = "hidden"\ntype = "directory"\npath = "h"\n'
        'public_url = "https://hidden.example.com/"\nlisted = false\n'
    )
    path.write_text(text, encoding="utf-8")
    (tmp_path / "state").mkdir()
    shutil.copy(fetched_store, tmp_path / "state" / "mirror.db")
    key = minisign.generate_key()
    minisign.write_key_pair(
        key, tmp_path / "keys" / "mirror.key", tmp_path / "keys" / "mirror.pub", None
    )
    assert run(["-c", str(path), "build"]) == 0
    return path


# --- Dovecot (tests/dovecot.py): a real IMAP server per test --------------------------


@pytest.fixture
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A Dovecot on 127.0.0.1 (plain IMAP, no TLS) for this test alone."""
    with dovecot_server(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


@pytest.fixture
def dovecot_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A Dovecot offering STARTTLS and imaps (a self-signed certificate), for this test."""
    with dovecot_server(tmp_path_factory.mktemp("dovecot"), tls=True) as server:
        yield server
