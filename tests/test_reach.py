"""mirror.reach: OONI's pages parsed and classified (pure), and the client, the cache and
the block action against the OONI stand-in on 127.0.0.1 (tests/ooni_server.py)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mirror import fleet
from mirror.config import Config, MirrorConfig, ReachConfig, StateConfig, load_config
from mirror.errors import ConfigError, ReachError
from mirror.reach.cache import cache_path, load_cache
from mirror.reach.model import Measurement, classify, parse_page
from mirror.reach.run import ReachReport, apply_blocks, check_reach, public_mirrors, to_block
from mirror.store import Store

from ooni_server import OoniStandIn, fixture, result, running
from servers import closed_port

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
URL = "https://s3.eu-central-1.amazonaws.com/example-mirror-1/"


def measurement(*, anomaly: bool = False, confirmed: bool = False, failure: bool = False,
                n: int = 0) -> Measurement:  # fmt: skip
    return Measurement(f"m{n}", f"AS{n % 3}", NOW - timedelta(hours=n), anomaly, confirmed, failure)


# pure: pages and verdicts


def test_fixture_pages_classify_as_confirmed_blocked_with_counts_time_and_networks() -> None:
    first, second = (
        parse_page(fixture("measurements_page1.json")),
        parse_page(fixture("measurements_page2.json")),
    )
    assert first.next_url and first.next_url.endswith("offset=2")
    assert second.next_url is None
    verdict = classify("m1", URL, "RU", [*first.measurements, *second.measurements], NOW)
    assert verdict.verdict == "confirmed blocked"
    assert (verdict.measurements, verdict.anomalies, verdict.confirmed) == (3, 2, 1)
    assert verdict.newest == datetime(2026, 11, 28, 9, 41, 7, tzinfo=UTC)
    assert verdict.asns == ("AS12389", "AS25159", "AS8402")
    assert verdict.blocks(0.5, 5)


def test_verdicts_ok_anomalies_and_no_data() -> None:
    ok = classify("m", URL, "RU", [measurement(n=n) for n in range(4)], NOW)
    assert ok.verdict == "ok" and not ok.blocks(0.5, 1)
    failures_only = [measurement(failure=True, anomaly=True, n=n) for n in range(4)]
    assert classify("m", URL, "RU", failures_only, NOW).verdict == "no data"
    assert classify("m", URL, "RU", [], NOW).verdict == "no data"
    duplicated = [measurement(anomaly=True, n=1), measurement(anomaly=True, n=1)]
    assert classify("m", URL, "RU", duplicated, NOW).measurements == 1


def test_anomalies_block_only_above_the_ratio_over_enough_measurements() -> None:
    def verdict(anomalous: int, clean: int) -> Any:
        items = [measurement(anomaly=True, n=n) for n in range(anomalous)]
        items += [measurement(n=100 + n) for n in range(clean)]
        return classify("m", URL, "RU", items, NOW)

    assert verdict(3, 2).verdict == "anomalies" and verdict(3, 2).blocks(0.5, 5)
    assert not verdict(3, 3).blocks(0.5, 5)  # exactly half: not above
    assert not verdict(4, 0).blocks(0.5, 5)  # too few measurements
    assert verdict(4, 0).blocks(0.5, 4)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"metadata": {}},
        {"metadata": {}, "results": "x"},
        {"metadata": {"next_url": 3}, "results": []},
        {"metadata": {}, "results": [{"anomaly": True}]},
        {"metadata": {}, "results": [{"measurement_start_time": "yesterday"}]},
        {
            "metadata": {},
            "results": [{"measurement_start_time": "2026-11-28T00:00:00Z", "anomaly": "yes"}],
        },
    ],
)
def test_malformed_pages_are_reach_errors(document: Any) -> None:
    with pytest.raises(ReachError):
        parse_page(document)


# against the stand-in


def config(tmp_path: Path, api: str, **reach: Any) -> Config:
    mirrors = (
        MirrorConfig("m1", "directory", URL, path=tmp_path / "m1"),
        MirrorConfig("m2", "directory", "https://m2.example.net/", path=tmp_path / "m2"),
        MirrorConfig("hidden", "directory", "https://hidden.example/", listed=False),
        MirrorConfig("off", "directory", "https://off.example/", enabled=False),
    )
    settings = ReachConfig(ooni_api=api, countries=("RU", "IR"), timeout_s=2.0, **reach)
    return Config(
        path=tmp_path / "mirror.toml",
        mirrors=mirrors,
        state=StateConfig(tmp_path / "state" / "mirror.db"),
        reach=settings,
    )


def blocked_in_ru() -> OoniStandIn:
    ooni = OoniStandIn()
    ooni.add(URL, "RU", [result(URL, "RU", NOW - timedelta(hours=n), anomaly=n < 5, n=n,
                                asn=f"AS{1000 + n % 2}") for n in range(7)])  # fmt: skip
    ooni.add(URL, "IR", [result(URL, "IR", NOW - timedelta(hours=n), n=n) for n in range(3)])
    ooni.add(URL, "RU", [result(URL, "RU", NOW - timedelta(hours=30), confirmed=True, n=99)])
    return ooni


def test_only_listed_enabled_live_mirrors_are_public(tmp_path: Path) -> None:
    settings = config(tmp_path, "http://x")
    names = [target.name for target in public_mirrors(settings)]
    assert names == ["m1", "m2"]
    (tmp_path / "state").mkdir()
    with Store(settings.state.path) as store:
        store.set_fleet_state(fleet.find(settings, store, "m1").row(), "blocked", "OONI", NOW)
        live = fleet.live_public(settings, store)
    assert [t.name for t in public_mirrors(settings, live)] == ["m2"]


async def test_reach_follows_pages_within_the_window_and_classifies(tmp_path: Path) -> None:
    ooni = blocked_in_ru()
    async with running(ooni) as api:
        settings = config(tmp_path, api, page_size=3)
        report = await check_reach(settings, public_mirrors(settings), now=NOW)
    verdicts = {(v.mirror, v.country): v for v in report.verdicts}
    ru = verdicts["m1", "RU"]
    # 7 in the window over 3 pages; the confirmed one is 30 h old, outside the window
    assert (ru.verdict, ru.measurements, ru.anomalies, ru.confirmed) == ("anomalies", 7, 5, 0)
    assert ru.asns == ("AS1000", "AS1001") and ru.newest == NOW
    assert verdicts["m1", "IR"].verdict == "ok"
    assert verdicts["m2", "RU"].verdict == "no data"
    assert ooni.requests == 3 + 1 + 2  # m1/RU three pages, m1/IR one, m2 one per country
    assert to_block(report, settings.reach or ReachConfig()) == {"m1": f"OONI: {ru.summary()}"}
    assert "hidden" not in {v.mirror for v in report.verdicts}


async def test_pages_stop_at_max_pages(tmp_path: Path) -> None:
    async with running(blocked_in_ru()) as api:
        settings = config(tmp_path, api, page_size=2, max_pages=2)
        report = await check_reach(settings, public_mirrors(settings)[:1], now=NOW)
    assert report.verdicts[0].measurements == 4


async def test_verdicts_are_cached_for_the_window(tmp_path: Path) -> None:
    ooni = blocked_in_ru()
    async with running(ooni) as api:
        settings = config(tmp_path, api, window_h=6.0)
        first = await check_reach(settings, public_mirrors(settings), now=NOW)
        asked = ooni.requests
        again = await check_reach(settings, public_mirrors(settings), now=NOW + timedelta(hours=5))
        assert ooni.requests == asked  # nothing asked again within the window
        assert all(v.cached for v in again.verdicts)
        assert [v.verdict for v in again.verdicts] == [v.verdict for v in first.verdicts]
        await check_reach(settings, public_mirrors(settings), now=NOW + timedelta(hours=7))
        assert ooni.requests == 2 * asked
    latest = load_cache(cache_path(settings)).latest("m1")
    # the third run's: the stand-in's measurements are all older than its window
    assert [(v.country, v.verdict) for v in latest] == [("IR", "no data"), ("RU", "no data")]
    assert {v.checked_at for v in latest} == {NOW + timedelta(hours=7)}


BAD_ANSWERS = {
    "5xx": {"status": 502},
    "malformed JSON": {"malformed": True},
    "wrong shape": {"wrong_shape": True},
    "huge body": {"huge_bytes": 3_000_000},
    "slow": {"delay_s": 3.0},
    "next_url elsewhere": {"foreign_next": True},
}
NAMED_FAILURES = {
    "5xx": "HTTP 502",
    "malformed JSON": "not JSON",
    "wrong shape": "no 'results' list",
    "huge body": "larger than 1000000 bytes",
    "slow": "not done within 1 s (reach.timeout_s)",
    "next_url elsewhere": "leaves the API",
}


@pytest.mark.parametrize("knob", BAD_ANSWERS, ids=list(BAD_ANSWERS))
async def test_a_bad_api_answer_is_reported_and_changes_nothing(tmp_path: Path, knob: str) -> None:
    ooni = blocked_in_ru()
    async with running(ooni) as api:
        settings = config(tmp_path, api, page_size=3, max_response_bytes=1_000_000, auto_block=True)
        reach = replace(settings.reach or ReachConfig(), timeout_s=1.0, countries=("RU",))
        settings = replace(settings, reach=reach)
        targets = public_mirrors(settings)[:1]
        before = await check_reach(settings, targets, now=NOW - timedelta(days=2))
        for name, value in BAD_ANSWERS[knob].items():
            setattr(ooni, name, value)
        report = await check_reach(settings, targets, now=NOW)
    # each failure named; the slow API is cut by timeout_s (1 s) before its 3 s answer
    assert all(NAMED_FAILURES[knob] in v.error for v in report.errors), report.errors
    assert {v.verdict for v in report.verdicts} == {"error"}
    assert all(v.error for v in report.errors)
    marked: list[tuple[str, str]] = []
    apply_blocks(report, settings.reach or ReachConfig(), lambda *a: marked.append(a))
    assert marked == [] and report.blocked == []
    # the earlier verdicts stand in the cache
    cached = load_cache(cache_path(settings)).latest("m1")
    assert [(v.verdict, v.checked_at) for v in cached] == [
        (v.verdict, v.checked_at) for v in before.verdicts
    ]


async def test_an_unreachable_api_is_an_error_verdict(tmp_path: Path) -> None:
    settings = config(tmp_path, f"http://127.0.0.1:{closed_port()}")
    report = await check_reach(settings, public_mirrors(settings), now=NOW)
    assert {v.verdict for v in report.verdicts} == {"error"}
    assert "OONI API" in report.verdicts[0].error


async def test_auto_block_marks_only_when_set(tmp_path: Path) -> None:
    async with running(blocked_in_ru()) as api:
        settings = config(tmp_path, api)
        report = await check_reach(settings, public_mirrors(settings), now=NOW)
    marked: list[tuple[str, str]] = []
    reach = settings.reach or ReachConfig()
    apply_blocks(report, reach, lambda *a: marked.append(a))
    assert marked == []
    apply_blocks(report, replace(reach, auto_block=True), lambda *a: marked.append(a))
    assert [name for name, _ in marked] == ["m1"] and "anomalies" in marked[0][1].lower()
    assert report.blocked == marked
    assert ReachReport().to_json() == {"mirrors": [], "blocked": []}


# [reach] in the config file


def load(tmp_path: Path, reach: str) -> Config:
    path = tmp_path / "mirror.toml"
    path.write_text(f"[reach]\n{reach}\n")
    return load_config(path)


def test_reach_section_defaults_and_absence(tmp_path: Path) -> None:
    assert load(tmp_path, "").reach == ReachConfig()
    (tmp_path / "empty.toml").write_text("")
    assert load_config(tmp_path / "empty.toml").reach is None  # sync asks OONI nothing
    assert ReachConfig().ooni_api == "https://api.ooni.io" and ReachConfig().countries == ("RU",)


@pytest.mark.parametrize(
    ("reach", "message"),
    [
        ("anomaly_ration = 0.4", "did you mean 'reach.anomaly_ratio'"),
        ('countries = ["ru"]', "two-letter country code"),
        ('ooni_api = "ftp://api.ooni.io"', "http(s) URL"),
        ("anomaly_ratio = 1.5", "at most 1"),
        ("max_pages = 0", "1 or more"),
        ("timeout_s = 0", "above 0"),
    ],
)
def test_bad_reach_keys_are_named(tmp_path: Path, reach: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path, reach)
