"""Publishing through the CLI: several mirrors at once (folders and moto's S3 server),
one broken mirror that neither stops nor delays the others, status as a reader sees it,
setup and retire, and sync against the live sample newsroom."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest

from mirror.newsroom import RunningNewsroom
from mirror.newsroom.state import DEFAULT_REFERENCE

from cli_configs import cli, mirror_table, sync_config, with_store, write_config
from moto_server import create_bucket, new_bucket_name
from servers import closed_port


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
def test_publish_to_folders_and_s3_with_one_broken_mirror(
    tmp_path: Path,
    fetched_store: Path,
    web_root: tuple[Path, str],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = web_root
    bucket = create_bucket(moto_endpoint)
    tables = (
        mirror_table("dir-a", type="directory", path=str(root / "a"), public_url=base + "a/")
        + mirror_table("dir-b", type="directory", path=str(root / "b"), public_url=base + "b/")
        + mirror_table(
            "s3-moto", type="s3", bucket=bucket, endpoint_url=moto_endpoint,
            region="us-east-1", public_url=f"{moto_endpoint}/{bucket}/",
        )
        + mirror_table(
            "s3-down", type="s3", bucket="gone-bucket", region="us-east-1",
            endpoint_url=f"http://127.0.0.1:{closed_port()}", public_url="https://x.example/",
        )
    )  # fmt: skip
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    assert cli(capsys, "-c", config, "build")[0] == 0

    status, report, err = cli(capsys, "-c", config, "publish", "--json")
    assert status == 1  # partial: one mirror failed, the rest is done
    results = {m["name"]: m for m in report["mirrors"]}
    assert set(results) == {"dir-a", "dir-b", "s3-moto", "s3-down"}
    for name in ("dir-a", "dir-b", "s3-moto"):
        assert (
            results[name]["ok"] and results[name]["uploaded"] > 30 and results[name]["version"] == 1
        )
        assert results[name]["error"] is None
    assert not results["s3-down"]["ok"] and results["s3-down"]["error"]
    assert "s3-down" in err

    objects = boto3.client("s3", endpoint_url=moto_endpoint).list_objects_v2(Bucket=bucket)
    assert any(item["Key"] == "current" for item in objects["Contents"])

    again = cli(
        capsys, "-c", config, "publish", "--json", "--mirror", "dir-a", "--mirror", "s3-moto"
    )
    assert again[0] == 0
    assert [(m["name"], m["uploaded"]) for m in again[1]["mirrors"]] == [
        ("dir-a", 0),
        ("s3-moto", 0),
    ]
    assert cli(capsys, "-c", config, "publish", "--mirror", "nope")[0] == 2

    for name in ("a", "b"):
        status, verified, _ = cli(
            capsys, "verify", base + name + "/", "--key", str(tmp_path / "keys" / "mirror.pub"),
            "--json",
        )  # fmt: skip
        assert status == 0 and verified["ok"], verified

    status, report, _ = cli(capsys, "-c", config, "status", "--json")
    assert "403 Forbidden" in {m["name"]: m for m in report["mirrors"]}["s3-moto"]["error"]
    assert cli(capsys, "-c", config, "mirrors", "setup", "s3-moto", "--provider", "minio")[0] == 0
    status, report, _ = cli(capsys, "-c", config, "status", "--json")
    states = {m["name"]: m for m in report["mirrors"]}
    assert states["dir-a"]["reachable"] and states["dir-a"]["version"] == 1
    assert states["dir-a"]["stale"] is False and states["dir-a"]["age_s"] is not None
    assert states["s3-moto"]["version"] == 1, states["s3-moto"]
    assert not states["s3-down"]["reachable"]
    assert status == 1  # one mirror unreachable


def test_status_reports_a_forbidden_mirror_as_not_public(
    tmp_path: Path,
    fetched_store: Path,
    web_root: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = web_root
    tables = mirror_table(
        "private", type="directory", path=str(root / "private"), public_url=base + "private/"
    ) + mirror_table("empty", type="directory", path=str(root / "e"), public_url=base + "e/")
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    cli(capsys, "-c", config, "build")
    assert cli(capsys, "-c", config, "publish", "--mirror", "private")[0] == 0
    status, report, _ = cli(capsys, "-c", config, "status", "--json")
    states = {m["name"]: m for m in report["mirrors"]}
    assert status == 1
    assert "403 Forbidden" in states["private"]["error"]
    assert states["private"]["reachable"] and not states["private"]["public"]  # it answers
    assert states["empty"]["version"] is None and states["empty"]["stale"]
    assert states["empty"]["public"]
    _, _, err = cli(capsys, "-c", config, "status")
    assert "private: NOT PUBLIC" in err and "mirrors setup" not in err  # a folder: no setup
    assert "let the web server serving" in err and states["private"]["fix"]


@pytest.mark.slow
def test_a_damaged_mirror_is_repaired_with_a_warning_and_status_full_names_what_differs(
    tmp_path: Path,
    fetched_store: Path,
    web_root: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = web_root
    tables = mirror_table("dir-a", type="directory", path=str(root / "a"), public_url=base + "a/")
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    assert cli(capsys, "-c", config, "build")[0] == 0
    assert cli(capsys, "-c", config, "publish")[0] == 0

    (root / "a" / "index.html").write_text("<p>forged</p>", encoding="utf-8")
    status, report, err = cli(capsys, "-c", config, "status", "--full", "--json")
    assert status == 1 and report["mirrors"][0]["tampered"] == ["index.html"]
    status, _, err = cli(capsys, "-c", config, "status", "--full")
    assert status == 1 and "1 tampered: index.html" in err

    (root / "a" / "manifests" / "1.json").write_bytes(b"{}")  # unreadable: badly signed
    status, report, err = cli(capsys, "-c", config, "publish")
    assert status == 0
    assert "dir-a: live manifest 1 taken as empty" in err  # seen without --json
    status, report, _ = cli(capsys, "-c", config, "status", "--full", "--json")
    assert status == 0 and report["mirrors"][0]["tampered"] == []


@pytest.mark.usefixtures("aws_env")
def test_setup_creates_a_public_bucket_and_missing_credentials_are_named(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    bucket = new_bucket_name()
    tables = mirror_table(
        "fresh", type="s3", bucket=bucket, endpoint_url=moto_endpoint, region="us-east-1",
        public_url=f"{moto_endpoint}/{bucket}/",
    )  # fmt: skip
    config = str(write_config(tmp_path, "http://127.0.0.1:9/", tables))
    assert cli(capsys, "-c", config, "mirrors", "setup", "fresh", "--provider", "minio")[0] == 0
    assert cli(capsys, "-c", config, "mirrors", "setup", "fresh", "--provider", "minio")[0] == 0
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    assert "s3:GetObject" in s3.get_bucket_policy(Bucket=bucket)["Policy"]

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "super-secret-value")
    assert cli(capsys, "-c", config, "build")[0] == 0  # an empty edition is still one
    status, _, err = cli(capsys, "-c", config, "publish")
    assert status in (1, 2)
    assert "fresh" in err and "super-secret-value" not in err


@pytest.mark.slow
def test_retire_empties_a_mirror_and_drops_it_from_the_list(
    tmp_path: Path,
    fetched_store: Path,
    web_root: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = web_root
    tables = mirror_table(
        "old", type="directory", path=str(root / "old"), public_url=base + "old/"
    ) + mirror_table("new", type="directory", path=str(root / "new"), public_url=base + "new/")
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    cli(capsys, "-c", config, "build")
    cli(capsys, "-c", config, "publish")
    assert (root / "old" / "index.html").exists()
    assert "old" in (tmp_path / "edition" / "mirrors.json").read_text()
    assert cli(capsys, "-c", config, "mirrors", "retire", "old")[0] == 0
    assert not any(p.is_file() and not p.name.startswith(".") for p in (root / "old").rglob("*"))
    cli(capsys, "-c", config, "build")
    assert '"old"' not in (tmp_path / "edition" / "mirrors.json").read_text()
    status, report, _ = cli(capsys, "-c", config, "publish", "--json")
    assert status == 0 and [m["name"] for m in report["mirrors"]] == ["new"]
    assert not (root / "old" / "index.html").exists()


@pytest.mark.slow
def test_sync_fetches_builds_publishes_and_mails_when_due(
    tmp_path: Path,
    web_root: tuple[Path, str],
    newsroom: RunningNewsroom,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, _ = web_root
    config = sync_config(tmp_path, newsroom, web_root)
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "a-long-enough-unsubscribe-secret")
    assert cli(capsys, "-c", config, "subscribers", "add", "reader@example.org")[0] == 0
    status, report, _ = cli(capsys, "-c", config, "sync", "--json")
    assert status == 0 and report["ok"], report
    assert report["fetch"]["new"] == 5 and report["build"]["version"] == 1
    assert report["publish"]["mirrors"][0]["ok"]
    assert report["digest"]["sent"] == 1  # no digest yet: due at once
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    status, report, _ = cli(capsys, "-c", config, "sync", "--json")
    assert status == 0 and report["build"]["new_version"] is False
    assert report["publish"]["mirrors"][0]["uploaded"] == 0
    assert report["digest"] is None  # min_interval_h has not passed
    assert (root / "s" / "current").read_text() == "1\n"


def test_a_disabled_mirror_is_neither_published_nor_checked(
    tmp_path: Path,
    fetched_store: Path,
    web_root: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = web_root
    tables = (
        mirror_table("on", type="directory", path=str(root / "on"), public_url=base + "on/")
        + mirror_table("off", type="directory", path=str(root / "off"), public_url=base + "off/")
        + "enabled = false\n"
    )
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    assert cli(capsys, "-c", config, "build")[0] == 0

    status, report, err = cli(capsys, "-c", config, "publish", "--json")
    assert status == 0 and [m["name"] for m in report["mirrors"]] == ["on"]
    assert report["mirrors"][0]["ok"] and (root / "on" / "current").read_text() == "1\n"
    assert "off: skipped (enabled = false)" in err
    status, report, err = cli(capsys, "-c", config, "publish", "--json", "--mirror", "off")
    assert status == 0 and report["mirrors"] == []  # named, still not written to
    assert "off: skipped (enabled = false)" in err
    assert not (root / "off").exists()

    status, report, err = cli(capsys, "-c", config, "status", "--json")
    assert status == 0  # an empty disabled mirror would be unreachable/stale if checked
    assert [m["name"] for m in report["mirrors"]] == ["on"]
    assert report["mirrors"][0]["version"] == 1 and not report["mirrors"][0]["stale"]
    assert "off:" not in err


def test_publish_flags_reach_every_mirror_gc_included(
    tmp_path: Path,
    fetched_store: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "www"
    tables = mirror_table("on", type="directory", path=str(folder), public_url="https://m.org/")
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    assert cli(capsys, "-c", config, "build")[0] == 0
    assert cli(capsys, "-c", config, "publish")[0] == 0
    (folder / "stray.html").write_bytes(b"left by hand")

    plain = cli(capsys, "-c", config, "publish", "--json")[1]["mirrors"][0]
    assert plain["requests"] == 3  # current, pending, manifest: the mirror serves it
    status, report, _ = cli(capsys, "-c", config, "publish", "--repair", "--json")
    assert status == 0 and report["mirrors"][0]["deleted"] == 0
    assert report["mirrors"][0]["requests"] > 30  # --repair read every file back
    assert (folder / "stray.html").exists()  # only --gc lists the mirror
    status, report, _ = cli(capsys, "-c", config, "publish", "--gc", "--json")
    assert status == 0 and report["mirrors"][0]["deleted"] == 1
    assert not (folder / "stray.html").exists()


class Clock:
    """Stands in for `mirror.cli.utc_now`, the one clock every command reads."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.slow
