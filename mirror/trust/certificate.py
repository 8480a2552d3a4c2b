"""The root/online key split, as in TUF: an offline root key certifies the online
signing key for a period in `keys.json`, signed by the root in `keys.json.minisig`.

keys.json is canonical JSON (sorted keys, no spaces, UTF-8, no trailing newline), and
`check_certificate` refuses any other spelling of the same content:

    {"created": "2026-11-20T12:00:00Z",
     "epoch": 0,                      # raised by the root to reset manifest versions
     "expires": "2027-01-04T12:00:00Z",  # the whole certificate's end (TUF's root expiry)
     "revoked": ["RW...", ...],       # never valid again; carried forward forever
     "root": "RW...",                 # the root public key that signs this file
     "serial": 1,                     # +1 with each certification (rollback defence)
     "signing_keys": [{"key": "RW...", "valid_from": "...Z", "valid_until": "...Z"}],
     "type": "mirror-keys"}

The signature's trusted comment is "mirror-keys serial:N epoch:E expires:T" and must
agree with the JSON. Rotation certifies a new signing key: the old one stays listed until
its validity ends, unless revoked.

`expires` bounds the certificate as a whole (at most MAX_VALIDITY_DAYS after `created`,
45 days by default): `check_certificate` refuses it from then on. That is what protects a
reader with no memory (a new device, a forwarded link) from a revoked key: an attacker
who holds a revoked key can replay an older keys.json that still certifies it, but only
until that file expires. A keys.json without `expires` (written before it existed) cannot
be bounded and is refused; the root reads it once more, to carry its revocations
forward, when it certifies again (`read_signed_certificate(..., legacy=True)`).

Verifiers should remember the highest serial (and epoch) seen for a root and refuse an
older keys.json; manifest versions compare within an epoch, and a higher epoch lets
versions start again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mirror.errors import KeyCertificateError, SignatureError, SigningError
from mirror.trust.minisign import PublicKey, SecretKey, parse_public_key, sign, verify

KEYS_FILE = "keys.json"
KEYS_SIGNATURE_FILE = "keys.json.minisig"
CERTIFICATE_TYPE = "mirror-keys"
MAX_CERTIFICATE_BYTES = 65_536
MAX_SIGNING_KEYS = 16
MAX_REVOKED_KEYS = 500
MAX_VALIDITY_DAYS = 180  # a certificate's longest life: how long a revoked key may fool
#                          a reader who never saw the revocation
DEFAULT_VALIDITY_DAYS = 45
ALERT_DAYS = 7  # `status` and `sync` report a keys.json that expires within this many days
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TIME_PATTERN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
COMMENT_PATTERN = re.compile(
    r"^mirror-keys serial:(\d{1,18}) epoch:(\d{1,18}) expires:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$"
)
LEGACY_FIELDS = {"created", "epoch", "revoked", "root", "serial", "signing_keys", "type"}
FIELDS = LEGACY_FIELDS | {"expires"}
KEY_FIELDS = {"key", "valid_from", "valid_until"}


@dataclass(frozen=True)
class CertifiedKey:
    """One online signing key and the period the root vouches for it."""

    key: PublicKey
    valid_from: datetime  # UTC, inclusive
    valid_until: datetime  # UTC, exclusive

    def valid_at(self, at: datetime) -> bool:
        """Whether `at` falls inside the key's validity."""
        return self.valid_from <= at < self.valid_until


