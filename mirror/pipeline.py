"""The stages chained for ops: publish the edition to the configured mirrors, `sync`
(fetch, build, publish, and the digest when `min_interval_h` has passed, then when
keys.json expires in the edition and on each mirror, then `mail-in once` when [mailin]
names an IMAP mailbox), status of every mirror, and retiring a mirror.

Each mirror gets its own backend; one that cannot even be opened (bad credentials, no
such bucket) is reported like one that fails half-way, and never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from logging import ERROR, INFO, WARNING
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirror import fleet
from mirror.config import Config, MirrorConfig
from mirror.errors import (
    ConfigError,
    DigestError,
    KeyCertificateError,
    MirrorError,
    MirrorUnreachableError,
    PublishError,
)
from mirror.metrics import StageOutcome
from mirror.progress import NoProgress, Progress
from mirror.publish import publisher
from mirror.publish.publisher import Deadline, MirrorResult, PublishOptions
from mirror.reach.cache import cache_path, load_cache
from mirror.storage import Backend, open_backend
from mirror.store import Store
from mirror.trust import certificate, minisign
from mirror.trust.keyfiles import load_root_public_key, load_signing_public_key, load_trust_anchor
from mirror.trust.minisign import PublicKey

if TYPE_CHECKING:  # the heavy stages load only when a sync runs: publish starts fast
    from mirror.build.builder import BuildReport
    from mirror.digest.run import DigestReport
    from mirror.fetch.stage import FetchReport
    from mirror.fleet.spawn import SpawnResult
    from mirror.mailin.model import MailInReport
    from mirror.publish.status import MirrorStatus
    from mirror.reach.run import MarkBlocked, ReachReport


@dataclass
class OpenedMirrors:
    """The backends that opened, a failed result for each that did not, and each
    mirror's deadline (by name; reading its live version uses some of it)."""

    backends: list[Backend] = field(default_factory=list)
    failed: list[MirrorResult] = field(default_factory=list)
    deadlines: dict[str, Deadline] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def opened(mirrors: list[MirrorConfig]) -> AsyncIterator[OpenedMirrors]:
    """Open every mirror's backend; close them all at the end."""
    result = OpenedMirrors(
        deadlines={mirror.name: Deadline(mirror.deadline_s) for mirror in mirrors}
    )
    every: list[Backend] = []  # to close, whatever `result` holds by then

    async def one(mirror: MirrorConfig) -> None:
        try:  # in a thread: making a boto3 client reads credential files and config
            every.append(await asyncio.to_thread(open_backend, mirror))
            result.backends.append(every[-1])
        except (ConfigError, PublishError) as exc:
            result.failed.append(MirrorResult(mirror.name, False, error=str(exc)))

    order = {mirror.name: index for index, mirror in enumerate(mirrors)}
    try:
        await asyncio.gather(*(one(mirror) for mirror in mirrors))
        result.backends.sort(key=lambda backend: order[backend.name])
        result.failed.sort(key=lambda failed: order[failed.name])
        yield result
    finally:
        for backend in every:
            await backend.close()


async def publish_edition(
    config: Config,
    mirrors: list[MirrorConfig],
    options: PublishOptions | None = None,
) -> list[MirrorResult]:
    """Publish the built edition to these mirrors, all at once."""
    key = load_signing_public_key(config)
    async with opened(mirrors) as mirrors_open:
        return await publish_opened(config, mirrors_open, key, options or PublishOptions())