def test_sync_mails_again_once_min_interval_has_passed_since_the_last_digest(
    tmp_path: Path,
    web_root: tuple[Path, str],
    newsroom: RunningNewsroom,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = DEFAULT_REFERENCE + timedelta(hours=6)
    clock = Clock(start)
    monkeypatch.setattr("mirror.cli.utc_now", clock)
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "a-long-enough-unsubscribe-secret")
    config = sync_config(tmp_path, newsroom, web_root, "min_interval_h = 1\n")
    assert cli(capsys, "-c", config, "subscribers", "add", "reader@example.org")[0] == 0
    outbox = tmp_path / "outbox"
    mailed: set[Path] = set()

    def sync_at(after: timedelta) -> dict:  # type: ignore[type-arg]
        clock.now = start + after
        status, report, _ = cli(capsys, "-c", config, "sync", "--json")
        assert status == 0 and report["ok"], report
        return report

    def new_mail() -> str:
        (found,) = set(outbox.glob("*.eml")) - mailed
        mailed.add(found)
        message = email.message_from_bytes(found.read_bytes(), policy=email.policy.default)
        return f"{message['Subject']}\n{message.get_content()}"

    assert sync_at(timedelta(0))["digest"]["welcomed"] == 1
    first = new_mail()  # added by ops: their first message is the welcome, with the 5
    assert first.startswith("Welcome to ") and first.count("Read on a mirror:") == 5
    # the newsroom's server is idle between runs: mutating it from here is safe
    flood = newsroom.newsroom.add_article(title="Flood barrier finished a year late", lang="en")
    report = sync_at(timedelta(hours=1, seconds=-1))
    assert report["fetch"]["new"] == 1 and report["build"]["new_version"]
    assert report["digest"] is None  # published, not mailed: an hour has not passed
    assert set(outbox.glob("*.eml")) == mailed

    assert sync_at(timedelta(hours=1))["digest"]["sent"] == 1
    text = new_mail()
    assert "1 new article" in text and flood.title in text

    buses = newsroom.newsroom.add_article(title="Bus depot to close in spring", lang="en")
    assert sync_at(timedelta(hours=2, seconds=-1))["digest"] is None  # from the LAST digest
    assert sync_at(timedelta(hours=2))["digest"]["sent"] == 1
    text = new_mail()
    assert "1 new article" in text and buses.title in text and flood.title not in text
