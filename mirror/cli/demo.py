"""`mirror demo`: the whole pipeline offline, against the built-in sample newsroom on
loopback: fetch, keygen, build and sign, publish to two directory mirrors served on
loopback, verify them as a reader would, mail the digest to two sample subscribers
(into the outbox folder: no SMTP), answer a reader's mailed request for mirrors (as
`mirror mail-in --stdin` would; the reply goes to the outbox too), and serve the
mirrors until Ctrl-C.

The demo folder is the demo's own: each run starts it afresh (the sample newsroom gets
a new port every time, so an old store would point nowhere). The stages and aiohttp are
imported when the demo runs, not with the parser: every command builds the parser.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Any

from mirror import cli
from mirror.cli import EXIT_OK, EXIT_PARTIAL, emit_json, progress_bar, run_async, subcommand
from mirror.config import Config, load_config
from mirror.errors import UsageError
from mirror.store import RunLock, Store

if TYPE_CHECKING:
    from aiohttp import web

    from mirror.build.builder import BuildReport
    from mirror.digest.run import DigestReport
    from mirror.fetch.stage import FetchReport
    from mirror.mail.delivery import Transport
    from mirror.mail.wire import Outgoing
    from mirror.mailin.model import MailInReport
    from mirror.mailin.run import MailInSecrets
    from mirror.progress import Progress
    from mirror.publish.publisher import MirrorResult
    from mirror.verify.run import VerifyReport

log = logging.getLogger("mirror")

DEMO_MARKER = ".mirror-demo"


MIRROR_NAMES = ("mirror-a", "mirror-b")
SUBSCRIBERS = (("reader-en@example.org", "en"), ("reader-ru@example.org", "ru"))
DIGEST_KEYS = """[digest]
from = "The Zarechensk Courier <digest@courier.example.org>"
unsubscribe_url = "https://courier.example.org/unsubscribe"
"""
MAILIN_ADDRESS = "news@courier.example.org"
MAILIN_AUTHSERV = "mx.courier.example.org"  # the demo's own receiving server
MAILIN_KEYS = f"""
[mailin]
address = "{MAILIN_ADDRESS}"
trusted_authserv_ids = ["{MAILIN_AUTHSERV}"]
"""
READER = "chitatel@example.net"
SERVE_PORT = 8001  # in the `python3 -m http.server` line `--no-serve` prints


@dataclass
class DemoReport:
    folder: Path
    config_path: Path
    newsroom_url: str
    fetch: FetchReport
    build: BuildReport
    mirrors: list[MirrorResult]
    verified: dict[str, VerifyReport]
    urls: dict[str, str]
    public_key: Path
    digest: DigestReport
    outbox: Path
    mailin: MailInReport
    request: Path  # the reader's request, as the demo wrote it
    reply: Path | None  # our reply in the outbox
    serving: bool = False  # the newsroom and mirrors stay served (no `--no-serve`)

    def to_json(self) -> dict[str, Any]:
        """The `--json` document; `newsroom` and `urls` only while their servers are up
        (`--no-serve` stopped them: `"serving": false`, the mirrors' `folders` remain)."""
        served = {"newsroom": self.newsroom_url, "urls": self.urls} if self.serving else {}
        return {
            "folder": str(self.folder),
            "config": str(self.config_path),
            "serving": self.serving,
            **served,
            "fetch": self.fetch.to_json(),
            "build": self.build.to_json(),
            "publish": {"mirrors": [result.to_json() for result in self.mirrors]},
            "verify": {name: report.to_json() for name, report in self.verified.items()},
            "folders": {name: str(path) for name, path in self.folders().items()},
            "digest": {**self.digest.to_json(), "outbox": str(self.outbox)},
            "mailin": {
                **self.mailin.to_json(),
                "request": str(self.request),
                "reply": str(self.reply) if self.reply else None,
            },
        }

    def lines(self) -> list[str]:
        """What the demo did and where to look: the newsroom's and mirrors' URLs while
        they are served; else (`--no-serve`, servers stopped) no URL of theirs: the
        mirrors' folders and the commands to serve and verify them."""
        lines = [f"sample newsroom: {self.newsroom_url}"] if self.serving else []
        lines += [self.fetch.summary(), self.build.summary()]
        lines += [result.summary() for result in self.mirrors]
        for name, report in self.verified.items():
            lines.append(f"verify {name}: {report.summary()}")
        lines.append(f"{self.digest.summary()}: one .eml file each in {self.outbox}")
        lines.append(f"a reader's mail asking for mirrors (зеркала): {self.request}")
        lines.append(f"{self.mailin.summary()}; the reply: {self.reply}")
        lines += self.serving_lines() if self.serving else self.folder_lines()
        lines.append(f"the demo's config: {self.config_path}")
        return lines

    def serving_lines(self) -> list[str]:
        lines = [f"open {url}index.html  ({name})" for name, url in self.urls.items()]
        first = next(iter(self.urls.values()), "")
        lines.append(f"check a mirror yourself: mirror verify {first} --key {self.public_key}")
        return lines

    def folder_lines(self) -> list[str]:
        """The mirrors as folders (their demo servers are stopped): how to serve them
        and check them."""
        folders = self.folders()
        lines = [f"mirror {name}: {path}" for name, path in folders.items()]
        served = quote(str(self.folder / "mirrors"))
        lines.append(f"serve them: python3 -m http.server -b 127.0.0.1 -d {served} {SERVE_PORT}")
        lines += [
            f"  then open http://127.0.0.1:{SERVE_PORT}/{name}/index.html" for name in folders
        ]
        first = quote(str(next(iter(folders.values()), self.folder)))
        lines.append(
            f"check a mirror yourself: mirror verify {first} --key {quote(str(self.public_key))}"
        )
        return lines

    def folders(self) -> dict[str, Path]:
        """Each demo mirror's folder."""
        return {name: self.folder / "mirrors" / name for name in self.urls}

    @property
    def failed(self) -> bool:
        mirrors_failed = any(not result.ok for result in self.mirrors)
        verify_failed = any(not report.ok for report in self.verified.values())
        digest_failed = self.digest.partial
        mailin_failed = self.reply is None
        return (
            bool(self.fetch.failed) or mirrors_failed or verify_failed or digest_failed
            or mailin_failed
        )  # fmt: skip


def prepare_folder(folder: Path) -> None:
    """Start the demo folder afresh, refusing to wipe a folder that is not a demo's."""
    if folder.exists() and any(folder.iterdir()) and not (folder / DEMO_MARKER).exists():
        raise UsageError(f"{folder} exists and is not a mirror demo folder; pick another --dir")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / DEMO_MARKER).write_text("made by `mirror demo`; deleted by the next one\n")
    for name in MIRROR_NAMES:
        (folder / "mirrors" / name).mkdir(parents=True)


