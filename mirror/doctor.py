"""`mirror doctor`: what ops run after editing the config. Each check is one `Check`
(ok, warning or failed, with the fix when it is not ok); `run_checks` runs them all at
once, each bounded in seconds and the whole within a deadline, and never sends mail,
writes to a mirror or prints a secret.

The checks, in report order: the signing key (loads, passphrase available, matches the
public key); keys.json (when a root key is configured: the root's, certifying the
signing key, not expiring within KEYS_FAIL_DAYS, warned within KEYS_WARN_DAYS);
edition.output_dir (writable; the config's load already refused a forbidden place);
the secrets the config names (present, never shown); per enabled mirror, its storage
(S3: HeadBucket with our credentials; a folder: writable) and its public URL (`current`
read as a reader, through publish.status); per pool, its provider (S3: ListBuckets; a
folder: the parent writable); the SMTP server (connect, TLS and certificate, AUTH when
a username is set: one login, as every digest run makes; EHLO; QUIT); the IMAP server
(connect, TLS, LOGIN, SELECT); the origin's feeds (one bounded GET each).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from ssl import SSLContext
from typing import Any, TypeVar

from mirror.config import Config, MirrorConfig, PoolConfig, mirror_key
from mirror.errors import (
    ConfigError,
    FetchError,
    ImapAuthError,
    ImapProtocolError,
    ImapTlsError,
    KeyCertificateError,
    MirrorAccessError,
    MirrorError,
    NotPublicError,
    TlsRequiredError,
)
from mirror.http_errors import no_answer

T = TypeVar("T")

DEFAULT_DEADLINE_S = 30.0  # the whole doctor run
DEADLINE_FLAG = "--deadline-s"  # named when the run's deadline, not a timeout_s, cut a check short
KEYS_WARN_DAYS = 14  # keys.json expiring sooner: a warning
KEYS_FAIL_DAYS = 7  # ... sooner still (or expired): a failure
MAX_THREADS = 8  # blocking checks (boto3, key files, folders) at once
PROBE_BUCKET = "mirror-doctor-probe"  # a pool's sample mirror name: never created


@dataclass(frozen=True)
class Check:
    """One check's outcome: `fix` says what to do when it is not ok (or warns)."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # ok today, but needs attention soon
    elapsed_s: float = 0.0
    # over the network: a failure says how long it waited; None: as its probe says (a
    # check over the network sets False when it failed before connecting)
    remote: bool | None = None

    def line(self) -> str:
        """`ok   name: detail`, `WARN name: detail: fix` or `FAIL name: detail (after
        N s): fix` (the time only for a check over the network)."""
        mark = "FAIL" if not self.ok else "WARN" if self.warning else "ok  "
        fix = f": {self.fix}" if self.fix and (self.warning or not self.ok) else ""
        waited = not self.ok and self.remote and self.elapsed_s
        after = f" (after {self.elapsed_s:.1f} s)" if waited else ""
        return f"{mark} {self.name}: {self.detail}{after}{fix}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "fix": self.fix,
            "warning": self.warning,
            "elapsed_s": self.elapsed_s,
        }


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def summary(self) -> str:
        failed = sum(not check.ok for check in self.checks)
        warned = sum(check.ok and check.warning for check in self.checks)
        checks = "1 check" if len(self.checks) == 1 else f"{len(self.checks)} checks"
        warnings = "1 warning" if warned == 1 else f"{warned} warnings"
        return f"{checks}: {failed} failed, {warnings}"

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.to_json() for check in self.checks]}


def config_check(path: str, error: ConfigError | None) -> Check:
    """The first line: the config loads, or why not."""
    if error is None:
        return Check("config", True, path)
    return Check("config", False, str(error), "edit the file (the message names the key)")


@dataclass(frozen=True)
class Probe:
    """One check to run: `run` gives its Check; `timeout_s` bounds it. `fix_on_timeout`
    is said on a timeout, and on a MirrorError unless `fix_for` gives one for it."""

    name: str
    run: Callable[[], Awaitable[Check]]
    timeout_s: float
    fix_on_timeout: str
    remote: bool = True  # False: local files only
    fix_for: Callable[[MirrorError], str] | None = None
    timeout_key: str = ""  # the setting that sets `timeout_s`, named on a timeout


async def run_checks(
    config: Config,
    *,
    now: datetime,
    deadline_s: float = DEFAULT_DEADLINE_S,
    tls_context: SSLContext | None = None,
) -> DoctorReport:
    """Every check, at once; each within its timeout and `deadline_s`."""
    with ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="doctor") as pool:
        checks = Checks(config, now, pool, tls_context)
        try:
            results = await asyncio.gather(
                *(bounded(probe, deadline_s) for probe in checks.probes())
            )
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return DoctorReport(tuple(results))


