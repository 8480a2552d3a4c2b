"""The fleet: which mirrors are published and which are handed out.

Takes the config (configured `[[mirrors]]` and `[[pools]]`) and the store's `fleet`
table (spawned mirrors, and every state change); gives:

- `published(config, store)`: spare, live and blocked mirrors, the targets of publish,
  status, verify and gc;
- `handed_out(config, store)`: the live ones, for digest links, mail-in's mirrors reply
  and mirrors.json/html (when listed). Should no mirror be live, the blocked ones stay
  handed out until a replacement is live: readers are never left with no link.

States: spare (published, never handed out) -> live -> blocked (still published for
readers behind a VPN) -> retired (emptied, dropped). A configured mirror is live unless
the store records another state. `block` and `unblock` change states (promoting a spare
when a live mirror is blocked); `mirror.fleet.spawn` makes new mirrors in a pool.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from mirror.config import Config, MirrorConfig
from mirror.errors import UsageError
from mirror.store import FleetRow, Store, iso, parse_iso

log = logging.getLogger("mirror")


class MirrorState(enum.StrEnum):
    SPARE = "spare"
    LIVE = "live"
    BLOCKED = "blocked"
    RETIRED = "retired"


PUBLISHED = frozenset({MirrorState.SPARE, MirrorState.LIVE, MirrorState.BLOCKED})
CONFIG_ORIGIN = "config"
POOL_ORIGIN = "pool:"


@dataclass(frozen=True)
class FleetMirror:
    """One mirror with its origin and state."""

    mirror: MirrorConfig
    origin: str  # config | pool:NAME
    state: MirrorState
    created_at: datetime | None = None
    state_changed_at: datetime | None = None
    reason: str = ""

    @property
    def name(self) -> str:
        return self.mirror.name

    @property
    def pool(self) -> str:
        """The pool's name; "" for a configured mirror."""
        return self.origin.removeprefix(POOL_ORIGIN) if self.origin != CONFIG_ORIGIN else ""

    def age_s(self, now: datetime) -> float | None:
        return (now - self.created_at).total_seconds() if self.created_at else None

    def row(self) -> FleetRow:
        """The store's record of this mirror, as it stands."""
        mirror = self.mirror
        return FleetRow(
            name=mirror.name, origin=self.origin, type=mirror.type,
            public_url=mirror.public_url, state=str(self.state),
            created_at=iso(self.created_at) or "",
            state_changed_at=iso(self.state_changed_at) or "",
            bucket=mirror.bucket, path=str(mirror.path or ""), reason=self.reason,
        )  # fmt: skip

    def to_json(self, now: datetime) -> dict[str, object]:
        return {
            "name": self.name, "origin": self.origin, "state": str(self.state),
            "public_url": self.mirror.public_url, "listed": self.mirror.listed,
            "age_s": self.age_s(now), "reason": self.reason,
            "state_changed_at": iso(self.state_changed_at),
        }  # fmt: skip


@dataclass(frozen=True)
class BlockResult:
    """What `block` did: the mirror's state before, the spare promoted in its place (if
    any), and whether it was the last live mirror with no replacement (then it stays
    handed out until one is live)."""

    name: str
    previous: MirrorState
    promoted: str | None = None
    last_live: bool = False


def fleet(config: Config, store: Store) -> tuple[FleetMirror, ...]:
    """Every mirror: the enabled configured ones in config order, then the spawned ones,
    oldest first (a spawned mirror whose pool left the config is left out, with a warning)."""
    rows = {row.name: row for row in store.fleet_rows()}
    mirrors = [_configured(mirror, rows.get(mirror.name)) for mirror in config.mirrors]
    configured = {mirror.name for mirror in config.mirrors}
    for row in rows.values():
        if row.name not in configured and row.origin != CONFIG_ORIGIN:
            spawned = _spawned(config, row)
            if spawned is not None:
                mirrors.append(spawned)
    return tuple(m for m in mirrors if m.mirror.enabled)


def published(config: Config, store: Store) -> tuple[MirrorConfig, ...]:
    """The mirrors to publish to, check and collect garbage in: spare, live, blocked."""
    return tuple(m.mirror for m in fleet(config, store) if m.state in PUBLISHED)


def handed_out(config: Config, store: Store) -> tuple[MirrorConfig, ...]:
    """The mirrors readers are given: live; with none live, the blocked ones."""
    return tuple(m.mirror for m in handed_out_fleet(fleet(config, store)))


def handed_out_fleet(mirrors: tuple[FleetMirror, ...]) -> tuple[FleetMirror, ...]:
    live = tuple(m for m in mirrors if m.state is MirrorState.LIVE)
    return live or tuple(m for m in mirrors if m.state is MirrorState.BLOCKED)


