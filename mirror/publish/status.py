"""`mirror status`: each mirror seen as a reader sees it, through its public URL with
plain GETs: reachable or not, public or not (a 403), the live version and its age,
stale or not, when its keys.json expires (due for renewal within certificate.ALERT_DAYS days),
and (with `full`) every file whose bytes don't match. Each mirror has a deadline, and
bodies a minimum rate: a mirror past either, or that cannot be read at all, is
unreachable. Every read goes through the mirror reader `mirror verify` uses
(mirror.verify.readers: one session per mirror, one error map, one retry policy)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mirror.config import MirrorConfig
from mirror.errors import (
    KeyCertificateError,
    ManifestError,
    MirrorError,
    NotPublicError,
    TargetError,
    VerifyError,
)
from mirror.fetch.urls import with_slash
from mirror.trust import certificate, minisign
from mirror.trust.manifest import MAX_POINTER_BYTES, parse_pointer
from mirror.verify.readers import (
    EditionReader,
    HttpReader,
    HttpSettings,
    ReadOutcome,
    read_bytes,
)
from mirror.verify.run import (
    DEFAULT_DEADLINE_S,
    load_manifest,
    load_trust,
    read_keys_files,
    signed_keys_json,
    verify_target,
    within_deadline,
)

NOT_PUBLIC = "readers get 403 Forbidden"  # a NotPublicError's reason
SHOWN_PATHS = 5  # tampered files named in the human summary (all of them in --json)


@dataclass
class MirrorStatus:
    name: str
    url: str
    reachable: bool = False
    public: bool = True  # False: it answers, but 403 to a reader (a bucket not made public)
    version: int | None = None
    age_s: float | None = None
    expires: str | None = None
    stale: bool = True
    tampered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    keys_expires: str | None = None  # keys.json's expiry, when checked with the root key
    keys_due: bool = False  # keys.json expires within certificate.ALERT_DAYS days (or has)
    error: str = ""
    # the latest OONI verdict per country (mirror.reach's cache: no request made for it)
    reach: list[dict[str, Any]] = field(default_factory=list)
    state: str = "live"  # the fleet's state: spare | live | blocked (mirror.fleet)
    fix: str = ""  # what makes a not-public mirror public (public_fix)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "reachable": self.reachable,
            "public": self.public,
            "version": self.version,
            "age_s": self.age_s,
            "expires": self.expires,
            "stale": self.stale,
            "tampered": self.tampered,
            "missing": self.missing,
            "keys_expires": self.keys_expires,
            "keys_due": self.keys_due,
            "error": self.error,
            "reach": self.reach,
            "state": self.state,
            "fix": self.fix,
        }

    @property
    def healthy(self) -> bool:
        healthy = self.reachable and self.public and not self.stale and not self.tampered
        return healthy and not self.keys_due

    def summary(self) -> str:
        if not self.public:
            fix = f": {self.fix}" if self.fix else ""
            return f"{self.name}: NOT PUBLIC ({self.error}){fix}" + self.reach_summary()
        if not self.reachable:
            return f"{self.name}: UNREACHABLE ({self.error})" + self.reach_summary()
        state = "STALE" if self.stale else "fresh"
        age = f", {self.age_s / 3600:.1f} h old" if self.age_s is not None else ""
        shown = ", ".join(self.tampered[:SHOWN_PATHS])
        more = (
            f" and {len(self.tampered) - SHOWN_PATHS} more"
            if len(self.tampered) > SHOWN_PATHS
            else ""
        )
        problems = f", {len(self.tampered)} tampered: {shown}{more}" if self.tampered else ""
        note = f" ({self.error})" if self.error else ""
        renew = (
            f", KEYS.JSON EXPIRES {self.keys_expires}: renew it (`mirror keys certify` on the "
            "offline machine)"
            if self.keys_due
            else ""
        )
        line = f"{self.name}: {state}, version {self.version}{age}{problems}{renew}{note}"
        return line + self.reach_summary()

    def reach_summary(self) -> str:
        """ "; OONI: RU ok, IR anomalies" from the cached verdicts, or nothing."""
        verdicts = ", ".join(f"{v['country']} {v['verdict']}" for v in self.reach)
        return f"; OONI: {verdicts}" if verdicts else ""


def public_fix(mirror: MirrorConfig) -> str:
    """What makes a mirror that answers readers 403 public, by its backend (status and
    doctor both say it)."""
    if mirror.type == "directory":
        return f"let the web server serving {mirror.public_url} read {mirror.path}"
    return f"run `mirror mirrors setup {mirror.name}`, or check the bucket policy"


async def mirrors_status(
    mirrors: list[MirrorConfig],
    key: minisign.PublicKey,
    *,
    now: datetime,
    local_version: int,
    full: bool = False,
    state_dir: Path | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    http: HttpSettings | None = None,
) -> list[MirrorStatus]:
    """Every mirror's status, checked at once (each within `deadline_s`)."""
    return list(
        await asyncio.gather(
            *(
                mirror_status(m, key, now=now, local_version=local_version, full=full,
                              state_dir=state_dir, deadline_s=deadline_s, http=http)
                for m in mirrors
            )
        )
    )  # fmt: skip


