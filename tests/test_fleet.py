"""The fleet: pools, spawned mirrors, states, handing out; against folders and moto's S3."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from mirror import fleet
from mirror.cli import run
from mirror.config import Config, load_config
from mirror.errors import ConfigError, UsageError
from mirror.fleet import MirrorState
from mirror.fleet import spawn as spawn_module
from mirror.fleet.spawn import random_name, spares_lacking, spawn, top_up
from mirror.newsroom import RunningNewsroom
from mirror.storage import provision
from mirror.store import MIGRATIONS, Store

from cli_configs import cli, sync_config
from moto_server import REGION, create_bucket
from servers import closed_port

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)

DIR_POOL = """
[[pools]]
name = "folders"
type = "directory"
bucket = "news-{random8}"
path = "pool/{bucket}"
public_url = "https://pool.example.net/{bucket}/"
spares = 1
"""


def s3_pool(name: str, endpoint: str, spares: int = 1) -> str:
    return (
        f'\n[[pools]]\nname = "{name}"\ntype = "s3"\nbucket = "{name}-{{random8}}"\n'
        f'endpoint_url = "{endpoint}"\nregion = "{REGION}"\nprovider = "minio"\n'
        f'public_url = "{endpoint}/{{bucket}}/"\nspares = {spares}\n'
    )


def with_pools(built: Path, tables: str) -> Config:
    built.write_text(built.read_text() + tables, encoding="utf-8")
    return load_config(built)


def states(config: Config) -> dict[str, str]:
    with Store(config.state.path) as store:
        return {m.name: str(m.state) for m in fleet.fleet(config, store)}


def spawn_in(config: Config, pool: str, count: int = 1) -> spawn_module.SpawnResult:
    with Store(config.state.path) as store:
        return asyncio.run(spawn(config, store, pool, count=count, at=AT))


# --- config -----------------------------------------------------------------------------


def test_a_pool_loads_and_makes_mirrors(built: Path) -> None:
    config = with_pools(built, DIR_POOL)
    pool = config.pools[0]
    assert (pool.spares, pool.max_live, pool.listed) == (1, 0, True)
    mirror = pool.mirror("news-abcd1234")
    assert mirror.path == built.parent / "pool" / "news-abcd1234"
    assert mirror.public_url == "https://pool.example.net/news-abcd1234/"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("news-{random8}", "news"), "{random8}"),
        (("news-{random8}", "News.{random8}"), "not a valid bucket name"),
        (("/{bucket}/", "/"), "{bucket}"),
        (("spares = 1", "spares = 101"), "at most 100"),
        (("spares = 1", "sparse = 1"), "did you mean 'pools[0].spares'"),
    ],
)
def test_a_bad_pool_is_refused(built: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        with_pools(built, DIR_POOL.replace(*change))


def test_random_names_come_from_the_alphabet_and_skip_taken_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = random_name("news-{random8}", set())
    assert len(name) == 13 and name[5:].isalnum() and name == name.lower()
    draws = iter("a" * 8 + "b" * 8)
    monkeypatch.setattr(spawn_module.secrets, "choice", lambda _: next(draws))
    assert random_name("n-{random8}", {"n-aaaaaaaa"}) == "n-bbbbbbbb"


# --- states -----------------------------------------------------------------------------


def test_configured_mirrors_are_live_and_published_and_handed_out(built: Path) -> None:
    config = load_config(built)
    with Store(config.state.path) as store:
        assert [m.name for m in fleet.published(config, store)] == ["a", "hidden"]
        assert [m.name for m in fleet.handed_out(config, store)] == ["a", "hidden"]
        assert fleet.live_public_urls(config, store) == ("https://a.example.net/m/",)
    assert states(config) == {"a": "live", "hidden": "live"}


def test_spawn_in_a_directory_pool_records_a_spare_and_publishes(built: Path) -> None:
    config = with_pools(built, DIR_POOL)
    result = spawn_in(config, "folders", count=2)
    assert result.ok and len(result.spawned) == 2 and result.published == result.spawned
    for name in result.spawned:
        folder = built.parent / "pool" / name
        assert (folder / "current").is_file() and (folder / "index.html").is_file()
    assert states(config) == {"a": "live", "hidden": "live"} | dict.fromkeys(
        result.spawned, "spare"
    )
    with Store(config.state.path) as store:
        assert set(result.spawned) <= {m.name for m in fleet.published(config, store)}
        assert not set(result.spawned) & {m.name for m in fleet.handed_out(config, store)}
        assert store.fleet_history(result.spawned[0])[0]["to_state"] == "spare"


def test_spawn_refuses_a_folder_that_holds_files(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_pools(built, DIR_POOL)
    someone = built.parent / "pool" / "news-taken000"
    someone.mkdir(parents=True)
    (someone / "theirs.txt").write_text("not ours")
    monkeypatch.setattr(spawn_module, "random_name", lambda *_: "news-taken000")
    result = spawn_in(config, "folders")
    assert not result.ok and "never written to" in result.error and not result.spawned
    assert sorted(p.name for p in someone.iterdir()) == ["theirs.txt"]
    assert "news-taken000" not in states(config)


def test_block_promotes_a_spare_of_the_same_pool(built: Path) -> None:
    config = with_pools(built, DIR_POOL)
    first = spawn_in(config, "folders").spawned[0]
    with Store(config.state.path) as store:
        store.set_fleet_state(fleet.find(config, store, first).row(), MirrorState.LIVE, "t", AT)
    spare = spawn_in(config, "folders").spawned[0]
    with Store(config.state.path) as store:
        result = fleet.block(config, store, first, reason="readers in RU", at=AT)
        assert result == fleet.BlockResult(first, MirrorState.LIVE, spare, last_live=False)
        assert first not in {m.name for m in fleet.handed_out(config, store)}
        assert first in {m.name for m in fleet.published(config, store)}
        history = store.fleet_history(first)
    assert [(h["from_state"], h["to_state"]) for h in history][-1] == ("live", "blocked")
    assert history[-1]["reason"] == "readers in RU"
    assert states(config)[spare] == "live"


def test_blocking_the_last_live_mirror_warns_and_keeps_it_handed_out(
    built: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(built)
    with Store(config.state.path) as store:
        assert not fleet.block(config, store, "hidden", reason="x", at=AT).last_live
        with caplog.at_level(logging.WARNING, logger="mirror"):
            result = fleet.block(config, store, "a", reason="x", at=AT)
        assert result.last_live and result.promoted is None
        assert "last live mirror" in caplog.text
        assert [m.name for m in fleet.handed_out(config, store)] == ["a", "hidden"]
        fleet.unblock(config, store, "hidden", reason="reachable again", at=AT)
        assert [m.name for m in fleet.handed_out(config, store)] == ["hidden"]
        with pytest.raises(UsageError, match="not blocked"):
            fleet.unblock(config, store, "hidden", reason="", at=AT)
        with pytest.raises(UsageError, match="no mirror named"):
            fleet.block(config, store, "nope", reason="", at=AT)


def test_retired_names_from_before_the_fleet_table_are_kept(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with Store(path):
        pass
    db = sqlite3.connect(path)
    fleet = next(n for n, script in enumerate(MIGRATIONS) if "CREATE TABLE fleet " in script)
    later = [re.findall(r"CREATE TABLE (\w+)", script) for script in MIGRATIONS[fleet:]]
    db.execute(f"PRAGMA user_version = {fleet}")  # a store from before the fleet table
    db.executescript("".join(f"DROP TABLE {table};" for tables in later for table in tables))
    added = [
        re.findall(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", script) for script in MIGRATIONS[fleet:]
    ]  # columns later migrations add to older tables: gone too, as in a store of then
    db.executescript(
        "".join(f"ALTER TABLE {t} DROP COLUMN {c};" for pairs in added for t, c in pairs)
    )
    db.execute("INSERT INTO meta (key, value) VALUES ('retired_mirrors', '[\"old\"]')")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.retired_mirrors() == frozenset({"old"})


# --- the command line -------------------------------------------------------------------


def test_cli_spawn_list_block_unblock_and_mirrors_json(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_pools(built, DIR_POOL)
    config = str(built)
    status, report, _ = cli(capsys, "-c", config, "mirrors", "spawn", "folders", "--json")
    assert status == 0
    spare = report["pools"][0]["spawned"][0]
    status, listing, _ = cli(capsys, "-c", config, "mirrors", "list", "--json")
    rows = {row["name"]: row for row in listing["mirrors"]}
    assert rows["a"]["origin"] == "config" and rows["a"]["state"] == "live"
    assert rows[spare]["origin"] == "pool:folders" and rows[spare]["state"] == "spare"
    assert rows[spare]["age_s"] is not None
    status, _, err = cli(capsys, "-c", config, "mirrors", "block", "a", "--reason", "RU")
    assert status == 0 and f"{spare}: promoted" in err
    assert run(["-c", config, "build"]) == 0
    listed = json.loads((built.parent / "edition" / "mirrors.json").read_text())
    urls = json.dumps(listed)
    assert f"https://pool.example.net/{spare}/" in urls and "a.example.net" not in urls
    assert cli(capsys, "-c", config, "mirrors", "unblock", "a")[0] == 0
    assert run(["-c", config, "build"]) == 0
    assert "a.example.net" in (built.parent / "edition" / "mirrors.json").read_text()
    _, listing, _ = cli(capsys, "-c", config, "mirrors", "list", "--json")
    assert {row["name"]: row["state"] for row in listing["mirrors"]}["a"] == "live"


# --- S3 pools on moto -------------------------------------------------------------------


@pytest.mark.usefixtures("aws_env")
def test_s3_spawn_creates_opens_and_publishes_and_a_refusing_pool_is_reported(
    built: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    with_pools(built, s3_pool("dead", dead) + s3_pool("moto", moto_endpoint))
    args = ["-c", str(built), "mirrors", "spawn", "dead", "moto", "--json"]
    status, report, _ = cli(capsys, *args)
    assert status == 1
    failed, good = report["pools"]
    assert not failed["ok"] and failed["error"] and not failed["spawned"]
    assert good["ok"] and good["published"] == good["spawned"]
    bucket = good["spawned"][0]
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    policy = json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Action"] == ["s3:GetObject"]
    body = client.get_object(Bucket=bucket, Key="current")["Body"].read()
    assert body.strip().isdigit()


@pytest.mark.usefixtures("aws_env")
def test_s3_spawn_never_writes_to_a_bucket_that_exists(
    built: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_pools(built, s3_pool("moto", moto_endpoint))
    existing = create_bucket(moto_endpoint)
    monkeypatch.setattr(spawn_module, "random_name", lambda *_: existing)
    result = spawn_in(config, "moto")
    assert "exists already" in result.error and not result.spawned
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    assert client.list_objects_v2(Bucket=existing).get("KeyCount", 0) == 0
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):
        client.get_bucket_policy(Bucket=existing)


@pytest.mark.usefixtures("aws_env")
def test_top_up_spawns_what_is_lacking_and_then_asks_no_provider(
    built: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_pools(built, s3_pool("moto", moto_endpoint, spares=2))
    clients: list[Any] = []
    real = provision.make_client

    def counted(*args: Any, **kwargs: Any) -> Any:
        clients.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(provision, "make_client", counted)
    with Store(config.state.path) as store:
        assert spares_lacking(config, store) == {"moto": 2}
        results = asyncio.run(top_up(config, store, at=AT))
        assert [len(r.spawned) for r in results] == [2] and len(clients) == 2
        assert spares_lacking(config, store) == {}
        assert asyncio.run(top_up(config, store, at=AT)) == []
    assert len(clients) == 2


# --- the digest -------------------------------------------------------------------------


def test_the_next_digest_context_names_mirrors_blocked_since_the_last(built: Path) -> None:
    from datetime import timedelta

    from mirror.digest.run import DigestRun

    config = with_pools(built, DIR_POOL)
    spare = spawn_in(config, "folders").spawned[0]
    secret = b"a-long-enough-digest-secret-0123456789"
    with Store(config.state.path) as store:
        first, _ = store.open_digest(AT, 1, "0" * 64)
        store.finish_digest(first, AT)
        fleet.block(config, store, "hidden", reason="RU", at=AT + timedelta(hours=1))
        second, _ = store.open_digest(AT + timedelta(hours=2), 1, "0" * 64)
        run = DigestRun(config, store, now=AT + timedelta(hours=2), secret=secret)
        context = run.context(second, AT + timedelta(hours=2), 1, "0" * 64)
    assert [m.name for m in context.blocked] == ["hidden"]
    assert context.previous_digest_id == first
    assert [m.name for m in context.mirrors] == ["a", spare]  # the spare went live


def test_status_shows_each_mirror_state_and_retired_ones_drop_out(
    built: Path, web_root: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, base = web_root
    pool = DIR_POOL.replace('"pool/{bucket}"', f'"{root}/{{bucket}}"')
    with_pools(built, pool.replace("https://pool.example.net/", base))
    config = str(built)
    for name in ("a", "hidden"):
        assert cli(capsys, "-c", config, "mirrors", "retire", name)[0] == 0
    spawned = cli(capsys, "-c", config, "mirrors", "spawn", "folders", "--count", "2", "--json")
    first, second = spawned[1]["pools"][0]["spawned"]
    assert cli(capsys, "-c", config, "mirrors", "block", first, "--reason", "RU")[0] == 0
    _, report, err = cli(capsys, "-c", config, "status", "--json")
    rows = {row["name"]: row for row in report["mirrors"]}
    assert set(rows) == {first, second}
    assert rows[first]["state"] == "blocked" and rows[first]["reachable"]
    assert rows[second]["state"] == "spare" and "[spare]" in err
    _, listing, _ = cli(capsys, "-c", config, "mirrors", "list", "--json")
    assert {row["name"]: row["state"] for row in listing["mirrors"]}["a"] == "retired"


@pytest.mark.slow
def test_sync_tops_up_a_pool_then_leaves_it_alone(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, base = web_root
    config = sync_config(tmp_path, newsroom, web_root)
    pool = DIR_POOL.replace('"pool/{bucket}"', f'"{root}/{{bucket}}"')
    Path(config).write_text(
        Path(config).read_text() + pool.replace("https://pool.example.net/", base)
    )
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "a-long-enough-unsubscribe-secret")
    status, report, _ = cli(capsys, "-c", config, "sync", "--json")
    assert status == 0 and report["ok"], report
    (spawned,) = report["spawn"]["pools"]
    name = spawned["spawned"][0]
    assert spawned["published"] == [name]
    assert (root / name / "current").read_text() == "1\n"
    status, report, _ = cli(capsys, "-c", config, "sync", "--json")
    assert status == 0 and report["spawn"]["pools"] == []
    names = [mirror["name"] for mirror in report["publish"]["mirrors"]]
    assert names == ["site", name]  # the spare is published like a configured mirror
    assert report["publish"]["mirrors"][1]["uploaded"] == 0


def test_promotion_prefers_the_blocked_mirrors_pool_and_keeps_within_max_live(
    built: Path,
) -> None:
    other = DIR_POOL.replace('"folders"', '"other"').replace("news-", "othr-")
    config = with_pools(built, DIR_POOL + other.replace("spares = 1", "spares = 1\nmax_live = 1"))
    mine = spawn_in(config, "folders", count=2).spawned
    theirs = spawn_in(config, "other", count=2).spawned
    with Store(config.state.path) as store:
        store.set_fleet_state(fleet.find(config, store, mine[0]).row(), MirrorState.LIVE, "", AT)
        assert fleet.block(config, store, mine[0], reason="x", at=AT).promoted == mine[1]
        promoted = fleet.block(config, store, mine[1], reason="x", at=AT).promoted
        assert promoted in theirs  # both spawned at AT: either is the oldest
        # "other" has its one live mirror: its second spare is not promoted
        assert fleet.block(config, store, "a", reason="x", at=AT).promoted is None
        urls = fleet.live_public_urls(config, store)
    assert urls == (f"https://pool.example.net/{promoted}/",)


@pytest.mark.slow
def test_sync_with_reach_auto_block_blocks_in_the_fleet_and_a_spare_replaces_it(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import timedelta

    from mirror.cli.stages import selected_mirrors
    from mirror.pipeline import run_sync

    from ooni_server import OoniStandIn, result, running_in_thread

    root, base = web_root
    site = base + "s/"
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    ooni = OoniStandIn()
    hours = [now - timedelta(hours=n) for n in range(6)]
    ooni.add(site, "RU", [result(site, "RU", at, anomaly=True, n=n) for n, at in enumerate(hours)])
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "a-long-enough-unsubscribe-secret")
    with running_in_thread(ooni) as api:
        path = Path(sync_config(tmp_path, newsroom, web_root))
        pool = DIR_POOL.replace('"pool/{bucket}"', f'"{root}/{{bucket}}"')
        reach = f'\n[reach]\nooni_api = "{api}"\nmin_measurements = 5\nauto_block = true\n'
        path.write_text(path.read_text() + reach + pool.replace("https://pool.example.net/", base))
        config = load_config(path)
        first = asyncio.run(run_sync(config, now=now, mirrors=selected_mirrors(config, [])))
        assert first.reach is not None and [n for n, _ in first.reach.blocked] == ["site"]
        (spare,) = first.spawned[0].spawned
        assert states(config) == {"site": "blocked", spare: "live"}  # promoted: none was live
        later = now + timedelta(hours=1)
        second = asyncio.run(run_sync(config, now=later, mirrors=selected_mirrors(config, [])))
    assert [r.name for r in second.mirrors] == ["site", spare]  # still published
    listed = (root / spare / "mirrors.json").read_text()
    assert f"{base}{spare}/" in listed and site not in listed
