"""Prometheus text-format metrics (exposition format 0.0.4) for node_exporter's textfile
collector: `mirror sync --metrics FILE` and `mirror status --metrics FILE`.

The core is pure: a sync's or a status check's report in, `Metric`s out, and `render`
turns them into the file's bytes (same metrics, same bytes). `write_metrics` is the one
edge: an atomic write (mirror.atomic), so the collector never reads half a file.

Every series carries `command="sync"` or `command="status"`: the two commands write
their own files into the collector's folder, and the same mirror's metrics from both
never collide. Labels hold mirror names, stage names and commands only: never an
address, a URL or a secret.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mirror.atomic import write_atomic

if TYPE_CHECKING:
    from mirror.pipeline import SyncReport
    from mirror.publish.publisher import MirrorResult
    from mirror.publish.status import MirrorStatus

CONTENT_TYPE = "text/plain; version=0.0.4"  # what the file holds, for a server that serves it
Labels = tuple[tuple[str, str], ...]
# the families both commands write: one HELP text each (the collector refuses two)
HELP = {
    "mirror_mirror_up": "1 when the mirror answered (sync: its publish succeeded), else 0.",
    "mirror_mirror_stale": "1 when the mirror serves an older version than the local "
    "edition (sync: or its publish failed), else 0.",
    "mirror_mirror_version": "The manifest version the mirror serves (0: none known).",
    "mirror_keys_expiry_timestamp_seconds": "When keys.json expires (Unix time): renew it "
    "with `mirror keys certify` before.",
}


@dataclass(frozen=True)
class Sample:
    labels: Labels
    value: float


@dataclass(frozen=True)
class Metric:
    """One metric family: its name, HELP text, TYPE and samples."""

    name: str
    help: str
    type: Literal["gauge", "counter", "untyped"]
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class StageOutcome:
    """How one stage of a sync went: its wall time and whether it did all it should."""

    stage: str  # reach | fetch | build | publish | spawn | digest | mailin
    seconds: float
    ok: bool


def escape_label_value(value: str) -> str:
    """A label value as the format spells it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text as the format spells it: backslash and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample's value: integers without a fraction, NaN and the infinities by name."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def render(metrics: Iterable[Metric]) -> bytes:
    """The metrics in the text format, in the order given; a family with no sample is
    left out (HELP and TYPE alone would say nothing)."""
    lines: list[str] = []
    for metric in metrics:
        if not metric.samples:
            continue
        lines.append(f"# HELP {metric.name} {escape_help(metric.help)}")
        lines.append(f"# TYPE {metric.name} {metric.type}")
        lines += [_sample_line(metric.name, sample) for sample in metric.samples]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _sample_line(name: str, sample: Sample) -> str:
    labels = ",".join(f'{key}="{escape_label_value(value)}"' for key, value in sample.labels)
    return (
        f"{name}{{{labels}}} {format_value(sample.value)}"
        if labels
        else (f"{name} {format_value(sample.value)}")
    )


def write_metrics(path: Path, metrics: Iterable[Metric]) -> None:
    """Write the metrics file atomically (the collector reads only `*.prom`; the
    temporary file ends in `.tmp`). Its folder must exist: a typo in the path makes no
    folder nobody reads (FileNotFoundError naming the folder)."""
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path.parent))
    write_atomic(path, render(metrics))


def _gauge(name: str, help_text: str, samples: Iterable[tuple[Labels, float]]) -> Metric:
    return Metric(name, help_text, "gauge", tuple(Sample(lb, v) for lb, v in samples))


def _timestamp(at: datetime) -> float:
    return round(at.timestamp(), 3)


def run_metrics(command: str, *, finished_at: datetime, exit_code: int) -> list[Metric]:
    """When the command last ran and how it exited: written even when it failed early."""
    labels: Labels = (("command", command),)
    return [
        _gauge(
            "mirror_last_run_timestamp_seconds",
            "When the command last finished (Unix time).",
            [(labels, _timestamp(finished_at))],
        ),
        _gauge(
            "mirror_last_run_exit_code",
            "The command's exit status: 0 done, 1 partly failed, 2 usage/config, 3 verify, "
            "130 SIGINT, 143 SIGTERM.",
            [(labels, exit_code)],
        ),
    ]