@dataclass(frozen=True)
class KeyCertificate:
    """A checked keys.json: which signing keys the root vouches for, and when."""

    root: PublicKey
    serial: int
    epoch: int
    created: datetime
    signing_keys: tuple[CertifiedKey, ...]
    revoked: tuple[PublicKey, ...]
    expires: datetime  # UTC, exclusive: the certificate is refused from then on

    def is_revoked(self, key_id: bytes) -> bool:
        """Whether a key with this id has been revoked."""
        return any(key.key_id == key_id for key in self.revoked)

    def signing_key_for(self, key_id: bytes, at: datetime) -> PublicKey:
        """The certified signing key with this id, valid at `at` (KeyCertificateError)."""
        hex_id = key_id[::-1].hex().upper()
        at = _utc(at)
        if self.is_revoked(key_id):
            raise KeyCertificateError(f"signing key {hex_id} has been revoked by the root")
        for entry in self.signing_keys:
            if entry.key.key_id != key_id:
                continue
            if at < entry.valid_from:
                raise KeyCertificateError(
                    f"signing key {hex_id} is not valid before {format_time(entry.valid_from)}"
                )
            if at >= entry.valid_until:
                raise KeyCertificateError(
                    f"signing key {hex_id} expired at {format_time(entry.valid_until)}"
                )
            return entry.key
        raise KeyCertificateError(f"signing key {hex_id} is not certified by the root in keys.json")


def expires_soon(expires: datetime, now: datetime, *, within_days: int = ALERT_DAYS) -> bool:
    """Whether a certificate expiring at `expires` is expired or due for renewal at `now`."""
    return expires - _utc(now) < timedelta(days=within_days)


def trusted_comment(serial: int, epoch: int, expires: datetime | None) -> str:
    """The trusted comment of keys.json.minisig (`expires` None: a legacy file's)."""
    comment = f"{CERTIFICATE_TYPE} serial:{serial} epoch:{epoch}"
    return comment if expires is None else f"{comment} expires:{format_time(expires)}"


