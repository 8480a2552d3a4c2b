"""`mirror reach`: each listed mirror's verdict per country, from the cache or the API,
and the "mark blocked" action for those OONI shows blocked."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mirror.bounded import map_bounded
from mirror.config import Config, MirrorConfig, ReachConfig
from mirror.errors import ReachError
from mirror.reach.cache import cache_path, load_cache, save_cache
from mirror.reach.model import Verdict, classify, failed
from mirror.reach.ooni import OoniClient

MarkBlocked = Callable[[str, str], None]  # (mirror name, reason)


@dataclass(frozen=True)
class ReachTarget:
    """A mirror whose URL may go to OONI: listed (public), enabled, not retired."""

    name: str
    url: str


def public_mirrors(config: Config, live: Iterable[MirrorConfig] | None = None) -> list[ReachTarget]:
    """The live public mirrors: the listed ones of `live` (mirror.fleet.live_public;
    None: the enabled configured mirrors). Unlisted ones never go to OONI, neither in a
    query nor in a descriptor: a measurement, and a query's input, are public."""
    mirrors = config.mirrors if live is None else live
    return [
        ReachTarget(mirror.name, mirror.public_url)
        for mirror in mirrors
        if mirror.listed and mirror.enabled
    ]


@dataclass
class ReachReport:
    verdicts: list[Verdict] = field(default_factory=list)
    blocked: list[tuple[str, str]] = field(default_factory=list)  # (mirror, reason) marked

    @property
    def errors(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.verdict == "error"]

    def to_json(self) -> dict[str, Any]:
        by_mirror: dict[str, dict[str, Any]] = {}
        for verdict in self.verdicts:
            entry = by_mirror.setdefault(
                verdict.mirror, {"name": verdict.mirror, "url": verdict.url, "countries": []}
            )
            entry["countries"].append(verdict.to_json())
        blocked = [{"name": name, "reason": reason} for name, reason in self.blocked]
        return {"mirrors": list(by_mirror.values()), "blocked": blocked}


def reach_settings(config: Config) -> ReachConfig:
    """[reach], or its defaults when the section is absent."""
    return config.reach or ReachConfig()


async def check_reach(
    config: Config, targets: list[ReachTarget], *, now: datetime, refresh: bool = False
) -> ReachReport:
    """Every target's verdict per country: fresh cached ones as they are (unless
    `refresh`), the rest asked of the API (at most `concurrency` at once); the cache is
    then updated (an error never replaces a verdict there)."""
    reach, path = reach_settings(config), cache_path(config)
    cache = load_cache(path)
    pairs = [(target, country) for target in targets for country in reach.countries]
    async with OoniClient(reach) as client:

        async def one(pair: tuple[ReachTarget, str]) -> Verdict:
            target, country = pair
            cached = None if refresh else cache.fresh(target.url, country, now, reach.window_h)
            if cached is not None and cached.mirror == target.name:
                return cached
            return await ask(client, target, country, now, reach.window_h)

        verdicts = await map_bounded(one, pairs, limit=reach.concurrency)
    for verdict in verdicts:
        if not verdict.cached:
            cache.record(verdict)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_cache(path, cache)
    return ReachReport(verdicts)


async def ask(
    client: OoniClient, target: ReachTarget, country: str, now: datetime, window_h: float
) -> Verdict:
    """One verdict from the API; an API failure is an "error" verdict, never raised."""
    since = now - timedelta(hours=window_h)
    try:
        found = await client.measurements(target.url, country, since, now)
    except ReachError as exc:
        return failed(target.name, target.url, country, exc.reason, now)
    return classify(target.name, target.url, country, found, now)


def to_block(report: ReachReport, reach: ReachConfig) -> dict[str, str]:
    """Mirror -> reason, for each mirror OONI shows blocked in some country."""
    reasons: dict[str, str] = {}
    for verdict in report.verdicts:
        if verdict.mirror not in reasons and verdict.blocks(
            reach.anomaly_ratio, reach.min_measurements
        ):
            reasons[verdict.mirror] = f"OONI: {verdict.summary()}"
    return reasons


def apply_blocks(report: ReachReport, reach: ReachConfig, mark_blocked: MarkBlocked) -> None:
    """With `auto_block`, mark each mirror OONI shows blocked (recorded in the report);
    without, nothing (the verdicts are reported)."""
    if not reach.auto_block:
        return
    for name, reason in to_block(report, reach).items():
        mark_blocked(name, reason)
        report.blocked.append((name, reason))


def reach_line(report: ReachReport, reach: ReachConfig) -> str:
    """The reach stage of a sync in a line: verdicts, errors, what is (or would be) blocked."""
    counts: dict[str, int] = {}
    for verdict in report.verdicts:
        counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
    spelled = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    line = f"reach: {spelled or 'no listed mirror'}"
    marked = [name for name, _ in report.blocked]
    shown = sorted(set(to_block(report, reach)) - set(marked))
    if marked:
        line += f"; marked blocked: {', '.join(marked)}"
    if shown:
        why = "no fleet to mark it in" if reach.auto_block else "reach.auto_block is off"
        line += f"; OONI shows blocked, NOT marked ({why}): {', '.join(shown)}"
    return line