async def publish_opened(
    config: Config,
    mirrors_open: OpenedMirrors,
    key: PublicKey,
    options: PublishOptions,
    on_result: Callable[[MirrorResult], None] = lambda _: None,
) -> list[MirrorResult]:
    """Publish to the opened mirrors, each within its deadline; `on_result` hears of each
    mirror as it ends (with `options.gc`: once its garbage is collected)."""
    for failed in mirrors_open.failed:
        on_result(failed)
    edition = config.edition.output_dir
    deadlines = mirrors_open.deadlines
    results = await publisher.publish_all(
        mirrors_open.backends, edition, key, options,
        deadlines=deadlines, on_result=None if options.gc else on_result,
    )  # fmt: skip
    if options.gc:
        results = [
            await collect_garbage(
                backend, result, edition, key, deadlines[backend.name].spending(result.seconds)
            )
            for backend, result in zip(mirrors_open.backends, results, strict=True)
        ]
        for result in results:
            on_result(result)
    return mirrors_open.failed + results


async def collect_garbage(
    backend: Backend, result: MirrorResult, edition: Path, key: PublicKey, deadline: Deadline
) -> MirrorResult:
    """After a good publish, remove what no live manifest references (one listing),
    within what is left of the mirror's deadline."""
    if not result.ok:
        return result
    try:
        gc = publisher.gc_mirror(backend, edition, key)
        removed = await publisher.within_deadline(gc, backend.name, deadline)
    except PublishError as exc:
        return replace(result, ok=False, error=f"gc: {exc}")
    return replace(result, deleted=result.deleted + removed)


@dataclass(frozen=True)
class KeysExpiry:
    """When keys.json expires in the edition and on each mirror (None: none readable)."""

    now: datetime
    edition: datetime | None
    mirrors: tuple[tuple[str, datetime | None], ...]

    def due(self) -> list[str]:
        """A line for each keys.json that expires within certificate.ALERT_DAYS days (or has)."""
        places = [("the edition", self.edition)] + [
            (f"mirror {name}", expires) for name, expires in self.mirrors
        ]
        return [
            f"keys.json of {place} expires at {certificate.format_time(expires)}: renew it now "
            "(`mirror keys certify` on the offline machine, then copy keys.json and "
            "keys.json.minisig here)"
            for place, expires in places
            if expires is not None and certificate.expires_soon(expires, self.now)
        ]

    def to_json(self) -> dict[str, Any]:
        def spelled(value: datetime | None) -> str | None:
            return certificate.format_time(value) if value else None

        return {
            "edition_expires": spelled(self.edition),
            "mirrors": [
                {"name": name, "keys_expires": spelled(expires)} for name, expires in self.mirrors
            ],
            "due": bool(self.due()),
        }


async def keys_expiry(
    config: Config,
    backends: list[Backend],
    edition: tuple[bytes, bytes] | None,
    now: datetime,
) -> KeysExpiry | None:
    """keys.json's expiry: in the edition (keys.json and its signature given) and on each
    mirror, read from its store, all at once; None when no root key is configured."""
    root = load_root_public_key(config)
    if root is None:
        return None

    async def on_mirror(backend: Backend) -> tuple[str, datetime | None]:
        try:
            data = await backend.get(
                certificate.KEYS_FILE, max_bytes=certificate.MAX_CERTIFICATE_BYTES
            )
            signature = await backend.get(
                certificate.KEYS_SIGNATURE_FILE, max_bytes=minisign.MAX_SIGNATURE_FILE_BYTES
            )
        except PublishError:
            return backend.name, None  # the publish result already names the failure
        if data is None or signature is None:
            return backend.name, None
        return backend.name, _expires(root, (data.data, signature.data))

    mirrors = await asyncio.gather(*(on_mirror(backend) for backend in backends))
    return KeysExpiry(now, _expires(root, edition), tuple(mirrors))


def _expires(root: PublicKey, files: tuple[bytes, bytes] | None) -> datetime | None:
    """The expiry of a keys.json the root signed; None for none, or another's."""
    if files is None:
        return None
    try:
        return certificate.read_signed_certificate(root, *files).expires
    except KeyCertificateError:
        return None


