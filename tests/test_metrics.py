"""`sync --metrics` and `status --metrics`: Prometheus text format (0.0.4) for
node_exporter's textfile collector, read back with Prometheus' own parser
(prometheus_client) after real runs (the sample newsroom, moto's S3 server, a folder
mirror served over HTTP, a dead mirror)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mirror import metrics
from mirror.metrics import Metric, Sample, StageOutcome, render
from mirror.newsroom import RunningNewsroom

from cli_configs import cli, mirror_table, sync_config, with_root, write_config
from moto_server import create_bucket
from servers import closed_port

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parsed(text: str) -> tuple[Series, dict[str, tuple[str, str]]]:
    """Every sample by (name, sorted labels), and each family's (type, help)."""
    series: Series = {}
    families: dict[str, tuple[str, str]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = (family.type, family.documentation)
        for sample in family.samples:
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series, families


def test_label_values_and_help_are_escaped_and_parse_back() -> None:
    odd = 'a "quoted"\\back\nslash'
    text = render(
        [
            Metric("m_one", "help with \\ and\nnewline", "gauge", (Sample((("k", odd),), 1.5),)),
            Metric("m_empty", "no samples: left out", "gauge", ()),
            Metric("m_two", "plain", "gauge", (Sample((), 3.0), Sample((("x", "y"),), 2**40))),
        ]
    ).decode()
    assert text.count("\n") == len(text.splitlines()) == 7  # one line per sample, HELP, TYPE
    assert '{k="a \\"quoted\\"\\\\back\\nslash"} 1.5' in text
    assert "m_empty" not in text and "m_two 3\n" in text and 'x="y"} 1099511627776' in text
    series, families = parsed(text)
    assert series[("m_one", (("k", odd),))] == 1.5
    assert families["m_one"] == ("gauge", "help with \\ and\nnewline")
    assert render([]) == b""


def test_values_are_spelt_as_the_format_wants() -> None:
    assert [metrics.format_value(v) for v in (0, 7.0, 0.25, float("nan"), float("inf"))] == [
        "0", "7", "0.25", "NaN", "+Inf",
    ]  # fmt: skip
    assert metrics.format_value(float("-inf")) == "-Inf"


def test_the_file_is_written_whole_with_no_temporary_left(tmp_path: Path) -> None:
    target = tmp_path / "textfile" / "mirror.prom"
    target.parent.mkdir()  # the collector's folder: never made by mirror
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    metrics.write_metrics(target, metrics.run_metrics("sync", finished_at=at, exit_code=2))
    series, _ = parsed(target.read_text())
    labels = (("command", "sync"),)
    assert series[("mirror_last_run_exit_code", labels)] == 2
    assert series[("mirror_last_run_timestamp_seconds", labels)] == at.timestamp()
    assert [p.name for p in target.parent.iterdir()] == ["mirror.prom"]
    assert target.stat().st_mode & 0o777 == 0o644  # the collector runs as another user


def test_a_sync_report_gives_the_same_bytes_twice() -> None:
    from mirror.fetch.stage import FetchReport
    from mirror.pipeline import SyncReport

    report = SyncReport(FetchReport(new=2))
    stages = [StageOutcome("fetch", 1.25, True)]
    at = datetime(2026, 1, 2, tzinfo=UTC)
    first = render(metrics.sync_metrics(report, stages, finished_at=at, exit_code=1))
    assert first == render(metrics.sync_metrics(report, stages, finished_at=at, exit_code=1))
    series, _ = parsed(first.decode())
    assert series[("mirror_stage_duration_seconds", (("command", "sync"), ("stage", "fetch")))] == (
        1.25
    )


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
def test_sync_and_status_metrics_match_a_real_run(
    tmp_path: Path,
    web_root: tuple[Path, str],
    newsroom: RunningNewsroom,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, _ = web_root
    bucket, dead = create_bucket(moto_endpoint), closed_port()
    config = sync_config(tmp_path, newsroom, web_root)
    extra = mirror_table(
        "s3", type="s3", bucket=bucket, endpoint_url=moto_endpoint, region="us-east-1",
        public_url=f"{moto_endpoint}/{bucket}/",
    ) + mirror_table(
        "down", type="s3", bucket="gone", region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{dead}", public_url=f"http://127.0.0.1:{dead}/gone/",
    )  # fmt: skip
    Path(config).write_text(Path(config).read_text() + extra)
    root_key = with_root(config, tmp_path)
    assert cli(capsys, "-c", config, "keys", "certify", "--root-key", root_key)[0] == 0
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "a-long-enough-unsubscribe-secret")
    assert cli(capsys, "-c", config, "subscribers", "add", "reader@example.org")[0] == 0
    prom = tmp_path / "textfile" / "mirror-sync.prom"
    prom.parent.mkdir()

    status, report, _ = cli(capsys, "-c", config, "sync", "--json", "--metrics", str(prom))
    assert status == 1  # the dead mirror
    text = prom.read_text()
    series, families = parsed(text)
    sync = ("command", "sync")

    def at(name: str, *labels: tuple[str, str]) -> float:
        return series[(name, tuple(sorted((sync, *labels))))]

    assert at("mirror_last_run_exit_code") == 1
    assert abs(at("mirror_last_run_timestamp_seconds") - datetime.now(UTC).timestamp()) < 600
    assert at("mirror_articles_fetched") == report["fetch"]["new"] == 5
    assert at("mirror_articles_failed") == 0
    assert at("mirror_digest_sent") == report["digest"]["sent"] == 1
    assert at("mirror_digest_failed") == 0
    assert at("mirror_digest_deferred") == report["digest"]["deferred"] == 0
    stages = {"fetch": 1, "build": 1, "publish": 0, "digest": 1}
    for stage, ok in stages.items():
        assert at("mirror_stage_ok", ("stage", stage)) == ok, stage
        assert at("mirror_stage_duration_seconds", ("stage", stage)) >= 0
    assert {labels for name, labels in series if name == "mirror_stage_ok"} == {
        tuple(sorted((sync, ("stage", stage)))) for stage in stages
    }
    for name, up, version in (("site", 1, 1), ("s3", 1, 1), ("down", 0, 0)):
        assert at("mirror_mirror_up", ("mirror", name)) == up, name
        assert at("mirror_mirror_stale", ("mirror", name)) == 1 - up, name
        assert at("mirror_mirror_version", ("mirror", name)) == version, name
    # the file counts carry sync's --json names (README: Report words)
    build = report["build"]
    for key in ("files_in_edition", "files_written", "files_deleted", "pointers_written"):
        assert at(f"mirror_build_{key}") == build[key], key
    assert at("mirror_build_files_in_edition") > 0
    for mirror in report["publish"]["mirrors"]:
        for key in ("files_uploaded", "files_deleted", "pointers_written"):
            assert at(f"mirror_mirror_{key}", ("mirror", mirror["name"])) == mirror[key], key
    assert at("mirror_mirror_files_uploaded", ("mirror", "site")) == build["files_in_edition"]
    expires = datetime.fromisoformat(report["keys"]["edition_expires"]).timestamp()
    assert at("mirror_keys_expiry_timestamp_seconds", ("copy", "edition")) == expires
    for name in ("site", "s3"):
        key = ("mirror_keys_expiry_timestamp_seconds", ("copy", "mirror"), ("mirror", name))
        assert at(*key) == expires  # type: ignore[arg-type]
    assert all(kind == "gauge" and help_text for kind, help_text in families.values())
    for private in ("example.org", "127.0.0.1", bucket, "reader", "secret"):
        assert private not in text, private

    assert cli(capsys, "-c", config, "mirrors", "setup", "s3")[0] == 0  # readers may read it
    status, _, _ = cli(capsys, "-c", config, "status", "--metrics", str(tmp_path / "s.prom"))
    assert status == 1
    series, _ = parsed((tmp_path / "s.prom").read_text())
    sync = ("command", "status")
    assert at("mirror_last_run_exit_code") == 1
    for name, up in (("site", 1), ("s3", 1), ("down", 0)):
        assert at("mirror_mirror_up", ("mirror", name)) == up, name
        assert at("mirror_mirror_tampered", ("mirror", name)) == 0, name
    assert at("mirror_mirror_stale", ("mirror", "site")) == 0
    assert at("mirror_mirror_version", ("mirror", "s3")) == 1
    assert 0 <= at("mirror_mirror_age_seconds", ("mirror", "site")) < 600
    assert ("mirror_mirror_age_seconds", (("command", "status"), ("mirror", "down"))) not in series
    key = ("mirror_keys_expiry_timestamp_seconds", ("copy", "mirror"), ("mirror", "site"))
    assert at(*key) == expires  # type: ignore[arg-type]

    index = next((root / "s" / "articles").rglob("*.html"))
    index.write_bytes(index.read_bytes().replace(b"</body>", b"<script>x()</script></body>"))
    assert (
        cli(capsys, "-c", config, "status", "--full", "--metrics", str(tmp_path / "s.prom"))[0] == 1
    )
    series, _ = parsed((tmp_path / "s.prom").read_text())
    assert at("mirror_mirror_tampered", ("mirror", "site")) == 1
    assert at("mirror_mirror_tampered", ("mirror", "s3")) == 0


def test_a_run_stopped_by_a_config_error_still_writes_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mirror.toml"
    config.write_text("[publication]\nnmae = 'x'\n")
    prom = tmp_path / "sync.prom"
    assert cli(capsys, "-c", str(config), "sync", "--metrics", str(prom))[0] == 2
    series, _ = parsed(prom.read_text())
    assert series[("mirror_last_run_exit_code", (("command", "sync"),))] == 2
    assert not any(name.startswith("mirror_stage") for name, _ in series)


def test_a_metrics_file_that_cannot_be_written_is_said_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, "http://127.0.0.1:9/", ""))
    prom = tmp_path / "taken"
    prom.mkdir()  # a folder where the file should go: the rename fails
    assert cli(capsys, "-c", config, "status", "--metrics", str(tmp_path / "ok.prom"))[0] == 0
    status, _, err = cli(capsys, "-c", config, "status", "--metrics", str(prom))
    assert status == 1 and f"metrics not written to {prom}" in err
    assert not list(tmp_path.glob(".taken.*"))  # no temporary left behind