def mirrors_app(folder: Path) -> web.Application:
    """A static server for the demo's two directory mirrors, as nginx would serve them."""
    from aiohttp import web

    app = web.Application()
    for name in MIRROR_NAMES:
        app.router.add_static(f"/{name}/", folder / "mirrors" / name)
    return app


def demo_config(newsroom_url: str, mirrors_url: str, folder: Path) -> str:
    """The sample newsroom's config plus two directory mirrors served on loopback."""
    from mirror.newsroom import config_for

    tables = "".join(
        f'\n[[mirrors]]\nname = "{name}"\ntype = "directory"\n'
        f'path = "mirrors/{name}"\npublic_url = "{mirrors_url}{name}/"\n'
        for name in MIRROR_NAMES
    )
    sample = config_for(newsroom_url, folder).replace("[digest]\n", DIGEST_KEYS, 1)
    return sample + tables + MAILIN_KEYS


def reader_request() -> bytes:
    """A reader's mail asking for mirrors in Russian, as the demo's own receiving server
    hands it on: with its Authentication-Results (DKIM and DMARC passed)."""
    message = EmailMessage()
    domain = READER.rpartition("@")[2]
    message["Authentication-Results"] = (
        f"{MAILIN_AUTHSERV}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
    )
    message["From"] = f"Читатель <{READER}>"
    message["To"] = MAILIN_ADDRESS
    message["Subject"] = "зеркала"
    message["Message-ID"] = f"<demo-request@{domain}>"
    message.set_content("Пришлите, пожалуйста, адреса зеркал.\n")
    return message.as_bytes()