def sync_metrics(
    report: SyncReport,
    stages: Sequence[StageOutcome],
    *,
    finished_at: datetime,
    exit_code: int,
) -> list[Metric]:
    """A finished sync's metrics: each stage's time and result, articles, digest, each
    mirror's publish (up, stale, version), keys.json's expiry, and the run itself."""
    cmd = ("command", "sync")
    return [
        *_stage_metrics(stages, cmd),
        *_fetch_metrics(report, cmd),
        *_digest_metrics(report, cmd),
        *_build_metrics(report, cmd),
        *_publish_metrics(report, cmd),
        *_sync_keys_metrics(report, cmd),
        *run_metrics("sync", finished_at=finished_at, exit_code=exit_code),
    ]


def _stage_metrics(stages: Sequence[StageOutcome], cmd: tuple[str, str]) -> list[Metric]:
    return [
        _gauge(
            "mirror_stage_duration_seconds",
            "Wall time of each stage of the last sync.",
            [((cmd, ("stage", s.stage)), round(s.seconds, 3)) for s in stages],
        ),
        _gauge(
            "mirror_stage_ok",
            "1 when the stage of the last sync did all it should, else 0.",
            [((cmd, ("stage", s.stage)), int(s.ok)) for s in stages],
        ),
    ]


def _fetch_metrics(report: SyncReport, cmd: tuple[str, str]) -> list[Metric]:
    fetched = report.fetch.new + report.fetch.changed
    return [
        _gauge(
            "mirror_articles_fetched",
            "Articles the last sync fetched new or changed.",
            [((cmd,), fetched)],
        ),
        _gauge(
            "mirror_articles_failed",
            "Article and feed URLs the last sync failed to fetch.",
            [((cmd,), len(report.fetch.failed))],
        ),
    ]


def _digest_metrics(report: SyncReport, cmd: tuple[str, str]) -> list[Metric]:
    """Only when the sync sent a digest (or tried: an error counts as failed)."""
    digest = report.digest
    if digest is None and not report.error:
        return []
    sent = digest.sent if digest else 0
    failed = len(digest.failed) if digest else 0
    deferred = digest.deferred if digest else 0
    return [
        _gauge("mirror_digest_sent", "Digests the last sync sent.", [((cmd,), sent)]),
        _gauge(
            "mirror_digest_failed",
            "Digests the last sync failed to send (1 when the digest could not run at all).",
            [((cmd,), failed if digest else 1)],
        ),
        _gauge(
            "mirror_digest_deferred",
            "Digests the last sync deferred to the next run (a 4xx, or no connection).",
            [((cmd,), deferred)],
        ),
    ]


BUILD_COUNTS = {  # the build's --json keys (README: Report words) and their HELP
    "files_in_edition": "Files in the edition the last sync built (the pointers apart).",
    "files_written": "Files the last sync's build wrote into its folder.",
    "files_deleted": "Files the last sync's build deleted from its folder.",
    "pointers_written": "Pointers (current, pending) the last sync's build wrote.",
}
MIRROR_COUNTS = {  # each mirror's publish --json keys and their HELP
    "files_uploaded": "Files in the edition the last sync uploaded to the mirror.",
    "files_deleted": "Files in the edition the last sync deleted from the mirror.",
    "pointers_written": "Pointers (current, pending) the last sync wrote to the mirror.",
}


def _build_metrics(report: SyncReport, cmd: tuple[str, str]) -> list[Metric]:
    """The build's counts, named as in its --json; only when it ran."""
    if report.build is None:
        return []
    counts = report.build.to_json()
    return [
        _gauge(f"mirror_build_{key}", help_text, [((cmd,), counts[key])])
        for key, help_text in BUILD_COUNTS.items()
    ]


