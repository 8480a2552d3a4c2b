"""OONI's measurement pages in, verdicts out: pure (no socket, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mirror.errors import ReachError

OK, ANOMALIES, CONFIRMED, NO_DATA, ERROR = (
    "ok",
    "anomalies",
    "confirmed blocked",
    "no data",
    "error",
)
MAX_ASNS = 50  # networks named per verdict


@dataclass(frozen=True)
class Measurement:
    """One OONI measurement of a URL from one network."""

    uid: str
    asn: str  # "AS12389"
    start_time: datetime  # UTC
    anomaly: bool
    confirmed: bool
    failure: bool  # the measurement itself failed: no evidence either way


@dataclass(frozen=True)
class Page:
    """One page of /api/v1/measurements: its measurements and the next page's URL."""

    measurements: tuple[Measurement, ...]
    next_url: str | None


def parse_page(document: Any) -> Page:
    """A decoded /api/v1/measurements answer; ReachError when it is not of that shape."""
    if not isinstance(document, dict):
        raise ReachError("answer is not a JSON object")
    results, metadata = document.get("results"), document.get("metadata", {})
    if not isinstance(results, list) or not isinstance(metadata, dict):
        raise ReachError("answer has no 'results' list or no 'metadata' object")
    next_url = metadata.get("next_url")
    if next_url is not None and not isinstance(next_url, str):
        raise ReachError("metadata.next_url is not a string")
    return Page(tuple(_measurement(item) for item in results), next_url or None)


def _measurement(item: Any) -> Measurement:
    if not isinstance(item, dict):
        raise ReachError("a result is not a JSON object")
    try:
        started = datetime.fromisoformat(str(item["measurement_start_time"]))
        flags = [item.get(name, False) for name in ("anomaly", "confirmed", "failure")]
        uid = item.get("measurement_uid") or item.get("report_id") or ""
        asn = item.get("probe_asn", "")
    except (KeyError, ValueError) as exc:
        raise ReachError(f"a result has no valid measurement_start_time ({exc})") from None
    if not all(isinstance(flag, bool) for flag in flags) or not isinstance(asn, str):
        raise ReachError("a result's anomaly/confirmed/failure/probe_asn are of the wrong type")
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return Measurement(str(uid), asn, started.astimezone(UTC), *flags)


@dataclass(frozen=True)
class Verdict:
    """What OONI says of one mirror's URL in one country over the window."""

    mirror: str
    url: str
    country: str
    verdict: str  # ok | anomalies | confirmed blocked | no data | error
    checked_at: datetime
    measurements: int = 0  # all, failed ones included
    failures: int = 0
    anomalies: int = 0  # among the measurements that did not fail
    confirmed: int = 0
    newest: datetime | None = None
    asns: tuple[str, ...] = field(default=())
    error: str = ""
    cached: bool = False  # read from the cache, not asked of the API in this run

    @property
    def usable(self) -> int:
        return self.measurements - self.failures

    def blocks(self, anomaly_ratio: float, min_measurements: int) -> bool:
        """Confirmed blocking, or anomalies above `anomaly_ratio` over at least
        `min_measurements` usable measurements. An error never blocks."""
        if self.verdict == CONFIRMED:
            return True
        if self.verdict != ANOMALIES or self.usable < min_measurements:
            return False
        return self.anomalies / self.usable > anomaly_ratio

    def summary(self) -> str:
        if self.verdict == ERROR:
            return f"{self.mirror} in {self.country}: ERROR ({self.error}); nothing changed"
        if self.verdict == NO_DATA:
            return f"{self.mirror} in {self.country}: no data"
        newest = self.newest.strftime("%Y-%m-%d %H:%M") if self.newest else "-"
        return (
            f"{self.mirror} in {self.country}: {self.verdict.upper() if self.verdict != OK else OK}"
            f" ({self.anomalies} anomalies, {self.confirmed} confirmed, {self.usable} usable of "
            f"{self.measurements}; newest {newest} UTC; {len(self.asns)} networks)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "mirror": self.mirror,
            "url": self.url,
            "country": self.country,
            "verdict": self.verdict,
            "checked_at": _iso(self.checked_at),
            "measurements": self.measurements,
            "failures": self.failures,
            "anomalies": self.anomalies,
            "confirmed": self.confirmed,
            "newest": _iso(self.newest) if self.newest else None,
            "asns": list(self.asns),
            "error": self.error,
            "cached": self.cached,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        """The inverse of `to_json` (KeyError, ValueError or TypeError when garbled)."""
        newest = data["newest"]
        return cls(
            mirror=str(data["mirror"]),
            url=str(data["url"]),
            country=str(data["country"]),
            verdict=str(data["verdict"]),
            checked_at=datetime.fromisoformat(data["checked_at"]),
            measurements=int(data["measurements"]),
            failures=int(data["failures"]),
            anomalies=int(data["anomalies"]),
            confirmed=int(data["confirmed"]),
            newest=datetime.fromisoformat(newest) if newest else None,
            asns=tuple(str(asn) for asn in data["asns"]),
            error=str(data["error"]),
            cached=True,
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def classify(
    mirror: str, url: str, country: str, measurements: list[Measurement], checked_at: datetime
) -> Verdict:
    """One verdict from the window's measurements (duplicates across pages counted once)."""
    unique = list({m.uid or id(m): m for m in measurements}.values())
    usable = [m for m in unique if not m.failure]
    confirmed = sum(m.confirmed for m in usable)
    anomalies = sum(m.anomaly or m.confirmed for m in usable)
    verdict = _verdict(bool(usable), confirmed, anomalies)
    return Verdict(
        mirror=mirror,
        url=url,
        country=country,
        verdict=verdict,
        checked_at=checked_at,
        measurements=len(unique),
        failures=len(unique) - len(usable),
        anomalies=anomalies,
        confirmed=confirmed,
        newest=max((m.start_time for m in unique), default=None),
        asns=tuple(sorted({m.asn for m in unique if m.asn}))[:MAX_ASNS],
    )


def _verdict(has_data: bool, confirmed: int, anomalies: int) -> str:
    if not has_data:
        return NO_DATA
    return CONFIRMED if confirmed else ANOMALIES if anomalies else OK


def failed(mirror: str, url: str, country: str, reason: str, checked_at: datetime) -> Verdict:
    """The verdict when the API gave no usable answer: "error", never a block."""
    return Verdict(mirror, url, country, ERROR, checked_at, error=reason)