class RecordingTransport:
    """A transport that notes the message ids it was given (to show where a reply went)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.sent: list[str] = []

    async def send(self, outgoing: Outgoing) -> None:
        await self.inner.send(outgoing)
        self.sent.append(outgoing.message_id)

    async def close(self) -> None:
        await self.inner.close()


async def answer_request(
    config: Config, store: Store, folder: Path, secrets: MailInSecrets, now: datetime
) -> tuple[MailInReport, Path, Path | None]:
    """A reader's request through mail-in as the pipe would hand it over; the reply
    goes to the outbox."""
    from mirror.mail.outbox import OutboxTransport, outbox_name
    from mirror.mailin.run import handle_piped

    request = folder / "request.eml"
    request.write_bytes(reader_request())
    transport = RecordingTransport(OutboxTransport(config.digest.outbox_dir))
    try:
        _, report = await handle_piped(
            config, store, request.read_bytes(), now=lambda: now, transport=transport,
            secrets=secrets,
        )  # fmt: skip
    finally:
        await transport.close()
    reply = config.digest.outbox_dir / outbox_name(transport.sent[0]) if transport.sent else None
    return report, request, reply


async def run_demo(
    folder: Path,
    *,
    articles: int,
    progress: Progress,
    serve: bool = False,
    on_ready: Callable[[DemoReport], None] | None = None,
) -> DemoReport:
    """Fetch the sample newsroom, make keys, build, publish to two directory mirrors
    served on loopback, verify them over HTTP; with `serve`, keep serving until cancelled."""
    from mirror.build.builder import build_edition
    from mirror.digest.run import send_digest
    from mirror.fetch.stage import fetch_articles
    from mirror.mailin.run import MailInSecrets
    from mirror.newsroom import NewsroomOptions, serve_newsroom
    from mirror.pipeline import publish_edition
    from mirror.trust.keyfiles import build_inputs, load_signing_public_key, make_keys
    from mirror.verify.run import verify_target

    prepare_folder(folder)
    now = datetime.now(UTC)
    async with (
        serve_newsroom(NewsroomOptions(articles=articles)) as newsroom,
        serve_app(mirrors_app(folder)) as mirrors_url,
    ):
        config_path = folder / "mirror.toml"
        config_path.write_text(demo_config(newsroom.base_url, mirrors_url, folder), "utf-8")
        config = load_config(config_path)
        with RunLock(config.state.path), Store(config.state.path) as store:
            fetched = await fetch_articles(config, store, now=now, progress=progress)
            make_keys(config, root=False, out=None, passphrase_env=None)
            built = await build_edition(config, store, build_inputs(config, now=now), now=now)
        published = await publish_edition(config, list(config.mirrors))
        public = config.signing.public_key_file
        key = load_signing_public_key(config)
        urls = {mirror.name: mirror.public_url for mirror in config.mirrors}
        verified = {
            name: await verify_target(url, key, now=now, state_dir=folder / "cache")
            for name, url in urls.items()
        }
        with RunLock(config.state.path), Store(config.state.path) as store:
            for email, lang in SUBSCRIBERS:  # as `subscribers add` would: welcomed
                store.add_subscriber(email, lang, now, welcome=True)
            # the demo's own secrets, made afresh each run and never shown
            keys = MailInSecrets(sender=secrets.token_bytes(32), digest=secrets.token_bytes(32))
            digest = await send_digest(config, store, now=now, secret=keys.digest)
            mailed = await answer_request(config, store, folder, keys, now)
        report = DemoReport(
            folder, config_path, newsroom.base_url, fetched, built, published, verified, urls,
            public, digest, config.digest.outbox_dir, *mailed, serving=serve,
        )  # fmt: skip
        if on_ready:
            on_ready(report)
        if serve:
            await asyncio.Event().wait()  # until Ctrl-C cancels the run
    return report


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its base URL."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


def add_demo(commands: Any) -> None:
    parser = subcommand(
        commands,
        "demo",
        cmd_demo,
        "the whole pipeline offline against a built-in sample newsroom, served on loopback "
        "(the digest goes to an outbox folder); serves the mirrors until Ctrl-C, which "
        "exits 130 like any interrupt (SIGTERM 143), during the run or while serving",
    )
    parser.add_argument(
        "--dir", default="mirror-demo", help="folder for the demo's config, store and mirrors"
    )
    parser.add_argument("--articles", type=int, default=24, help="articles in the sample newsroom")
    parser.add_argument(
        "--no-serve",
        action="store_true",
        help="exit after the digest instead of serving: print the mirrors' folders and the "
        "commands to serve and verify them",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")


def cmd_demo(args: argparse.Namespace) -> int:
    reports: list[DemoReport] = []

    def ready(report: DemoReport) -> None:
        reports.append(report)
        if args.json:
            emit_json(report.to_json())
        for line in report.lines():
            log.info("%s", line)
        if not args.no_serve:
            log.info("serving the mirrors until Ctrl-C")

    folder = Path(args.dir).resolve()
    report: DemoReport | None
    try:
        with progress_bar("demo", args) as bar:
            report = run_async(
                run_demo(
                    folder, articles=args.articles, progress=bar, serve=not args.no_serve,
                    on_ready=ready,
                )
            )  # fmt: skip
    except KeyboardInterrupt:  # Ctrl-C while serving is the demo's end, yet it is a stop
        status = cli.INTERRUPTS.exit_status()
        log.info("demo stopped (%s)", "SIGTERM" if status == 143 else "SIGINT")
        return status
    return EXIT_PARTIAL if report is None or report.failed else EXIT_OK