def _mirror_counts(rows: Sequence[tuple[Labels, MirrorResult]]) -> list[Metric]:
    """Each mirror's publish counts, named as in its --json."""
    documents = [(labels, result.to_json()) for labels, result in rows]
    return [
        _gauge(f"mirror_mirror_{key}", help_text, [(lb, doc[key]) for lb, doc in documents])
        for key, help_text in MIRROR_COUNTS.items()
    ]


def _publish_metrics(report: SyncReport, cmd: tuple[str, str]) -> list[Metric]:
    edition = report.build.version if report.build else 0
    rows = [((cmd, ("mirror", r.name)), r) for r in report.mirrors]
    return [
        _gauge(
            "mirror_mirror_up",
            HELP["mirror_mirror_up"],
            [(labels, int(r.ok)) for labels, r in rows],
        ),
        _gauge(
            "mirror_mirror_stale",
            HELP["mirror_mirror_stale"],
            [(labels, int(not r.ok or r.version < edition)) for labels, r in rows],
        ),
        _gauge(
            "mirror_mirror_version",
            HELP["mirror_mirror_version"],
            [(labels, r.version) for labels, r in rows],
        ),
        *_mirror_counts(rows),
    ]


def _sync_keys_metrics(report: SyncReport, cmd: tuple[str, str]) -> list[Metric]:
    """keys.json's expiry in the edition (copy="edition") and on each mirror."""
    keys = report.keys
    if keys is None:
        return []
    samples: list[tuple[Labels, float]] = []
    if keys.edition is not None:
        samples.append(((cmd, ("copy", "edition")), _timestamp(keys.edition)))
    for name, expires in keys.mirrors:
        if expires is not None:
            samples.append(((cmd, ("copy", "mirror"), ("mirror", name)), _timestamp(expires)))
    return [_keys_expiry(samples)]


def _keys_expiry(samples: list[tuple[Labels, float]]) -> Metric:
    return _gauge(
        "mirror_keys_expiry_timestamp_seconds",
        HELP["mirror_keys_expiry_timestamp_seconds"],
        samples,
    )


def status_metrics(
    statuses: Sequence[MirrorStatus], *, finished_at: datetime, exit_code: int
) -> list[Metric]:
    """`mirror status`'s metrics: each mirror as a reader sees it."""
    cmd = ("command", "status")
    rows = [((cmd, ("mirror", s.name)), s) for s in statuses]
    return [
        _gauge(
            "mirror_mirror_up",
            HELP["mirror_mirror_up"],
            [(labels, int(s.reachable and s.public)) for labels, s in rows],
        ),
        _gauge(
            "mirror_mirror_stale",
            HELP["mirror_mirror_stale"],
            [(labels, int(s.stale)) for labels, s in rows],
        ),
        _gauge(
            "mirror_mirror_tampered",
            "Files on the mirror whose bytes or signature do not match (status only).",
            [(labels, len(s.tampered)) for labels, s in rows],
        ),
        _gauge(
            "mirror_mirror_version",
            HELP["mirror_mirror_version"],
            [(labels, s.version or 0) for labels, s in rows],
        ),
        _gauge(
            "mirror_mirror_age_seconds",
            "Age of the mirror's live manifest (since it was signed).",
            [(labels, s.age_s) for labels, s in rows if s.age_s is not None],
        ),
        _keys_expiry(
            [
                ((cmd, ("copy", "mirror"), ("mirror", s.name)), _iso_timestamp(s.keys_expires))
                for s in statuses
                if s.keys_expires
            ]
        ),
        *run_metrics("status", finished_at=finished_at, exit_code=exit_code),
    ]


def _iso_timestamp(text: str | None) -> float:
    """keys.json's "2026-01-31T12:00:00Z" as Unix time."""
    assert text is not None
    return _timestamp(datetime.fromisoformat(text))
