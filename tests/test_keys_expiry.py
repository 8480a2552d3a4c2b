"""Ops hear in time that keys.json needs renewing: `status` and `sync` report (exit 1) a
keys.json that expires within 7 days, in the edition or on a mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.newsroom import RunningNewsroom

from cli_configs import cli, mirror_table, sync_config, with_root, with_store, write_config


@pytest.mark.slow
def test_status_reports_a_keys_json_about_to_expire(
    tmp_path: Path,
    fetched_store: Path,
    web_root: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = web_root
    tables = mirror_table("site", type="directory", path=str(root / "s"), public_url=base + "s/")
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    root_key = with_root(config, tmp_path)
    assert (
        cli(capsys, "-c", config, "keys", "certify", "--root-key", root_key, "--days", "5")[0] == 0
    )
    assert cli(capsys, "-c", config, "build")[0] == 0
    assert cli(capsys, "-c", config, "publish")[0] == 0

    status, report, _ = cli(capsys, "-c", config, "status", "--json")
    site = report["mirrors"][0]
    assert status == 1 and site["keys_due"] is True and site["keys_expires"].endswith("Z")
    assert site["version"] == 1 and not site["stale"] and site["tampered"] == []
    status, _, err = cli(capsys, "-c", config, "status")
    assert status == 1 and f"KEYS.JSON EXPIRES {site['keys_expires']}" in err

    assert cli(capsys, "-c", config, "keys", "certify", "--root-key", root_key)[0] == 0
    assert cli(capsys, "-c", config, "build")[0] == 0
    assert cli(capsys, "-c", config, "publish")[0] == 0
    status, report, _ = cli(capsys, "-c", config, "status", "--json")
    assert status == 0 and report["mirrors"][0]["keys_due"] is False


@pytest.mark.slow
def test_sync_reports_a_keys_json_about_to_expire(
    tmp_path: Path,
    web_root: tuple[Path, str],
    newsroom: RunningNewsroom,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = sync_config(tmp_path, newsroom, web_root)
    root_key = with_root(config, tmp_path)
    assert (
        cli(capsys, "-c", config, "keys", "certify", "--root-key", root_key, "--days", "6")[0] == 0
    )
    status, report, err = cli(capsys, "-c", config, "sync", "--json")
    assert status == 1 and not report["ok"]
    assert report["publish"]["mirrors"][0]["ok"]  # the edition is out all the same
    keys = report["keys"]
    assert keys["due"] is True and keys["edition_expires"].endswith("Z")
    assert keys["mirrors"] == [{"name": "site", "keys_expires": keys["edition_expires"]}]
    assert "warning: keys.json of the edition expires at" in err
    assert "keys.json of mirror site expires at" in err and "mirror keys certify" in err

    assert cli(capsys, "-c", config, "keys", "certify", "--root-key", root_key)[0] == 0
    status, report, _ = cli(capsys, "-c", config, "sync", "--json")
    assert status == 0 and report["ok"] and report["keys"]["due"] is False