async def bounded(probe: Probe, deadline_s: float) -> Check:
    """`probe` run within min(its timeout, `deadline_s`), its time measured; any
    error it lets through is a failure (a MirrorError with its message; anything else
    by its type alone: it may hold what must not be shown)."""
    limit_s = min(probe.timeout_s, deadline_s)
    key = probe.timeout_key if probe.timeout_s <= deadline_s else DEADLINE_FLAG
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit_s):
            check = await probe.run()
    except TimeoutError:
        detail = no_answer(limit_s, key) if key else f"no answer within {limit_s:g} s"
        check = Check(probe.name, False, detail, probe.fix_on_timeout)
    except MirrorError as exc:
        fix = probe.fix_for(exc) if probe.fix_for is not None else probe.fix_on_timeout
        check = Check(probe.name, False, str(exc), fix)
    except Exception as exc:  # a doctor reports what it cannot check; it does not crash
        check = Check(probe.name, False, f"unexpected error: {type(exc).__name__}", BUG_FIX)
    remote = probe.remote if check.remote is None else check.remote
    return replace(check, elapsed_s=round(time.monotonic() - started, 3), remote=remote)


class Checks:
    """The probes one config calls for."""

    def __init__(
        self,
        config: Config,
        now: datetime,
        pool: ThreadPoolExecutor,
        tls_context: SSLContext | None,
    ) -> None:
        self.config = config
        self.now = now
        self._pool = pool
        self._tls_context = tls_context

    def probes(self) -> list[Probe]:
        config = self.config
        local_s = 30.0
        probes = [
            Probe("signing key", self._thread(self.signing_key), local_s, KEYGEN_FIX,
                  remote=False, fix_for=signing_fix),
            Probe("output_dir", self._thread(self.output_dir), local_s, "", remote=False),
            Probe("secrets", self._thread(self.secrets), local_s, "", remote=False),
        ]  # fmt: skip
        if config.signing.root_public_key_file is not None:
            probes.append(Probe("keys.json", self._thread(self.keys_json), local_s, CERTIFY_FIX,
                                remote=False, fix_for=keys_json_fix))  # fmt: skip
        for mirror in config.mirrors:
            if mirror.enabled:
                probes += self.mirror_probes(mirror)
        for pool in config.pools:
            probes.append(self.pool_probe(pool))
        probes += self.mail_probes()
        probes += [self.feed_probe(url) for url in config.source.feeds]
        return probes

    def _thread(self, func: Callable[[], Check]) -> Callable[[], Awaitable[Check]]:
        async def run() -> Check:
            return await asyncio.get_running_loop().run_in_executor(self._pool, func)

        return run

    # --- keys --------------------------------------------------------------------------

    def signing_key(self) -> Check:
        from mirror.trust.keyfiles import load_signing_key, load_signing_public_key

        signing = self.config.signing
        key = load_signing_key(self.config)
        public = load_signing_public_key(self.config)
        if public != key.public:
            return Check(
                "signing key", False,
                f"{signing.public_key_file} is not the public half of {signing.secret_key_file}",
                "point signing.public_key_file at the .pub written with the key "
                "(or `mirror keygen` a new pair, and certify it again if a root is configured)",
            )  # fmt: skip
        return Check("signing key", True, f"{signing.secret_key_file} loads ({public.key_id_hex})")

    def keys_json(self) -> Check:
        from mirror.trust import certificate
        from mirror.trust.keyfiles import (
            load_root_public_key,
            load_signing_public_key,
            read_certificate,
        )

        path = self.config.signing.certificate_file
        root = load_root_public_key(self.config)
        files = read_certificate(self.config)
        if root is None or files is None:
            return Check("keys.json", False, f"{path} is missing", CERTIFY_FIX)
        try:
            signed = certificate.read_signed_certificate(root, *files)
            expiry = keys_expiry_check(signed.expires, self.now, path)
            if expiry.ok:
                signed.signing_key_for(load_signing_public_key(self.config).key_id, self.now)
        except KeyCertificateError as exc:
            return Check("keys.json", False, f"{path}: {exc}", CERTIFY_FIX)
        return expiry

    # --- local folders and secrets -------------------------------------------------------

    def output_dir(self) -> Check:
        folder = self.config.edition.output_dir
        problem = writable_problem(folder)
        if problem:
            return Check("output_dir", False, problem, f"let this user write {folder}")
        return Check("output_dir", True, f"{folder} writable, a folder of its own")

    def secrets(self) -> Check:
        present, problems = secret_findings(self.config)
        if problems:
            return Check(
                "secrets", False, "; ".join(problems),
                "set the variable in the service's environment, or name a file in the "
                "key's *_file twin",
            )  # fmt: skip
        return Check(
            "secrets", True, "present: " + ", ".join(present) if present else "none needed"
        )

    # --- mirrors and pools -----------------------------------------------------------

    def mirror_probes(self, mirror: MirrorConfig) -> list[Probe]:
        storage = f"mirror {mirror.name} storage"
        public = f"mirror {mirror.name} public"
        key = mirror_key(mirror.name, "timeout_s")
        return [
            Probe(storage, self._thread(lambda: storage_check(storage, mirror)),
                  mirror.timeout_s, unreachable_fix(mirror), timeout_key=key),
            Probe(public, lambda: public_check(public, mirror, mirror.timeout_s),
                  mirror.timeout_s, f"check that {mirror.public_url} answers from here",
                  timeout_key=key),
        ]  # fmt: skip

    def pool_probe(self, pool: PoolConfig) -> Probe:
        name = f"pool {pool.name}"
        return Probe(
            name, self._thread(lambda: pool_check(name, pool)), pool.timeout_s,
            "check the pool's endpoint_url and the network",
            timeout_key=f"pools[{pool.name}].timeout_s",
        )  # fmt: skip

    # --- mail and the origin -----------------------------------------------------------

    def mail_probes(self) -> list[Probe]:
        probes = []
        digest = self.config.digest
        if digest.smtp_url:
            probes.append(
                Probe("smtp", self.smtp, digest.timeout_s, SMTP_CONNECT_FIX,
                      timeout_key="digest.timeout_s")
            )  # fmt: skip
        mailin = self.config.mailin
        if mailin is not None and mailin.imap_url:
            probes.append(Probe("imap", self.imap, mailin.timeout_s, IMAP_CONNECT_FIX,
                                timeout_key="mailin.timeout_s"))  # fmt: skip
        return probes

    async def smtp(self) -> Check:
        from mirror.digest.run import smtp_password
        from mirror.mail.smtp import SmtpTransport

        digest = self.config.digest
        try:  # a missing secret is found here, before any connection
            password = smtp_password(self.config)
        except MirrorError as exc:
            return Check("smtp", False, str(exc), smtp_fix(exc), remote=False)
        try:
            transport = SmtpTransport(
                digest.smtp_url, sender=parseaddr(digest.sender)[1] or digest.sender,
                username=digest.smtp_username, password=password, connections=1,
                timeout_s=digest.timeout_s, tls_context=self._tls_context,
                ehlo_name=digest.ehlo_name,
            )  # fmt: skip
            return Check("smtp", True, await transport.probe())
        except MirrorError as exc:
            return Check("smtp", False, str(exc), smtp_fix(exc))

    async def imap(self) -> Check:
        from mirror.mail.imap import ImapMailbox
        from mirror.mailin.run import imap_password, imap_settings

        try:  # a missing secret is found here, before any connection
            settings = imap_settings(self.config, imap_password(self.config))
        except MirrorError as exc:
            return Check("imap", False, str(exc), imap_fix(exc), remote=False)
        try:
            async with ImapMailbox(settings, tls_context=self._tls_context):
                pass
        except MirrorError as exc:
            return Check("imap", False, str(exc), imap_fix(exc))
        return Check("imap", True, f"{settings.url}: login accepted, {settings.mailbox} selected")

    def feed_probe(self, url: str) -> Probe:
        name = f"feed {url}"
        source = self.config.source
        return Probe(
            name, lambda: feed_check(name, self.config, url), source.timeout_s,
            "check source.feeds, and that the origin answers this host (source.proxy)",
            timeout_key="source.timeout_s",
        )  # fmt: skip