async def live_versions(mirrors_open: OpenedMirrors, key: PublicKey) -> list[int]:
    """Each opened mirror's live version (0: none, or unreadable), read at once; the time
    each read takes comes off that mirror's deadline. A mirror that does not answer
    (timed out, past its deadline, refused) moves to `failed`: the publish would only
    wait for it again."""
    silent: dict[str, MirrorResult] = {}

    async def one(backend: Backend) -> int:
        deadline = mirrors_open.deadlines[backend.name]
        started = time.monotonic()
        try:
            read = publisher.read_live_version(backend, key)
            return await publisher.within_deadline(read, backend.name, deadline)
        except MirrorUnreachableError as exc:
            silent[backend.name] = MirrorResult(backend.name, False, error=exc.reason)
            return 0
        except PublishError:  # refused access and the like: the publish reports it
            return 0
        finally:
            spent_s = time.monotonic() - started
            mirrors_open.deadlines[backend.name] = deadline.spending(spent_s)

    versions = await asyncio.gather(*(one(backend) for backend in mirrors_open.backends))
    mirrors_open.failed += silent.values()
    mirrors_open.backends = [b for b in mirrors_open.backends if b.name not in silent]
    return list(versions)


@dataclass
class SyncReport:
    fetch: FetchReport
    build: BuildReport | None = None
    mirrors: list[MirrorResult] = field(default_factory=list)
    digest: DigestReport | None = None
    keys: KeysExpiry | None = None
    mailin: MailInReport | None = None
    reach: ReachReport | None = None  # None: no [reach] section
    error: str = ""
    mailin_error: str = ""  # mail-in could not run at all (the mailbox, a secret)
    spawned: list[SpawnResult] = field(default_factory=list)  # pools' spares topped up
    stages: list[StageOutcome] = field(default_factory=list)  # as they ended (for --metrics)

    def stage_ended(self, stage: str, started_monotonic: float, ok: bool) -> None:
        """Record a stage's wall time (from `time.monotonic()` at its start) and result."""
        self.stages.append(StageOutcome(stage, time.monotonic() - started_monotonic, ok))

    @property
    def ok(self) -> bool:
        mirrors_ok = all(result.ok for result in self.mirrors)
        digest_ok = (self.digest is None or not self.digest.partial) and not self.error
        keys_ok = self.keys is None or not self.keys.due()
        mailin_ok = (self.mailin is None or not self.mailin.failed) and not self.mailin_error
        built = self.build is not None and self.build.complete
        spawn_ok = all(result.ok for result in self.spawned)
        return (
            not self.fetch.failed and built and mirrors_ok and digest_ok and keys_ok and mailin_ok
        ) and spawn_ok

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "fetch": self.fetch.to_json(),
            "build": self.build.to_json() if self.build else None,
            "publish": {"mirrors": [result.to_json() for result in self.mirrors]},
            "spawn": {"pools": [result.to_json() for result in self.spawned]},
            "digest": self.digest.to_json() if self.digest else None,
            "keys": self.keys.to_json() if self.keys else None,
            "mailin": self.mailin.to_json() if self.mailin else None,
            "reach": self.reach.to_json() if self.reach else None,
            "error": self.error,
            "mailin_error": self.mailin_error,
        }

    def lines(self) -> list[str]:
        lines = [self.fetch.summary()]
        lines += [self.build.summary()] if self.build else []
        lines += [result.summary() for result in self.mirrors]
        lines += [result.summary() for result in self.spawned]
        lines += [self.digest.summary()] if self.digest else []
        lines += [self.mailin.summary()] if self.mailin else []
        return lines + [error for error in (self.error, self.mailin_error) if error]