async def mirror_status(
    mirror: MirrorConfig,
    key: minisign.PublicKey,
    *,
    now: datetime,
    local_version: int,
    full: bool = False,
    state_dir: Path | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    http: HttpSettings | None = None,
) -> MirrorStatus:
    """One mirror's status; unreachable when it cannot be read within `deadline_s`, or a
    request of it waits longer than its `timeout_s` (to connect, or for each read)."""
    url = with_slash(mirror.public_url)
    status = MirrorStatus(mirror.name, url)
    http = (http or HttpSettings()).for_mirror(mirror.name, mirror.timeout_s)
    try:
        async with within_deadline(url, deadline_s):
            await _check(status, key, now, local_version, full, state_dir, http, deadline_s)
    except NotPublicError as exc:
        status.reachable, status.public, status.error = True, False, exc.reason
        status.fix = public_fix(mirror)
    except TargetError as exc:  # past the deadline, too slow, redirected away, ...
        status.reachable, status.error = False, str(exc)
    except MirrorError as exc:
        status.error = str(exc) or type(exc).__name__
    return status


async def _check(
    status: MirrorStatus,
    key: minisign.PublicKey,
    now: datetime,
    local_version: int,
    full: bool,
    state_dir: Path | None,
    http: HttpSettings | None,
    deadline_s: float,
) -> None:
    """The steps of `mirror_status`, filling in `status` as they go."""
    async with HttpReader(status.url, http) as reader:
        status.version = await read_live_version(reader, status.url)
        status.reachable = True
        if status.version is None:
            status.error = "empty: nothing published yet"
            return
        await read_manifest(status, reader, key, now)
    status.stale = status.version < local_version
    if full:
        await full_check(status, key, now, state_dir, http, deadline_s)


async def read_live_version(reader: EditionReader, url: str) -> int | None:
    """The live version from `current` (None when there is none); 403 is "not public"."""
    outcome, data = await read_bytes(reader, "current", max_bytes=MAX_POINTER_BYTES)
    if outcome is ReadOutcome.FORBIDDEN:
        raise NotPublicError(url, NOT_PUBLIC)
    if outcome is ReadOutcome.TOO_LARGE:
        raise ManifestError(f"current is over the {MAX_POINTER_BYTES}-byte limit")
    return None if outcome.absent else parse_pointer(data)


async def read_manifest(
    status: MirrorStatus, reader: EditionReader, key: minisign.PublicKey, now: datetime
) -> None:
    """Age and expiry from the live manifest, its signature checked."""
    assert status.version is not None
    try:
        is_root = await signed_keys_json(reader, key)
        if is_root:
            await read_keys_expiry(status, reader, key, now)
        trust = await load_trust(reader, key, is_root=is_root, now=now)
        manifest = await load_manifest(reader, status.version, trust, now)
    except TargetError:
        raise  # not read, so not known to be tampered
    except VerifyError as exc:
        status.tampered.append(f"manifests/{status.version}.json")
        raise MirrorError(f"live manifest refused: {exc}") from exc
    status.age_s = round((now - manifest.created).total_seconds(), 1)
    status.expires = manifest.expires.isoformat()


async def read_keys_expiry(
    status: MirrorStatus, reader: EditionReader, root: minisign.PublicKey, now: datetime
) -> None:
    """When the mirror's keys.json expires, and whether that is within certificate.ALERT_DAYS;
    MirrorError (not tampering) when it has expired. A keys.json the root did not sign is
    left for `load_trust` to refuse."""
    try:
        data, signature = await read_keys_files(reader)
        root_certificate = certificate.read_signed_certificate(root, data, signature)
    except KeyCertificateError:
        return
    status.keys_expires = certificate.format_time(root_certificate.expires)
    status.keys_due = certificate.expires_soon(root_certificate.expires, now)
    if now >= root_certificate.expires:
        raise MirrorError(
            f"{certificate.KEYS_FILE} expired at {status.keys_expires}: readers refuse it"
        )


async def full_check(
    status: MirrorStatus,
    key: minisign.PublicKey,
    now: datetime,
    state_dir: Path | None,
    http: HttpSettings | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> None:
    """Every file's bytes, as `mirror verify` checks them."""
    report = await verify_target(
        status.url, key, now=now, state_dir=state_dir, ask_peers=False, http=http,
        deadline_s=deadline_s,
    )  # fmt: skip
    status.tampered = list(report.tampered)
    status.missing = list(report.missing)
    if not report.ok:
        status.error = "some files don't match the manifest"