KEYGEN_FIX = "run `mirror keygen` (it writes signing.secret_key_file and public_key_file)"
UNLOCK_FIX = "set the key's passphrase in signing.passphrase_env or signing.passphrase_file"
ROOT_KEYGEN_FIX = (
    "create the root with `mirror keygen --root` on the offline machine, and copy its .pub "
    "to signing.root_public_key_file"
)
BUG_FIX = "run again with -vv; if it persists, report it with that output"
CERTIFY_FIX = "run `mirror keys certify --root-key ROOT.key` where the root key is kept"
SMTP_CONNECT_FIX = "check digest.smtp_url's host and port, and that a firewall lets us out"
IMAP_CONNECT_FIX = "check mailin.imap_url's host and port, and that a firewall lets us out"


def signing_fix(error: MirrorError) -> str:
    """The fix for a signing key that does not load: the passphrase only when it is the
    problem."""
    return UNLOCK_FIX if "passphrase" in str(error) else KEYGEN_FIX


def keys_json_fix(error: MirrorError) -> str:
    """The fix for a keys.json check that could not run: a missing root key is made with
    `keygen --root`; anything else, certify again."""
    text = str(error)
    if "no such public key file" in text and "--root" in text:
        return ROOT_KEYGEN_FIX
    return CERTIFY_FIX


