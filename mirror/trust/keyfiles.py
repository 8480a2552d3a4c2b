"""The key files a config names: make them, load them (the one place that does: the
signing key, its public key, the root and the trust anchor), and let the offline root
certify the online signing key (keys.json)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.atomic import write_atomic
from mirror.config import Config, MirrorConfig
from mirror.credentials import read_secret_file
from mirror.errors import BuildError, ConfigError, KeyCertificateError, KeyFileError, UsageError
from mirror.trust import certificate, minisign

if TYPE_CHECKING:  # the build loads only when inputs are made: publish starts fast
    from mirror.build.builder import BuildInputs

RENEW_WARNING_DAYS = 14  # `keys certify` warns when what it writes ends sooner than this


@dataclass(frozen=True)
class WrittenKeys:
    secret_path: Path
    public_path: Path
    public_line: str


def passphrase_from(env_name: str | None, file: str | None = None) -> str | None:
    """The passphrase in the named file (which wins) or environment variable; never in
    arguments, where `ps` would show it."""
    if file:
        return read_secret_file(Path(file), key="--passphrase-file")
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise KeyFileError(f"the passphrase variable ${env_name} is not set")
    return value


def make_keys(
    config: Config | None,
    *,
    root: bool,
    out: str | None,
    passphrase_env: str | None,
    passphrase_file: str | None = None,
    unencrypted_root: bool = False,
) -> WrittenKeys:
    """A new key pair, written where the config (or --out) says; never overwrites. A root
    key without a passphrase needs `unencrypted_root` (UsageError otherwise)."""
    passphrase = passphrase_from(passphrase_env, passphrase_file)
    if root and passphrase is None and not unencrypted_root:
        raise UsageError(
            "the root key certifies every signing key readers trust: give it a passphrase "
            "(--passphrase-env VAR or --passphrase-file FILE), or say --no-passphrase if it "
            "lives only on encrypted offline storage"
        )
    if config is not None:
        secret_path, public_path = config.signing.secret_key_file, config.signing.public_key_file
    else:
        folder = Path(out or ".")
        stem = "root" if root else "mirror"
        secret_path, public_path = folder / f"{stem}.key", folder / f"{stem}.pub"
    key = minisign.generate_key()
    minisign.write_key_pair(key, secret_path, public_path, passphrase)
    return WrittenKeys(secret_path, public_path, key.public.line())


# What a missing key file's message says to do.
KEYGEN_HINT = "create one with `mirror keygen`"
ROOT_KEYGEN_HINT = "create one with `mirror keygen --root` on the offline machine"


def load_signing_key(config: Config) -> minisign.SecretKey:
    """The online signing key; its passphrase (if any) from signing.passphrase_file, which
    wins, or signing.passphrase_env."""
    signing = config.signing
    if signing.passphrase_file is not None:
        passphrase: str | None = read_secret_file(
            signing.passphrase_file, key="signing.passphrase_file", config_path=str(config.path)
        )
    else:
        passphrase = passphrase_from(signing.passphrase_env)
    return minisign.load_secret_key(signing.secret_key_file, passphrase, missing=KEYGEN_HINT)


def load_signing_public_key(config: Config) -> minisign.PublicKey:
    """The online signing key's public half (signing.public_key_file)."""
    return minisign.load_public_key(config.signing.public_key_file, missing=KEYGEN_HINT)


def load_root_public_key(config: Config) -> minisign.PublicKey | None:
    """The offline root's public key (signing.root_public_key_file); None without one."""
    path = config.signing.root_public_key_file
    return None if path is None else minisign.load_public_key(path, missing=ROOT_KEYGEN_HINT)


def load_trust_anchor(config: Config) -> minisign.PublicKey:
    """What readers check against: the root key when there is one, else the signing key."""
    root = load_root_public_key(config)
    return root if root is not None else load_signing_public_key(config)


def certificate_paths(config: Config) -> tuple[Path, Path]:
    path = config.signing.certificate_file
    return path, path.with_name(path.name + ".minisig")


def read_certificate(config: Config) -> tuple[bytes, bytes] | None:
    data_path, sig_path = certificate_paths(config)
    if not data_path.exists():
        return None
    try:
        return data_path.read_bytes(), sig_path.read_bytes()
    except OSError as exc:
        raise BuildError(f"cannot read the key certificate: {exc}") from exc


def published_keys(config: Config) -> tuple[str, int]:
    """The root's "RW..." line and the serial of the edition's keys.json, for the digest:
    ("", 0) without a root key; serial 0 when the edition holds no keys.json the root
    signed."""
    root = load_root_public_key(config)
    if root is None:
        return "", 0
    folder = config.edition.output_dir
    try:
        with (
            (folder / certificate.KEYS_FILE).open("rb") as data,
            (folder / certificate.KEYS_SIGNATURE_FILE).open("rb") as signature,
        ):
            files = data.read(certificate.MAX_CERTIFICATE_BYTES + 1), signature.read(65_536)
        return root.line(), certificate.read_signed_certificate(root, *files).serial
    except (OSError, KeyCertificateError):
        return root.line(), 0