async def run_sync(
    config: Config,
    *,
    now: datetime,
    mirrors: list[MirrorConfig],
    options: PublishOptions | None = None,
    progress: Progress | None = None,
    mark_blocked: MarkBlocked | None = None,
) -> SyncReport:
    """Fetch, build above every live version, publish: one run for cron/systemd. Each
    stage's summary line goes to `progress` as the stage ends (reach, fetch, build, each
    mirror, the digest), so an interrupted run still says what it did. With [reach],
    OONI's verdicts come first; with `reach.auto_block`, `mark_blocked(name, reason)` is
    called for each mirror they show blocked (else they are only reported)."""
    from mirror.build.builder import build_edition
    from mirror.digest.run import due
    from mirror.fetch.stage import fetch_articles
    from mirror.fleet.spawn import top_up
    from mirror.trust.keyfiles import build_inputs

    stages = progress or NoProgress()
    key = load_signing_public_key(config)
    with Store(config.state.path) as store:
        # the keys and their certificate first: a config error stops the run before a fetch
        inputs = build_inputs(config, now=now, handed_out=fleet.handed_out(config, store))

        def mark(name: str, reason: str) -> None:  # the fleet's block, unless given another
            if mark_blocked is not None:
                return mark_blocked(name, reason)
            fleet.block(config, store, name, reason=reason, at=now)

        started = time.monotonic()
        reach = await sync_reach(config, fleet.live_public(config, store), now, mark, stages)
        reach_ended = time.monotonic()
        if reach is not None and reach.blocked:  # the mirror list follows what was marked
            inputs = build_inputs(config, now=now, handed_out=fleet.handed_out(config, store))
        report = SyncReport(await fetch_articles(config, store, now=now, progress=stages))
        report.reach = reach
        if reach is not None:
            report.stages.append(StageOutcome("reach", reach_ended - started, not reach.errors))
        report.stage_ended("fetch", reach_ended, not report.fetch.failed)
        stages.stage_done(report.fetch.summary(), level=WARNING if report.fetch.failed else INFO)
        for line in report.fetch.failure_lines():  # beside the fetch line, as `fetch` lists them
            stages.stage_done(line, level=WARNING)
        async with opened(mirrors) as mirrors_open:
            started = time.monotonic()
            # at once, each within its deadline: a dead mirror must not hold up the others
            live = await live_versions(mirrors_open, key)
            inputs = replace(inputs, live_version=max(live, default=0))
            report.build = await build_edition(config, store, inputs, now=now, progress=stages)
            report.stage_ended("build", started, report.build.complete)
            stages.stage_done(
                report.build.summary(), level=INFO if report.build.complete else WARNING
            )
            started = time.monotonic()
            report.mirrors = await publish_opened(
                config, mirrors_open, key, options or PublishOptions(),
                on_result=lambda result: stages.stage_done(
                    result.summary(), level=INFO if result.ok else ERROR
                ),
            )  # fmt: skip
            report.stage_ended("publish", started, all(r.ok for r in report.mirrors))
            # keys.json as each mirror now serves it; a mirror whose publish failed is
            # reported already, and is not waited for again
            published = {result.name for result in report.mirrors if result.ok}
            backends = [b for b in mirrors_open.backends if b.name in published]
            report.keys = await keys_expiry(config, backends, inputs.keys_files, now)
        started = time.monotonic()
        report.spawned = await top_up(config, store, at=now)  # no spare lacking: no request
        if report.spawned:
            report.stage_ended("spawn", started, all(result.ok for result in report.spawned))
        for result in report.spawned:
            stages.stage_done(result.summary(), level=INFO if result.ok else ERROR)
        if due(store, config, now) or store.open_deferrals():  # a deferral: retried each run
            await sync_digest(
                config, store, report, now=now, progress=stages, new_digest=due(store, config, now)
            )
        if config.mailin is not None:
            started = time.monotonic()
            await sync_mail_in(config, store, report, now=now, progress=stages)
            failed = report.mailin_error or (report.mailin and report.mailin.failed)
            report.stage_ended("mailin", started, not failed)
    return report