def keys_expiry_check(expires: datetime, now: datetime, path: Path) -> Check:
    """keys.json's expiry: failed within KEYS_FAIL_DAYS (or gone), warned within
    KEYS_WARN_DAYS."""
    from mirror.trust.certificate import format_time

    left = expires - now
    when = f"{path} expires {format_time(expires)}"
    if left <= timedelta(0):
        return Check("keys.json", False, f"{when}: expired, readers refuse it", CERTIFY_FIX)
    days = left / timedelta(days=1)
    if left < timedelta(days=KEYS_FAIL_DAYS):
        return Check("keys.json", False, f"{when}, in {days:.1f} days", CERTIFY_FIX)
    warning = left < timedelta(days=KEYS_WARN_DAYS)
    return Check("keys.json", True, f"{when}, in {days:.1f} days", CERTIFY_FIX, warning=warning)


def writable_problem(folder: Path) -> str:
    """Why this user cannot write in `folder` (or, missing, in its nearest parent); ""."""
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        handle, temp = tempfile.mkstemp(dir=existing, prefix=".doctor-")
    except OSError as exc:
        return f"{existing} is not writable: {exc.strerror}"
    os.close(handle)
    with contextlib.suppress(OSError):
        Path(temp).unlink()
    return ""


def secret_findings(config: Config) -> tuple[list[str], list[str]]:
    """(where each present secret was found, what is wrong with the others): the
    readers each command uses, so the verdict is theirs; values never leave here."""
    from mirror.digest.run import previous_secrets, secret_from, smtp_password
    from mirror.mailin.run import imap_password, secrets_from

    readers: list[tuple[str, Callable[[Config], object]]] = [
        (config.digest.unsubscribe_secret_env, secret_from),
        (config.digest.unsubscribe_previous_secrets_env, previous_secrets),
    ]
    if config.digest.smtp_url and config.digest.smtp_username:
        readers.append((config.digest.smtp_password_env, smtp_password))
    if config.mailin is not None:
        readers.append((config.mailin.sender_secret_env, secrets_from))
        if config.mailin.imap_url:
            readers.append((config.mailin.password_env, imap_password))
    present, problems = [], []
    for name, read in readers:
        try:
            value = read(config)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if value:
            present.append(name)
    return present, problems


def storage_check(name: str, mirror: MirrorConfig) -> Check:
    """A folder mirror: writable. An S3 mirror: HeadBucket with our credentials."""
    if mirror.type == "directory":
        assert mirror.path is not None
        problem = writable_problem(mirror.path)
        if problem:
            return Check(name, False, problem, f"let this user write {mirror.path}")
        return Check(name, True, f"{mirror.path} writable")
    ok = f"bucket {mirror.bucket} accepts our credentials (HeadBucket)"
    return s3_call_check(name, mirror, lambda client: client.head_bucket(Bucket=mirror.bucket), ok)


def pool_check(name: str, pool: PoolConfig) -> Check:
    """A folder pool: the folder its mirrors go in is writable. An S3 pool: ListBuckets
    with the pool's credentials."""
    sample = pool.mirror(PROBE_BUCKET)
    if pool.type == "directory":
        assert sample.path is not None
        problem = writable_problem(sample.path.parent)
        if problem:
            return Check(name, False, problem, f"let this user write {sample.path.parent}")
        return Check(name, True, f"{sample.path.parent} writable")
    return s3_call_check(name, sample, lambda client: client.list_buckets(),
                         "the provider accepts our credentials (ListBuckets)")  # fmt: skip


