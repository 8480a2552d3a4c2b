"""`mirror reach`, `--ooni-run`, `status`'s cached verdicts and `sync`'s auto-block,
against the OONI stand-in on 127.0.0.1 (tests/ooni_server.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mirror import cli as cli_module
from mirror.config import load_config
from mirror.newsroom import RunningNewsroom
from mirror.pipeline import run_sync

from cli_configs import cli, mirror_table, sync_config, write_config
from ooni_server import OoniStandIn, result, running_in_thread
from servers import closed_port

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SECRET_URL = "https://secret-unlisted.example.net/news/"


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "utc_now", lambda: NOW)


def public_url(n: int) -> str:
    return f"http://127.0.0.1:{closed_port()}/m{n}/"


def reach_config(folder: Path, api: str, *, listed: str, extra: str = "") -> str:
    tables = mirror_table("pub", type="directory", path=str(folder / "p"), public_url=listed)
    tables += mirror_table(
        "secret", type="directory", path=str(folder / "s"), public_url=SECRET_URL
    ).replace('name = "secret"\n', 'name = "secret"\nlisted = false\n')
    path = write_config(folder, "http://127.0.0.1:9/", tables)
    with path.open("a") as handle:
        handle.write(f'\n[reach]\nooni_api = "{api}"\ncountries = ["RU", "IR"]\ntimeout_s = 2\n')
        handle.write(extra)
    return str(path)


def blocked(url: str) -> OoniStandIn:
    ooni = OoniStandIn()
    hours = [NOW - timedelta(hours=n) for n in range(6)]
    ooni.add(
        url, "RU", [result(url, "RU", when, anomaly=True, n=n) for n, when in enumerate(hours)]
    )
    ooni.add(SECRET_URL, "RU", [result(SECRET_URL, "RU", NOW, confirmed=True)])
    return ooni


def test_reach_reports_listed_mirrors_per_country_and_caches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = public_url(1)
    ooni = blocked(url)
    with running_in_thread(ooni) as api:
        config = reach_config(tmp_path, api, listed=url)
        status, report, err = cli(capsys, "-c", config, "reach", "--json")
        asked = ooni.requests
        status_again, again, _ = cli(capsys, "-c", config, "reach", "--json")
    assert status == 0 and status_again == 0
    assert [m["name"] for m in report["mirrors"]] == ["pub"]
    countries = {c["country"]: c for c in report["mirrors"][0]["countries"]}
    assert countries["RU"]["verdict"] == "anomalies" and countries["RU"]["measurements"] == 6
    assert countries["IR"]["verdict"] == "no data"
    assert report["blocked"] == []
    assert "pub in RU: ANOMALIES" in err
    assert asked == 2 and ooni.requests == asked  # the second run: from the cache
    assert all(c["cached"] for c in again["mirrors"][0]["countries"])
    assert SECRET_URL not in json.dumps(report)


def test_an_api_failure_exits_1_and_keeps_the_cached_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = public_url(1)
    ooni = blocked(url)
    with running_in_thread(ooni) as api:
        config = reach_config(tmp_path, api, listed=url)
        assert cli(capsys, "-c", config, "reach")[0] == 0
        ooni.status = 503
        status, report, err = cli(capsys, "-c", config, "reach", "--json", "--refresh")
    assert status == 1
    verdicts = {c["verdict"] for c in report["mirrors"][0]["countries"]}
    assert verdicts == {"error"} and "HTTP 503" in err
    cache = json.loads((tmp_path / "state" / "reach.json").read_text())
    assert {v["verdict"] for v in cache["verdicts"]} == {"anomalies", "no data"}


def test_ooni_run_descriptor_lists_only_listed_mirrors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = public_url(1)
    ooni = OoniStandIn()
    with running_in_thread(ooni) as api:
        config = reach_config(tmp_path, api, listed=url)
        out = tmp_path / "ooni-run.json"
        status, _, err = cli(capsys, "-c", config, "reach", "--ooni-run", str(out))
    assert status == 0 and ooni.requests == 0
    text = out.read_text()
    assert SECRET_URL not in text and "secret" not in text
    descriptor = json.loads(text)
    assert set(descriptor) >= {"name", "short_description", "description", "author", "nettests"}
    (nettest,) = descriptor["nettests"]
    assert nettest["test_name"] == "web_connectivity" and nettest["inputs"] == [url]
    assert nettest["is_manual_run_enabled_default"] is True
    assert nettest["is_background_run_enabled_default"] is False
    assert nettest["options"] == {} and nettest["backend_options"] == {}
    assert "1 listed mirror" in err


def test_status_shows_the_cached_verdicts_without_asking_ooni(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = public_url(1)
    ooni = blocked(url)
    with running_in_thread(ooni) as api:
        config = reach_config(tmp_path, api, listed=url)
        cli(capsys, "-c", config, "reach")
        asked = ooni.requests
        _, report, err = cli(capsys, "-c", config, "status", "--json", "--deadline-s", "5")
        assert ooni.requests == asked
    mirrors = {m["name"]: m for m in report["mirrors"]}
    assert [(r["country"], r["verdict"]) for r in mirrors["pub"]["reach"]] == [
        ("IR", "no data"),
        ("RU", "anomalies"),
    ]
    assert mirrors["secret"]["reach"] == []
    assert "OONI: IR no data, RU anomalies" in err


@pytest.mark.slow
def test_sync_marks_a_mirror_blocked_only_with_auto_block(
    tmp_path: Path, newsroom: RunningNewsroom, web_root: tuple[Path, str]
) -> None:
    url = web_root[1] + "s/"
    ooni = blocked(url)
    with running_in_thread(ooni) as api:
        path = Path(sync_config(tmp_path, newsroom, web_root))
        text = path.read_text()
        reach = f'\n[reach]\nooni_api = "{api}"\nmin_measurements = 5\n'
        path.write_text(text + reach)
        marked: list[tuple[str, str]] = []
        config = load_config(path)
        mirrors = list(config.mirrors)
        report = asyncio.run(
            run_sync(config, now=NOW, mirrors=mirrors, mark_blocked=lambda *a: marked.append(a))
        )
        assert marked == [] and report.reach is not None
        assert report.reach.verdicts[0].verdict == "anomalies"
        path.write_text(text + reach + "auto_block = true\n")
        config = load_config(path)
        report = asyncio.run(
            run_sync(config, now=NOW, mirrors=mirrors, mark_blocked=lambda *a: marked.append(a))
        )
    assert [name for name, _ in marked] == ["site"]
    assert report.reach is not None and report.reach.blocked == marked
    assert report.to_json()["reach"]["blocked"][0]["name"] == "site"
    assert ooni.requests == 1  # the second sync's verdict came from the cache