def test_a_missing_folder_is_named_and_never_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, "http://127.0.0.1:9/", ""))
    prom = tmp_path / "no" / "such" / "status.prom"
    status, _, err = cli(capsys, "-c", config, "status", "--metrics", str(prom))
    assert status == 1 and not (tmp_path / "no").exists()
    assert f"metrics not written to {prom}: no such folder {prom.parent}" in err


def test_a_metrics_file_not_ending_in_prom_is_written_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, "http://127.0.0.1:9/", ""))
    status, _, err = cli(capsys, "-q", "-c", config, "status", "--metrics", str(tmp_path / "s.txt"))
    assert status == 0 and (tmp_path / "s.txt").is_file()
    assert "s.txt does not end in .prom: node_exporter's textfile collector reads only" in err
    cli(capsys, "-c", config, "status", "--metrics", str(tmp_path / "s.prom"))
    assert "does not end in .prom" not in capsys.readouterr().err


def test_the_exit_code_help_lists_every_status_and_the_readme_alerts_on_failing_runs() -> None:
    help_text = metrics.run_metrics("sync", finished_at=datetime.now(UTC), exit_code=130)[1].help
    for status in ("0 done", "1 partly", "2 usage", "3 verify", "130 SIGINT", "143 SIGTERM"):
        assert status in help_text
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    rules = readme.split("groups:\n  - name: mirror", 1)[1].split("```", 1)[0]
    assert "expr: mirror_last_run_exit_code >= 2" in rules
    assert "`copy` (`edition`: sync only" in readme
