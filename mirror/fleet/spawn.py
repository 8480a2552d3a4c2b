"""Spawning: new mirrors in a pool, on fresh random names, recorded as spares and filled.

`spawn(config, store, pool, count=, at=)` creates each bucket (or folder) with the
provider recipes of mirror.storage.provision, refusing one that exists already, records
it as `spare` and publishes the built edition to it. `top_up` spawns what each pool
lacks of its `spares`; with nothing lacking it sends no request anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from mirror.config import RANDOM_PART, Config, MirrorConfig, PoolConfig
from mirror.errors import BuildError, MirrorError, UsageError
from mirror.fleet import MirrorState, fleet, handed_out_fleet, promote_spare
from mirror.store import FleetRow, Store, iso

log = logging.getLogger("mirror")

ALPHABET = string.ascii_lowercase + string.digits
RANDOM_LENGTH = 8
MAX_NAME_TRIES = 100  # 36^8 names: a hundred clashes in a row means a broken pattern
MAX_SPAWN = 100  # mirrors one `spawn` makes at most


@dataclass
class SpawnResult:
    """One pool's spawn: the mirrors made (and those the edition reached), or why not."""

    pool: str
    spawned: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    error: str = ""  # the provider refused; the mirrors made before it stay
    publish_errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error and not self.publish_errors

    def to_json(self) -> dict[str, object]:
        return {
            "pool": self.pool, "ok": self.ok, "spawned": self.spawned,
            "published": self.published, "error": self.error,
            "publish_errors": self.publish_errors,
        }  # fmt: skip

    def summary(self) -> str:
        made = ", ".join(self.spawned) or "none"
        line = f"spawn {self.pool}: {len(self.spawned)} spawned ({made})"
        failures = [self.error, *(f"{n}: {e}" for n, e in self.publish_errors.items())]
        return line + "".join(f"; FAILED: {failure}" for failure in failures if failure)


def random_name(pattern: str, taken: Collection[str]) -> str:
    """`pattern` with its {random8} drawn from `secrets` (a-z, 0-9), unlike any of `taken`."""
    for _ in range(MAX_NAME_TRIES):
        part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
        name = pattern.replace(RANDOM_PART, part)
        if name not in taken:
            return name
    raise UsageError(f"{pattern}: no free name after {MAX_NAME_TRIES} tries")


def taken_names(config: Config, store: Store) -> set[str]:
    """Every name ever recorded (any state) or configured: never given again."""
    return {row.name for row in store.fleet_rows()} | {m.name for m in config.mirrors}


def spares_lacking(config: Config, store: Store) -> dict[str, int]:
    """Per pool, how many spares it lacks of its `spares` (pools lacking none left out)."""
    mirrors = fleet(config, store)
    lacking = {}
    for pool in config.pools:
        have = sum(1 for m in mirrors if m.pool == pool.name and m.state is MirrorState.SPARE)
        if have < pool.spares:
            lacking[pool.name] = pool.spares - have
    return lacking


async def spawn(
    config: Config, store: Store, pool_name: str, *, count: int, at: datetime
) -> SpawnResult:
    """Make `count` new mirrors in the pool, record them as spares, publish to them."""
    pool = config.pool(pool_name)
    if pool is None:
        known = [p.name for p in config.pools]
        raise UsageError(f"no pool named {pool_name!r} in the config (known: {known})")
    if not 1 <= count <= MAX_SPAWN:
        raise UsageError(f"--count must be 1 to {MAX_SPAWN}")
    result = SpawnResult(pool.name)
    made: list[MirrorConfig] = []
    for _ in range(count):
        try:
            made.append(await _spawn_one(config, store, pool, at))
        except MirrorError as exc:
            result.error = str(exc)
            break
        result.spawned.append(made[-1].name)
    await _publish_to(config, made, result)
    return result


async def _spawn_one(config: Config, store: Store, pool: PoolConfig, at: datetime) -> MirrorConfig:
    from mirror.storage.provision import setup_mirror

    mirror = pool.mirror(random_name(pool.bucket, taken_names(config, store)))
    steps = await asyncio.to_thread(setup_mirror, mirror, pool.provider, fresh=True)
    for step in steps:
        log.info("%s: %s", mirror.name, step)
    when = iso(at) or ""
    store.add_fleet_mirror(
        FleetRow(
            name=mirror.name, origin=f"pool:{pool.name}", type=mirror.type,
            public_url=mirror.public_url, state=MirrorState.SPARE, created_at=when,
            state_changed_at=when, bucket=mirror.bucket, path=str(mirror.path or ""),
            reason="spawned",
        )
    )  # fmt: skip
    return mirror


async def _publish_to(config: Config, mirrors: list[MirrorConfig], result: SpawnResult) -> None:
    """The built edition onto the new mirrors; without one, the next publish fills them."""
    from mirror.pipeline import publish_edition

    if not mirrors:
        return
    try:
        published = await publish_edition(config, mirrors)
    except (BuildError, MirrorError) as exc:
        result.publish_errors = {m.name: f"not published yet: {exc}" for m in mirrors}
        return
    result.published = [one.name for one in published if one.ok]
    result.publish_errors = {one.name: one.error or "failed" for one in published if not one.ok}


async def top_up(config: Config, store: Store, *, at: datetime) -> list[SpawnResult]:
    """Spawn what each pool lacks of its spares (a pool the provider refuses is reported,
    the others go on); then, should no mirror be live, promote a spare."""
    results = [
        await spawn(config, store, pool, count=lacking, at=at)
        for pool, lacking in spares_lacking(config, store).items()
    ]
    mirrors = fleet(config, store)
    if not any(m.state is MirrorState.LIVE for m in handed_out_fleet(mirrors)):
        promote_spare(config, store, prefer_pool="", at=at, reason="no mirror was live")
    return results
