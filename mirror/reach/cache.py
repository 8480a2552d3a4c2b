"""The verdicts of earlier runs, in a JSON file beside the store (`reach.json`).

A verdict younger than `window_h` is used instead of asking the API again; `mirror
status` reads the latest verdict of each mirror from here, with no network call. An
error never replaces an earlier verdict (it is kept only where there is none).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mirror.atomic import write_atomic
from mirror.config import Config
from mirror.reach.model import ERROR, Verdict

log = logging.getLogger("mirror")
CACHE_NAME = "reach.json"
MAX_CACHE_BYTES = 20_000_000


def cache_path(config: Config) -> Path:
    return config.state.path.parent / CACHE_NAME


@dataclass
class ReachCache:
    """Verdicts by (url, country)."""

    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    def fresh(self, url: str, country: str, now: datetime, window_h: float) -> Verdict | None:
        """The cached verdict if it is no error and younger than `window_h`."""
        verdict = self.verdicts.get((url, country))
        if verdict is None or verdict.verdict == ERROR:
            return None
        return verdict if now - verdict.checked_at < timedelta(hours=window_h) else None

    def record(self, verdict: Verdict) -> None:
        key = (verdict.url, verdict.country)
        if verdict.verdict == ERROR and key in self.verdicts:
            return  # an outage says nothing: the last real verdict stands
        self.verdicts[key] = verdict

    def latest(self, mirror: str) -> list[Verdict]:
        """The cached verdicts of one mirror, by country."""
        found = [v for v in self.verdicts.values() if v.mirror == mirror]
        return sorted(found, key=lambda verdict: verdict.country)


def load_cache(path: Path) -> ReachCache:
    """The cache at `path`; empty when missing, too large or garbled (said in the log)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CACHE_BYTES + 1)
        if len(data) > MAX_CACHE_BYTES:
            raise ValueError(f"larger than {MAX_CACHE_BYTES} bytes")
        entries = json.loads(data)["verdicts"]
        verdicts = [Verdict.from_json(entry) for entry in entries]
    except FileNotFoundError:
        return ReachCache()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("reach cache %s unreadable (%s): asking the API again", path, exc)
        return ReachCache()
    return ReachCache({(v.url, v.country): v for v in verdicts})


def save_cache(path: Path, cache: ReachCache) -> None:
    entries = [verdict.to_json() for verdict in cache.verdicts.values()]
    data = json.dumps({"verdicts": entries}, indent=1, sort_keys=True).encode()
    write_atomic(path, data)
