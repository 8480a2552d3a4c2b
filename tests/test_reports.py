"""Reports that add up: the build's and the publish's counts in one vocabulary (files in
the edition, written, uploaded, deleted, pointers written), in --json and in the human
line; one refused recipient is "1 failed" or "1 deferred", never both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.store import Store

from cli_configs import cli, mirror_table, with_store, write_config
from digest_rig import subscribe, with_smtp
from moto_server import create_bucket
from smtp_servers import Recorder, smtp_server


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
def test_build_and_publish_counts_add_up(
    tmp_path: Path,
    fetched_store: Path,
    web_root: tuple[Path, str],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = web_root
    bucket = create_bucket(moto_endpoint)
    tables = mirror_table(
        "dir", type="directory", path=str(root / "d"), public_url=base + "d/"
    ) + mirror_table(
        "s3", type="s3", bucket=bucket, endpoint_url=moto_endpoint, region="us-east-1",
        public_url=f"{moto_endpoint}/{bucket}/",
    )  # fmt: skip
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))

    status, build, err = cli(capsys, "-c", config, "build", "--json")
    assert status == 0
    held = build["files_in_edition"]
    assert build["files_written"] == held and build["pointers_written"] == 1
    assert build["files_deleted"] == 0
    deprecated_build_keys_agree(build)
    # what `files` leaves out: manifest 1, its signature and one part per month
    manifests = [p for p in (Path(config).parent / "edition" / "manifests").rglob("*")]
    assert build["files"] + sum(p.is_file() for p in manifests) == held
    assert (
        f"build: new version 1: {build['articles']} articles, {held} files in the edition "
        f"({build['bytes_in_edition'] / 1e6:.1f} MB), {held} files written, 0 files deleted, "
        "1 pointer written" in err
    )
    first = publish(capsys, config)
    for name in ("dir", "s3"):
        # every file in the edition uploaded once; `pending` and `current` apart
        assert (first[name]["files_uploaded"], first[name]["pointers_written"]) == (held, 2)
        assert first[name]["pointer_writes"] == 3  # pending removed after current: a call too

    status, again, err = cli(capsys, "-c", config, "build", "--json")
    assert (again["files_written"], again["pointers_written"], again["files_deleted"]) == (0,) * 3
    assert "build: no change, version 1:" in err
    assert "0 files written, 0 files deleted, 0 pointers written" in err
    assert all(
        m["files_uploaded"] == m["pointers_written"] == 0 for m in publish(capsys, config).values()
    )

    hide_one_article(config, capsys)
    status, changed, err = cli(capsys, "-c", config, "build", "--json")
    assert changed["version"] == 2 and changed["files_deleted"] >= 2  # the page and .minisig
    assert changed["files_in_edition"] < held
    deprecated_build_keys_agree(changed)
    for result in publish(capsys, config).values():
        assert result["files_uploaded"] == changed["files_written"]
        assert result["files_deleted"] == changed["files_deleted"]
        assert result["pointers_written"] == 2


def deprecated_build_keys_agree(build: dict) -> None:  # type: ignore[type-arg]
    """The keys kept one release (README: deprecated): `removed` is `files_deleted`,
    `written` counts the pointers too, `files`/`bytes` leave out the manifests."""
    assert build["removed"] == build["files_deleted"]
    assert build["written"] == build["files_written"] + build["pointers_written"]
    assert build["files"] < build["files_in_edition"]
    assert build["bytes"] < build["bytes_in_edition"]


def publish(capsys: pytest.CaptureFixture[str], config: str) -> dict[str, dict]:  # type: ignore[type-arg]
    """`mirror publish --json`, each mirror's entry by name; checks each human line and
    that the deprecated keys equal the new ones."""
    status, report, err = cli(capsys, "-c", config, "publish", "--json")
    assert status == 0, err
    results = {m["name"]: m for m in report["mirrors"]}
    for name, m in results.items():
        assert (m["uploaded"], m["deleted"]) == (m["files_uploaded"], m["files_deleted"])
        assert m["pointer_writes"] >= m["pointers_written"]
        files = f"{m['files_uploaded']} file{'' if m['files_uploaded'] == 1 else 's'}"
        deleted = f"{m['files_deleted']} file{'' if m['files_deleted'] == 1 else 's'}"
        pointers = f"{m['pointers_written']} pointer{'' if m['pointers_written'] == 1 else 's'}"
        assert (
            f"publish {name}: version {m['version']}: {files} uploaded, "
            f"{deleted} deleted, {pointers} written" in err
        )
    return results


def hide_one_article(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Hide the first published article."""
    with Store(Path(config).parent / "state" / "mirror.db") as store:
        article = next(a for a in store.list_articles() if a["path"])
    assert cli(capsys, "-c", config, "articles", "hide", str(article["id"]))[0] == 0


def test_one_refused_and_one_deferred_recipient_are_told_apart(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = Recorder(
        refuse={
            "gone@example.org": "550 5.1.1 no such user",
            "busy@example.org": "450 4.2.1 mailbox busy, try later",
        }
    )
    with smtp_server(handler) as server:
        with_smtp(built, server.port)
        built.write_text(built.read_text().replace("[digest]\n", "[digest]\nretries = 0\n", 1))
        subscribe(
            built, ("a@example.org", "any"), ("gone@example.org", "any"),
            ("busy@example.org", "any"),
        )  # fmt: skip
        capsys.readouterr()
        status = send_with_err(built, capsys)
        assert status.code == 1  # deferred or failed: the run was partial (README's exit table)
        report = status.report
        assert report["sent"] == 1 and report["deferred"] == 1
        assert ["550" in f["reason"] for f in report["failed"]] == [True]
        assert ["450" in d["reason"] for d in report["deferrals"]] == [True]
        gone, busy = report["failed"][0]["subscriber"], report["deferrals"][0]["subscriber"]
        assert gone != busy
        line = next(x for x in status.err.splitlines() if "digest 1:" in x)
        assert line.endswith(
            "digest 1: 1 sent (1 of them welcomes), 0 skipped, 1 failed, "
            "1 deferred (will be retried at the next run)"
        )
        # the next run tries the deferred one again, and only it
        handler.refuse.pop("busy@example.org")
        again = send_with_err(built, capsys)
        assert again.code == 0 and again.report["sent"] == 1 and again.report["retried"] == 1
        assert again.report["failed"] == [] and again.report["deferrals"] == []
        assert sorted(r.rcpt_tos[0] for r in handler.received) == [
            "a@example.org",
            "busy@example.org",
        ]


class Sent:
    def __init__(self, code: int, report: dict, err: str) -> None:  # type: ignore[type-arg]
        self.code, self.report, self.err = code, report, err


def send_with_err(config: Path, capsys: pytest.CaptureFixture[str]) -> Sent:
    """`digest send --json`: its exit status, its report and its log lines."""
    code = run(["-c", str(config), "digest", "send", "--json"])
    out = capsys.readouterr()
    return Sent(code, json.loads(out.out), out.err)