def build_inputs(
    config: Config,
    *,
    now: datetime,
    live_version: int = 0,
    handed_out: Sequence[MirrorConfig] | None = None,
) -> BuildInputs:
    """The signing key, its root certificate (when a root is configured) and the mirror
    list: the listed ones of `handed_out` (mirror.fleet.handed_out; None: the configured)."""
    from mirror.build.builder import BuildInputs
    from mirror.build.render import MirrorLink

    key = load_signing_key(config)
    files, epoch, root_line = None, 0, ""
    root = load_root_public_key(config)
    if root is not None:
        files, epoch = checked_certificate(config, key, now)
        root_line = root.line()
    mirrors = tuple(
        MirrorLink(name=m.name, url=m.public_url)
        for m in (config.mirrors if handed_out is None else handed_out)
        if m.listed and m.enabled
    )
    return BuildInputs(
        key=key,
        keys_files=files,
        epoch=epoch,
        mirrors=mirrors,
        live_version=live_version,
        root_key_line=root_line,
    )


def checked_certificate(
    config: Config, key: minisign.SecretKey, now: datetime
) -> tuple[tuple[bytes, bytes], int]:
    """keys.json must be the configured root's and certify this signing key now."""
    root = load_root_public_key(config)
    assert root is not None
    files = read_certificate(config)
    where = str(config.path)
    if files is None:
        raise ConfigError(
            f"a root key is configured but {config.signing.certificate_file} is missing: "
            "run `mirror keys certify --root-key ROOT.key` where the root key is kept",
            path=where,
            key="signing.certificate_file",
        )
    try:
        root_certificate = certificate.check_certificate(root, files[0], files[1], now=now)
        root_certificate.signing_key_for(key.public.key_id, now)
    except KeyCertificateError as exc:
        raise ConfigError(
            f"the signing key is not usable: {exc}", path=where, key="signing.certificate_file"
        ) from exc
    return files, root_certificate.epoch


@dataclass(frozen=True)
class Certified:
    """What `keys certify` wrote, and what ops should hear about it."""

    path: Path
    signing_line: str
    days: int
    serial: int
    expires: datetime
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        return (
            f"{self.path} written: {self.signing_line} certified for {self.days} days "
            f"(serial {self.serial}, expires {certificate.format_time(self.expires)})"
        )


def certify_signing_key(
    config: Config,
    *,
    root_key_file: Path,
    days: int,
    revoke: tuple[str, ...],
    reset_versions: bool,
    passphrase_env: str | None,
    now: datetime,
    passphrase_file: str | None = None,
) -> Certified:
    """Write keys.json + signature: the root certifies the config's signing key."""
    if not 0 < days <= certificate.MAX_VALIDITY_DAYS:
        raise UsageError(
            f"--days must be 1 to {certificate.MAX_VALIDITY_DAYS}, not {days}: the certificate's "
            "life bounds how long a revoked key can fool a reader who never saw the revocation"
        )
    root = minisign.load_secret_key(
        root_key_file, passphrase_from(passphrase_env, passphrase_file), missing=ROOT_KEYGEN_HINT
    )
    configured = load_root_public_key(config)
    if configured is not None and configured != root.public:
        raise KeyFileError(f"{root_key_file} is not the root named in signing.root_public_key_file")
    signing = load_signing_public_key(config)
    previous = _previous_certificate(config, root.public)
    data, signature = certificate.certify(
        root,
        signing,
        now=now,
        days=days,
        previous=previous,
        revoke=tuple(minisign.read_public_key(item) for item in revoke),
        reset_versions=reset_versions,
    )
    data_path, sig_path = certificate_paths(config)
    write_atomic(data_path, data)
    write_atomic(sig_path, signature)
    written = certificate.check_certificate(root.public, data, signature, now=now)
    return Certified(
        data_path, signing.line(), days, written.serial, written.expires,
        renewal_warnings(previous, written, now),
    )  # fmt: skip


def renewal_warnings(
    previous: certificate.KeyCertificate | None, written: certificate.KeyCertificate, now: datetime
) -> tuple[str, ...]:
    """What ops should know after a certification: the new certificate is due for renewal
    soon, or the one it replaces had already expired (readers refused the edition)."""
    warnings = []
    if written.expires - now < timedelta(days=RENEW_WARNING_DAYS):
        warnings.append(
            f"the signing key is due for renewal: {certificate.KEYS_FILE} expires at "
            f"{certificate.format_time(written.expires)}, within {RENEW_WARNING_DAYS} days; "
            "certify again before then"
        )
    if previous is not None and previous.expires <= now:
        warnings.append(
            f"the previous {certificate.KEYS_FILE} (serial {previous.serial}) expired at "
            f"{certificate.format_time(previous.expires)}: readers refused the edition since then; "
            "build and publish now"
        )
    return tuple(warnings)


def _previous_certificate(
    config: Config, root: minisign.PublicKey
) -> certificate.KeyCertificate | None:
    """The current keys.json, even expired or from before expiries: its revocations, serial
    and epoch carry forward."""
    files = read_certificate(config)
    if files is None:
        return None
    return certificate.read_signed_certificate(root, files[0], files[1], legacy=True)