def canonical_json(value: Any) -> bytes:
    """The one byte spelling that is signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


# --- certifying (the root's side) --------------------------------------------------


def certify(
    root: SecretKey,
    signing: PublicKey,
    *,
    now: datetime,
    days: int,
    previous: KeyCertificate | None = None,
    revoke: tuple[PublicKey, ...] = (),
    reset_versions: bool = False,
) -> tuple[bytes, bytes]:
    """keys.json and its signature: `root` vouches for `signing` from `now` for `days`,
    and the certificate as a whole expires then too.

    Carries forward the previous certificate's revocations and still-valid signing keys;
    the serial goes up by one, the epoch too when `reset_versions`.
    """
    now = _utc(now).replace(microsecond=0)
    if not 0 < days <= MAX_VALIDITY_DAYS:
        raise SigningError(f"validity must be 1 to {MAX_VALIDITY_DAYS} days, not {days}")
    if previous is not None and previous.root != root.public:
        raise SigningError("the previous keys.json was signed by another root key")
    revoked = _merge_revoked(previous, revoke)
    if any(key.key_id == signing.key_id for key in revoked):
        raise SigningError(f"signing key {signing.key_id_hex} is revoked: certify a new key")
    expires = now + timedelta(days=days)
    entry = CertifiedKey(signing, now, expires)
    kept = _still_valid(previous, now, revoked, signing)
    serial = (previous.serial if previous else 0) + 1
    epoch = (previous.epoch if previous else 0) + (1 if reset_versions else 0)
    document = {
        "created": format_time(now),
        "epoch": epoch,
        "expires": format_time(expires),
        "revoked": [key.line() for key in revoked],
        "root": root.public.line(),
        "serial": serial,
        "signing_keys": [_entry_json(item) for item in (entry, *kept)],
        "type": CERTIFICATE_TYPE,
    }
    data = canonical_json(document)
    return data, sign(root, data, trusted_comment(serial, epoch, expires))


def _merge_revoked(
    previous: KeyCertificate | None, revoke: tuple[PublicKey, ...]
) -> tuple[PublicKey, ...]:
    merged = {key.line(): key for key in (*(previous.revoked if previous else ()), *revoke)}
    return tuple(merged[line] for line in sorted(merged))


def _still_valid(
    previous: KeyCertificate | None,
    now: datetime,
    revoked: tuple[PublicKey, ...],
    signing: PublicKey,
) -> tuple[CertifiedKey, ...]:
    """Previous signing keys kept listed: not revoked, not replaced, not yet expired."""
    if previous is None:
        return ()
    revoked_ids = {key.key_id for key in revoked}
    kept = []
    for entry in previous.signing_keys:
        if entry.key.key_id == signing.key_id:
            if entry.key != signing:
                raise SigningError(f"another listed signing key has the id {signing.key_id_hex}")
            continue
        if entry.key.key_id not in revoked_ids and entry.valid_until > now:
            kept.append(entry)
    return tuple(kept[: MAX_SIGNING_KEYS - 1])


def _entry_json(entry: CertifiedKey) -> dict[str, str]:
    return {
        "key": entry.key.line(),
        "valid_from": format_time(entry.valid_from),
        "valid_until": format_time(entry.valid_until),
    }


# --- checking (the reader's side) --------------------------------------------------


def check_certificate(
    root: PublicKey, data: bytes, signature: bytes, *, now: datetime
) -> KeyCertificate:
    """keys.json checked against the root key, at time `now` (KeyCertificateError).

    Refuses a file not signed by `root`, not canonical, malformed, naming another root,
    whose trusted comment disagrees with it, without an expiry, or expired at `now`.
    Signing keys' validity and revocation are checked per key, at a time, by
    `signing_key_for`. `now` must carry a time zone.
    """
    now = _utc(now)
    certificate = read_signed_certificate(root, data, signature)
    if now >= certificate.expires:
        raise KeyCertificateError(
            f"{KEYS_FILE} expired at {format_time(certificate.expires)} (now "
            f"{format_time(now)}): the root must certify the signing key again "
            "(`mirror keys certify`); an expired certificate may hide a revocation"
        )
    return certificate


def read_signed_certificate(
    root: PublicKey, data: bytes, signature: bytes, *, legacy: bool = False
) -> KeyCertificate:
    """keys.json checked against the root key as `check_certificate` does, at no time.

    For the root's own side (carrying an expired certificate's revocations forward) and
    for reports of when a certificate expires. `legacy` accepts a file written before
    certificates had an expiry (taking the last signing key's end as its expiry).
    """
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise KeyCertificateError(f"{KEYS_FILE} is larger than {MAX_CERTIFICATE_BYTES} bytes")
    try:
        comment = verify(root, data, signature)
    except SignatureError as exc:
        raise KeyCertificateError(
            f"{KEYS_FILE} is not signed by the root key {root.key_id_hex}: {exc}"
        ) from None
    certificate, has_expiry = _parse_certificate(data, legacy=legacy)
    if certificate.root != root:
        raise KeyCertificateError(f"{KEYS_FILE} names another root key than {root.key_id_hex}")
    expires = certificate.expires if has_expiry else None
    if comment != trusted_comment(certificate.serial, certificate.epoch, expires):
        raise KeyCertificateError(
            f"{KEYS_SIGNATURE_FILE}: trusted comment {comment!r} does not match {KEYS_FILE}"
        )
    return certificate


def _parse_certificate(data: bytes, *, legacy: bool) -> tuple[KeyCertificate, bool]:
    """The certificate in canonical keys.json bytes, and whether it carries its own expiry
    (KeyCertificateError when malformed, or without expiry unless `legacy`)."""
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise KeyCertificateError(f"{KEYS_FILE} is not valid JSON: {exc}") from None
    fields = set(document) if isinstance(document, dict) else set()
    if fields == LEGACY_FIELDS and not legacy:
        raise KeyCertificateError(
            f"{KEYS_FILE} has no expiry (written by an older mirror), so a revoked key it "
            "certifies could be used for ever: certify again with `mirror keys certify`"
        )
    if fields not in (FIELDS, LEGACY_FIELDS):
        raise KeyCertificateError(f"{KEYS_FILE} must be an object with exactly {sorted(FIELDS)}")
    if canonical_json(document) != data:
        raise KeyCertificateError(f"{KEYS_FILE} is not in canonical form")
    if document["type"] != CERTIFICATE_TYPE:
        raise KeyCertificateError(f"{KEYS_FILE}: type must be {CERTIFICATE_TYPE!r}")
    signing_keys = _signing_keys(document["signing_keys"])
    has_expiry = fields == FIELDS
    certificate = KeyCertificate(
        root=_key(document["root"], "root"),
        serial=_count(document["serial"], "serial", minimum=1),
        epoch=_count(document["epoch"], "epoch", minimum=0),
        created=_time(document["created"], "created"),
        signing_keys=signing_keys,
        revoked=_revoked(document["revoked"]),
        expires=(
            _time(document["expires"], "expires")
            if has_expiry
            else max(entry.valid_until for entry in signing_keys)
        ),
    )
    _check_consistent(certificate)
    if has_expiry:
        _check_life(certificate)
    return certificate, has_expiry


def _signing_keys(value: Any) -> tuple[CertifiedKey, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SIGNING_KEYS:
        raise KeyCertificateError(f"signing_keys must list 1 to {MAX_SIGNING_KEYS} keys")
    entries = []
    for item in value:
        if not isinstance(item, dict) or set(item) != KEY_FIELDS:
            raise KeyCertificateError(f"each signing key must have exactly {sorted(KEY_FIELDS)}")
        entry = CertifiedKey(
            key=_key(item["key"], "signing_keys.key"),
            valid_from=_time(item["valid_from"], "valid_from"),
            valid_until=_time(item["valid_until"], "valid_until"),
        )
        if entry.valid_until <= entry.valid_from:
            raise KeyCertificateError(f"signing key {entry.key.key_id_hex}: empty validity")
        entries.append(entry)
    return tuple(entries)


def _revoked(value: Any) -> tuple[PublicKey, ...]:
    if not isinstance(value, list) or len(value) > MAX_REVOKED_KEYS:
        raise KeyCertificateError(f"revoked must list at most {MAX_REVOKED_KEYS} keys")
    return tuple(_key(item, "revoked") for item in value)


def _check_consistent(certificate: KeyCertificate) -> None:
    """No key listed twice by id, and no listed signing key also revoked."""
    ids = [entry.key.key_id for entry in certificate.signing_keys]
    if len(set(ids)) != len(ids):
        raise KeyCertificateError(f"{KEYS_FILE} lists one signing key id twice")
    for key_id in ids:
        if certificate.is_revoked(key_id):
            raise KeyCertificateError(f"{KEYS_FILE} lists a revoked key as a signing key")


def _check_life(certificate: KeyCertificate) -> None:
    """An expiry after the creation, and at most MAX_VALIDITY_DAYS later."""
    if not certificate.created < certificate.expires:
        raise KeyCertificateError(f"{KEYS_FILE}: expires must come after created")
    if certificate.expires - certificate.created > timedelta(days=MAX_VALIDITY_DAYS):
        raise KeyCertificateError(
            f"{KEYS_FILE}: expires is more than {MAX_VALIDITY_DAYS} days after created"
        )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise KeyCertificateError(f"{KEYS_FILE} has a duplicate key")
    return result


def _key(value: Any, name: str) -> PublicKey:
    if not isinstance(value, str):
        raise KeyCertificateError(f"{KEYS_FILE}: {name} must be an 'RW...' public key")
    try:
        return parse_public_key(value)
    except SigningError as exc:
        raise KeyCertificateError(f"{KEYS_FILE}: {name}: {exc}") from None


def _count(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 2**53:
        raise KeyCertificateError(f"{KEYS_FILE}: {name} must be a whole number >= {minimum}")
    return value


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or not TIME_PATTERN.match(value):
        raise KeyCertificateError(
            f"{KEYS_FILE}: {name} must be a UTC time like 2026-01-31T12:00:00Z"
        )
    try:
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise KeyCertificateError(f"{KEYS_FILE}: {name}: no such time {value!r}") from None


def format_time(value: datetime) -> str:
    """A time as keys.json spells it: "2026-01-31T12:00:00Z"."""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise SigningError("times must carry a time zone (UTC)")
    return value.astimezone(UTC)