async def sync_digest(
    config: Config,
    store: Store,
    report: SyncReport,
    *,
    now: datetime,
    progress: Progress,
    new_digest: bool = True,
) -> None:
    """The digest as sync's stage (without `new_digest`, the sends deferred at earlier
    runs alone): a failure to send at all is reported, not raised (the edition is out)."""
    from mirror.digest.run import send_digest

    started = time.monotonic()
    try:
        report.digest = await send_digest(config, store, now=now, new_digest=new_digest)
        progress.stage_done(
            report.digest.summary(), level=WARNING if report.digest.partial else INFO
        )
    except (DigestError, ConfigError) as exc:  # the edition is out; say why no digest
        report.error = f"digest not sent: {exc}"
    sent_all = report.digest is not None and not report.digest.partial
    report.stage_ended("digest", started, sent_all and not report.error)


async def sync_reach(
    config: Config,
    live: Sequence[MirrorConfig],
    now: datetime,
    mark_blocked: MarkBlocked | None,
    progress: Progress,
) -> ReachReport | None:
    """`mirror reach` as sync's first stage, when [reach] is set; an API failure is an
    "error" verdict, reported, and never blocks or unblocks anything."""
    from mirror.reach.run import apply_blocks, check_reach, public_mirrors, reach_line

    if config.reach is None:
        return None
    report = await check_reach(config, public_mirrors(config, live), now=now)
    if mark_blocked is not None:
        apply_blocks(report, config.reach, mark_blocked)
    progress.stage_done(reach_line(report, config.reach), level=WARNING if report.errors else INFO)
    return report


async def sync_mail_in(
    config: Config, store: Store, report: SyncReport, *, now: datetime, progress: Progress
) -> None:
    """`mail-in once` as sync's last stage (after the digest: a reader who confirms now
    gets the welcome, not the same articles twice); with no mailbox (the pipe), only the
    welcomes owed to readers who confirmed on the web. A failure is reported, not raised:
    the edition is out already."""
    from mirror.mailin.run import (
        advancing,
        imap_password,
        mail_in_from_mailbox,
        secrets_from,
        send_welcomes,
    )

    try:
        secrets = secrets_from(config)
        if config.mailin is None or not config.mailin.imap_url:  # mail comes by the pipe
            report.mailin = await send_welcomes(config, store, now=advancing(now), secrets=secrets)
        else:
            report.mailin = await mail_in_from_mailbox(
                config, store, now=advancing(now), secrets=secrets,
                password=imap_password(config),
            )  # fmt: skip
    except MirrorError as exc:
        report.mailin_error = f"mail-in: {exc}"
        progress.stage_done(report.mailin_error, level=ERROR)
        return
    progress.stage_done(report.mailin.summary(), level=WARNING if report.mailin.failed else INFO)


async def check_status(
    config: Config, *, now: datetime, full: bool, deadline_s: float
) -> list[MirrorStatus]:
    """Every enabled mirror as a reader sees it, against the local edition's version
    (each within `deadline_s`)."""
    from mirror.publish.status import mirrors_status

    with Store(config.state.path) as store:
        latest = store.latest_edition()
        every = fleet.fleet(config, store)
    states = {m.name: str(m.state) for m in every}
    mirrors = [m.mirror for m in every if m.state in fleet.PUBLISHED]
    statuses = await mirrors_status(
        mirrors, load_trust_anchor(config), now=now, local_version=latest.version if latest else 0,
        full=full, deadline_s=deadline_s,
    )  # fmt: skip
    reach = load_cache(cache_path(config))  # the latest verdicts: no request to OONI
    for status in statuses:
        status.reach = [verdict.to_json() for verdict in reach.latest(status.name)]
        status.state = states[status.name]
    return statuses


async def retire(config: Config, name: str, *, reason: str = "retired", at: datetime) -> int:
    """Empty the mirror and keep it out of the mirror list from the next build on (its
    state: retired)."""
    with Store(config.state.path) as store:
        chosen = fleet.find(config, store, name)
    backend = open_backend(chosen.mirror)
    try:
        removed = await publisher.retire_mirror(backend)
    finally:
        await backend.close()
    with Store(config.state.path) as store:
        store.set_fleet_state(chosen.row(), fleet.MirrorState.RETIRED, reason, at)
    return removed