def s3_call_check(name: str, mirror: MirrorConfig, call: Callable[[Any], object], ok: str) -> Check:
    """One authenticated S3 call, not retried; its failure named, with the fix."""
    from botocore.exceptions import ClientError

    from mirror.storage.s3 import S3Limits, is_absent, make_client, translate_error

    limits = replace(S3Limits.for_mirror(mirror), max_attempts=1)
    try:
        call(make_client(mirror, max_pool=1, limits=limits))
    except ClientError as exc:
        if is_absent(exc) or exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            setup = f"run `mirror mirrors setup {mirror.name}` (it creates the bucket)"
            return Check(name, False, f"bucket {mirror.bucket} does not exist", setup)
        return failed_s3(name, mirror, translate_error(mirror.name, exc, limits))
    except MirrorError as exc:
        return failed_s3(name, mirror, exc)
    except Exception as exc:  # botocore's own, translated once in mirror.storage.s3
        return failed_s3(name, mirror, translate_error(mirror.name, exc, limits))
    return Check(name, True, ok)


def failed_s3(name: str, mirror: MirrorConfig, error: MirrorError) -> Check:
    reason = getattr(error, "reason", str(error))
    if isinstance(error, MirrorAccessError) and error.fix:  # the store's hint, said once
        return Check(name, False, f"refused: {reason.removesuffix(': ' + error.fix)}", error.fix)
    if isinstance(error, MirrorAccessError):
        return Check(name, False, f"refused: {reason}", access_fix(mirror))
    return Check(name, False, reason, unreachable_fix(mirror))


def access_fix(mirror: MirrorConfig) -> str:
    who = (
        f"profile {mirror.profile!r}" if mirror.profile else "AWS_ACCESS_KEY_ID/_SECRET_ACCESS_KEY"
    )
    return (
        f"check the credentials ({who}), that they may use bucket {mirror.bucket}, and the "
        f"region (region = {mirror.region!r}); `mirror mirrors setup {mirror.name}` creates "
        "a missing bucket"
    )


def unreachable_fix(mirror: MirrorConfig) -> str:
    if mirror.type == "directory":
        return f"check that {mirror.path} is on a working file system"
    where = mirror.endpoint_url or "AWS"
    return f"check endpoint_url ({where}), the region and the network"


async def public_check(name: str, mirror: MirrorConfig, timeout_s: float) -> Check:
    """The public URL read as a reader does (`current`, as `mirror status` reads it)."""
    from mirror.fetch.urls import with_slash
    from mirror.publish.status import public_fix, read_live_version
    from mirror.verify.readers import HttpReader, HttpSettings

    url = with_slash(mirror.public_url)
    settings = HttpSettings(timeout_s=timeout_s, connect_timeout_s=min(timeout_s, 15.0),
                            retries=0, user_agent="mirror-doctor")  # fmt: skip
    try:
        async with HttpReader(url, settings) as reader:
            version = await read_live_version(reader, url)
    except NotPublicError as exc:
        return Check(name, False, f"not public: {exc.reason}", public_fix(mirror))
    except MirrorError as exc:
        return Check(name, False, str(exc), f"check public_url ({url}) and that it answers here")
    if version is None:
        return Check(name, True, f"{url} answers; nothing published yet",
                     "run `mirror publish` (or `mirror sync`)", warning=True)  # fmt: skip
    return Check(name, True, f"{url} readable, live version {version}")


def smtp_fix(error: MirrorError) -> str:
    text = str(error)
    if isinstance(error, ConfigError):
        return "set the SMTP password (digest.smtp_password_env or digest.smtp_password_file)"
    if isinstance(error, TlsRequiredError) or "TLS failed" in text:
        return (
            "the server must offer STARTTLS (smtp://) or TLS (smtps://) with a certificate "
            "valid for its name; check digest.smtp_url"
        )
    if "login refused" in text:
        return "check digest.smtp_username and the password (digest.smtp_password_env)"
    return SMTP_CONNECT_FIX


def imap_fix(error: MirrorError) -> str:
    if isinstance(error, ConfigError):
        return "set the IMAP password (mailin.password_env or mailin.password_file)"
    if isinstance(error, ImapAuthError):
        return "check mailin.username and the password (mailin.password_env)"
    if isinstance(error, ImapTlsError):
        return "use imaps:// (or a server offering STARTTLS) with a certificate valid for its name"
    if isinstance(error, ImapProtocolError) and "SELECT" in str(error):
        return "check mailin.mailbox: it must exist on the server"
    return IMAP_CONNECT_FIX


async def feed_check(name: str, config: Config, url: str) -> Check:
    """One GET of a feed, as `mirror fetch` makes it, not retried."""
    from mirror.fetch.origin import OriginClient

    source = replace(config.source, retries=0)
    try:
        async with OriginClient(source, home_url=config.publication.home_url) as client:
            answer = await client.get(url, max_bytes=source.max_feed_bytes)
    except FetchError as exc:
        return Check(name, False, str(exc), "check source.feeds, and that the origin answers here")
    return Check(name, True, f"answers ({len(answer.body)} bytes)")