def live_public(config: Config, store: Store) -> tuple[MirrorConfig, ...]:
    """The live, listed mirrors: the only ones that may go to OONI (a measurement is
    public; an unlisted mirror must never appear in one)."""
    return tuple(
        m.mirror for m in fleet(config, store) if m.state is MirrorState.LIVE and m.mirror.listed
    )


def live_public_urls(config: Config, store: Store) -> tuple[str, ...]:
    """The public URLs of `live_public`."""
    return tuple(mirror.public_url for mirror in live_public(config, store))


def blocked_since(config: Config, store: Store, since: datetime) -> tuple[MirrorConfig, ...]:
    """The mirrors blocked after `since` and blocked still (the digest tells readers)."""
    return tuple(
        m.mirror
        for m in fleet(config, store)
        if m.state is MirrorState.BLOCKED and m.state_changed_at and m.state_changed_at > since
    )


def find(config: Config, store: Store, name: str) -> FleetMirror:
    """The mirror named `name`; UsageError when there is none."""
    mirrors = {m.name: m for m in fleet(config, store)}
    if name not in mirrors:
        raise UsageError(f"no mirror named {name!r} (known: {sorted(mirrors)})")
    return mirrors[name]


def block(config: Config, store: Store, name: str, *, reason: str, at: datetime) -> BlockResult:
    """Mark a mirror blocked (it stays published, no longer handed out). A live one is
    replaced at once by a spare of its pool, else of any pool; with no spare and no
    other live mirror, a loud warning: it stays handed out until a replacement is live."""
    target = find(config, store, name)
    if target.state not in (MirrorState.LIVE, MirrorState.SPARE):
        raise UsageError(f"{name} is {target.state}: only a live or spare mirror can be blocked")
    store.set_fleet_state(target.row(), MirrorState.BLOCKED, reason, at)
    if target.state is not MirrorState.LIVE:
        return BlockResult(name, target.state)
    promoted = promote_spare(
        config, store, prefer_pool=target.pool, at=at, reason=f"replaces {name}"
    )
    others_live = any(m.state is MirrorState.LIVE for m in fleet(config, store))
    if not others_live:
        log.warning(
            "%s was the last live mirror and no spare is ready: it stays handed out until "
            "a replacement is live (mirror mirrors spawn POOL)",
            name,
        )
    return BlockResult(name, target.state, promoted, last_live=not others_live)


def unblock(config: Config, store: Store, name: str, *, reason: str, at: datetime) -> FleetMirror:
    """A blocked mirror is live again (ops learnt it is reachable)."""
    target = find(config, store, name)
    if target.state is not MirrorState.BLOCKED:
        raise UsageError(f"{name} is {target.state}, not blocked")
    store.set_fleet_state(target.row(), MirrorState.LIVE, reason, at)
    return find(config, store, name)


def promote_spare(
    config: Config, store: Store, *, prefer_pool: str, at: datetime, reason: str
) -> str | None:
    """Make the oldest spare live (of `prefer_pool` first; within each pool's max_live);
    its name, or None when there is no spare to promote."""
    mirrors = fleet(config, store)
    spares = [m for m in mirrors if m.state is MirrorState.SPARE and _room(config, mirrors, m)]
    spares.sort(key=lambda m: m.pool != prefer_pool)  # stable: oldest first within each
    if not spares:
        return None
    store.set_fleet_state(spares[0].row(), MirrorState.LIVE, reason, at)
    return spares[0].name


def _room(config: Config, mirrors: tuple[FleetMirror, ...], spare: FleetMirror) -> bool:
    pool = config.pool(spare.pool)
    if pool is None or not pool.max_live:
        return True
    live = sum(1 for m in mirrors if m.pool == spare.pool and m.state is MirrorState.LIVE)
    return live < pool.max_live


def _configured(mirror: MirrorConfig, row: FleetRow | None) -> FleetMirror:
    if row is None:
        return FleetMirror(mirror, CONFIG_ORIGIN, MirrorState.LIVE)
    return _with_row(mirror, CONFIG_ORIGIN, row)


def _spawned(config: Config, row: FleetRow) -> FleetMirror | None:
    pool = config.pool(row.origin.removeprefix(POOL_ORIGIN))
    if pool is None:
        if row.state != MirrorState.RETIRED:
            log.warning("%s: its pool (%s) is not in the config: left out", row.name, row.origin)
        return None
    mirror = pool.mirror(row.name)  # where it was made, should the templates change since
    mirror = replace(mirror, public_url=row.public_url or mirror.public_url)
    mirror = replace(mirror, path=Path(row.path) if row.path else mirror.path)
    return _with_row(mirror, row.origin, row)


def _with_row(mirror: MirrorConfig, origin: str, row: FleetRow) -> FleetMirror:
    return FleetMirror(
        mirror, origin, MirrorState(row.state),
        parse_iso(row.created_at or None), parse_iso(row.state_changed_at or None), row.reason,
    )  # fmt: skip
