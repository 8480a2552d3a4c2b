"""keys.json: the offline root certifies, rotates and revokes the online signing key."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mirror.errors import KeyCertificateError, SigningError
from mirror.trust import minisign
from mirror.trust.certificate import (
    MAX_CERTIFICATE_BYTES,
    KeyCertificate,
    canonical_json,
    certify,
    check_certificate,
    read_signed_certificate,
)
from mirror.trust.minisign import SecretKey, generate_key

from stock_minisign import minisign_binary

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def root() -> SecretKey:
    return generate_key()


@pytest.fixture(scope="module")
def online() -> SecretKey:
    return generate_key()


def first(root: SecretKey, online: SecretKey, **kwargs: object) -> KeyCertificate:
    data, signature = certify(root, online.public, now=NOW, days=90, **kwargs)  # type: ignore[arg-type]
    return check_certificate(root.public, data, signature, now=NOW)


def resign(
    root: SecretKey, document: dict[str, object], comment: str | None = None
) -> tuple[bytes, bytes]:
    data = canonical_json(document)
    serial, epoch, expires = document["serial"], document["epoch"], document.get("expires")
    default = f"mirror-keys serial:{serial} epoch:{epoch}" + (
        f" expires:{expires}" if expires else ""
    )
    return data, minisign.sign(root, data, comment or default)


def test_certify_and_check_round_trip(root: SecretKey, online: SecretKey) -> None:
    data, signature = certify(root, online.public, now=NOW, days=90)
    certificate = check_certificate(root.public, data, signature, now=NOW + DAY)
    assert (certificate.serial, certificate.epoch) == (1, 0)
    assert certificate.root == root.public
    assert certificate.created == NOW
    assert certificate.revoked == ()
    assert certificate.expires == NOW + 90 * DAY
    assert certificate.signing_key_for(online.key_id, NOW + DAY) == online.public
    assert minisign.parse_signature(signature).trusted_comment == (
        "mirror-keys serial:1 epoch:0 expires:2027-02-18T12:00:00Z"
    )


def test_keys_json_is_canonical_and_readable(root: SecretKey, online: SecretKey) -> None:
    data, _ = certify(root, online.public, now=NOW + timedelta(microseconds=5), days=1)
    document = json.loads(data)
    assert data == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document == {
        "created": "2026-11-20T12:00:00Z",
        "epoch": 0,
        "expires": "2026-11-21T12:00:00Z",
        "revoked": [],
        "root": root.public.line(),
        "serial": 1,
        "signing_keys": [
            {
                "key": online.public.line(),
                "valid_from": "2026-11-20T12:00:00Z",
                "valid_until": "2026-11-21T12:00:00Z",
            }
        ],
        "type": "mirror-keys",
    }


def test_real_minisign_verifies_keys_json(
    tmp_path: Path, root: SecretKey, online: SecretKey
) -> None:
    data, signature = certify(root, online.public, now=NOW, days=90)
    (tmp_path / "keys.json").write_bytes(data)
    (tmp_path / "keys.json.minisig").write_bytes(signature)
    (tmp_path / "root.pub").write_text(root.public.file_text())
    result = subprocess.run(
        [
            minisign_binary(),
            "-Vm",
            str(tmp_path / "keys.json"),
            "-p",
            str(tmp_path / "root.pub"),
            "-Q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (
        0,
        "mirror-keys serial:1 epoch:0 expires:2027-02-18T12:00:00Z\n",
    )


def test_rotation_carries_serial_epoch_and_keeps_the_old_key_until_it_expires(
    root: SecretKey, online: SecretKey
) -> None:
    one = first(root, online)
    new = generate_key()
    data, signature = certify(root, new.public, now=NOW + 30 * DAY, days=90, previous=one)
    two = check_certificate(root.public, data, signature, now=NOW + 30 * DAY)
    assert (two.serial, two.epoch) == (2, 0)
    assert two.signing_key_for(new.key_id, NOW + 31 * DAY) == new.public
    assert two.signing_key_for(online.key_id, NOW + 31 * DAY) == online.public
    with pytest.raises(KeyCertificateError, match="expired"):
        two.signing_key_for(online.key_id, NOW + 91 * DAY)
    data, signature = certify(root, new.public, now=NOW + 100 * DAY, days=90, previous=two)
    three = check_certificate(root.public, data, signature, now=NOW + 100 * DAY)
    assert [entry.key for entry in three.signing_keys] == [new.public]
    assert three.serial == 3


def test_reset_versions_raises_the_epoch(root: SecretKey, online: SecretKey) -> None:
    one = first(root, online)
    data, signature = certify(
        root, online.public, now=NOW + DAY, days=90, previous=one, reset_versions=True
    )
    two = check_certificate(root.public, data, signature, now=NOW + DAY)
    assert (two.serial, two.epoch) == (2, 1)
    assert minisign.parse_signature(signature).trusted_comment == (
        "mirror-keys serial:2 epoch:1 expires:2027-02-19T12:00:00Z"
    )
    data, signature = certify(root, online.public, now=NOW + 2 * DAY, days=90, previous=two)
    assert check_certificate(root.public, data, signature, now=NOW + 2 * DAY).epoch == 1


def test_revocation_is_carried_forward_forever(root: SecretKey, online: SecretKey) -> None:
    one = first(root, online)
    new = generate_key()
    data, signature = certify(
        root, new.public, now=NOW + DAY, days=90, previous=one, revoke=(online.public,)
    )
    two = check_certificate(root.public, data, signature, now=NOW + DAY)
    assert two.revoked == (online.public,)
    assert [entry.key for entry in two.signing_keys] == [new.public]
    with pytest.raises(KeyCertificateError, match="revoked"):
        two.signing_key_for(online.key_id, NOW + DAY)
    newer = generate_key()
    data, signature = certify(root, newer.public, now=NOW + 2 * DAY, days=90, previous=two)
    three = check_certificate(root.public, data, signature, now=NOW + 2 * DAY)
    assert three.revoked == (online.public,)
    assert three.signing_key_for(new.key_id, NOW + 2 * DAY) == new.public
    with pytest.raises(SigningError, match="revoked"):
        certify(root, online.public, now=NOW + 3 * DAY, days=90, previous=three)


def test_revoking_the_key_being_certified_is_refused(root: SecretKey, online: SecretKey) -> None:
    with pytest.raises(SigningError, match="revoked"):
        certify(root, online.public, now=NOW, days=90, revoke=(online.public,))


def test_validity_window(root: SecretKey, online: SecretKey) -> None:
    certificate = first(root, online)
    with pytest.raises(KeyCertificateError, match="not valid before"):
        certificate.signing_key_for(online.key_id, NOW - timedelta(seconds=1))
    assert certificate.signing_key_for(online.key_id, NOW + 90 * DAY - timedelta(seconds=1))
    with pytest.raises(KeyCertificateError, match="expired"):
        certificate.signing_key_for(online.key_id, NOW + 90 * DAY)


def test_unknown_signing_key(root: SecretKey, online: SecretKey) -> None:
    stranger = generate_key()
    with pytest.raises(KeyCertificateError, match=f"{stranger.public.key_id_hex} is not certified"):
        first(root, online).signing_key_for(stranger.key_id, NOW)


def test_expired_certificate_is_refused_naming_keys_json_and_can_be_renewed(
    root: SecretKey, online: SecretKey
) -> None:
    data, signature = certify(root, online.public, now=NOW, days=7, revoke=(generate_key().public,))
    assert check_certificate(root.public, data, signature, now=NOW + 7 * DAY - timedelta(seconds=1))
    later = NOW + 30 * DAY
    with pytest.raises(KeyCertificateError, match=r"keys\.json expired at 2026-11-27T12:00:00Z"):
        check_certificate(root.public, data, signature, now=later)
    expired = read_signed_certificate(root.public, data, signature)  # the root's side
    with pytest.raises(KeyCertificateError, match="expired at 2026-11-27T12:00:00Z"):
        expired.signing_key_for(online.key_id, later)
    data, signature = certify(root, online.public, now=later, days=7, previous=expired)
    renewed = check_certificate(root.public, data, signature, now=later)
    assert renewed.serial == 2
    assert renewed.revoked == expired.revoked
    assert renewed.signing_key_for(online.key_id, later) == online.public


def test_the_certificate_expires_even_if_a_kept_key_lasts_longer(
    root: SecretKey, online: SecretKey
) -> None:
    one = first(root, online)  # online: valid for 90 days
    data, signature = certify(root, generate_key().public, now=NOW + DAY, days=10, previous=one)
    two = check_certificate(root.public, data, signature, now=NOW + DAY)
    assert two.expires == NOW + 11 * DAY
    assert two.signing_key_for(online.key_id, NOW + 2 * DAY) == online.public
    with pytest.raises(KeyCertificateError, match=r"keys\.json expired"):
        check_certificate(root.public, data, signature, now=NOW + 11 * DAY)


def legacy_certificate(root: SecretKey, online: SecretKey) -> tuple[bytes, bytes]:
    """A keys.json as mirror wrote it before certificates expired: no "expires"."""
    document = good_document(root, online)
    del document["expires"]
    return resign(root, document)


def test_a_keys_json_without_expiry_is_refused_but_the_root_renews_it(
    root: SecretKey, online: SecretKey
) -> None:
    data, signature = legacy_certificate(root, online)
    assert minisign.parse_signature(signature).trusted_comment == "mirror-keys serial:1 epoch:0"
    with pytest.raises(KeyCertificateError, match="no expiry"):
        check_certificate(root.public, data, signature, now=NOW)
    with pytest.raises(KeyCertificateError, match="no expiry"):
        read_signed_certificate(root.public, data, signature)
    revoked = generate_key().public
    document = json.loads(data) | {"revoked": [revoked.line()]}
    data, signature = resign(root, document)
    old = read_signed_certificate(root.public, data, signature, legacy=True)
    assert old.expires == NOW + 90 * DAY  # its last key's end
    data, signature = certify(root, online.public, now=NOW + DAY, days=45, previous=old)
    renewed = check_certificate(root.public, data, signature, now=NOW + DAY)
    assert (renewed.serial, renewed.revoked) == (2, (revoked,))


def test_the_expiry_must_be_signed_in_the_trusted_comment_too(
    root: SecretKey, online: SecretKey
) -> None:
    document = good_document(root, online)
    data, signature = resign(root, document, "mirror-keys serial:1 epoch:0")
    with pytest.raises(KeyCertificateError, match="trusted comment"):
        check_certificate(root.public, data, signature, now=NOW)


def test_wrong_root(root: SecretKey, online: SecretKey) -> None:
    data, signature = certify(root, online.public, now=NOW, days=90)
    impostor = generate_key()
    with pytest.raises(KeyCertificateError, match="not signed by the root key"):
        check_certificate(impostor.public, data, signature, now=NOW)
    # signed by the impostor, but naming the real root inside
    forged, forged_signature = resign(impostor, json.loads(data))
    with pytest.raises(KeyCertificateError, match="names another root"):
        check_certificate(impostor.public, forged, forged_signature, now=NOW)


def test_online_key_cannot_certify_itself(root: SecretKey, online: SecretKey) -> None:
    data, signature = certify(online, online.public, now=NOW, days=90)
    with pytest.raises(KeyCertificateError, match="not signed by the root key"):
        check_certificate(root.public, data, signature, now=NOW)


def test_tampered_json_fails(root: SecretKey, online: SecretKey) -> None:
    data, signature = certify(root, online.public, now=NOW, days=90)
    tampered = data.replace(b"2027-02-18", b"2099-02-18")
    assert tampered != data
    with pytest.raises(KeyCertificateError, match="not signed by the root"):
        check_certificate(root.public, tampered, signature, now=NOW)


def test_trusted_comment_must_agree(root: SecretKey, online: SecretKey) -> None:
    data, _ = certify(root, online.public, now=NOW, days=90)
    data, signature = resign(root, json.loads(data), comment="mirror-keys serial:9 epoch:0")
    with pytest.raises(KeyCertificateError, match="trusted comment"):
        check_certificate(root.public, data, signature, now=NOW)


def test_previous_from_another_root_is_refused(root: SecretKey, online: SecretKey) -> None:
    one = first(root, online)
    with pytest.raises(SigningError, match="another root"):
        certify(generate_key(), online.public, now=NOW, days=9, previous=one)


def test_bad_arguments(root: SecretKey, online: SecretKey) -> None:
    with pytest.raises(SigningError, match="days"):
        certify(root, online.public, now=NOW, days=0)
    with pytest.raises(SigningError, match="1 to 180 days, not 181"):
        certify(root, online.public, now=NOW, days=181)
    assert certify(root, online.public, now=NOW, days=180)
    with pytest.raises(SigningError, match="time zone"):
        certify(root, online.public, now=datetime(2026, 1, 1), days=1)


def good_document(root: SecretKey, online: SecretKey) -> dict[str, object]:
    data, _ = certify(root, online.public, now=NOW, days=90)
    document: dict[str, object] = json.loads(data)
    return document


MALFORMED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "type": lambda d: d | {"type": "other"},
    "exactly": lambda d: {k: v for k, v in d.items() if k != "revoked"},
    "serial": lambda d: d | {"serial": 0},
    "epoch": lambda d: d | {"epoch": -1},
    "whole number": lambda d: d | {"serial": True},
    "UTC time": lambda d: d | {"created": "2026-11-20 12:00"},
    "no such time": lambda d: d | {"created": "2026-02-30T12:00:00Z"},
    "RW": lambda d: d | {"root": 5},
    "garbled public key": lambda d: d | {"root": "RWnotakey"},
    "signing_keys must list": lambda d: d | {"signing_keys": []},
    "revoked must list": lambda d: d | {"revoked": "RW"},
    "empty validity": lambda d: (
        d | {"signing_keys": [d["signing_keys"][0] | {"valid_until": "2026-11-20T12:00:00Z"}]}
    ),
    "twice": lambda d: d | {"signing_keys": d["signing_keys"] * 2},
    "revoked key": lambda d: d | {"revoked": [d["signing_keys"][0]["key"]]},
    "after created": lambda d: d | {"expires": d["created"]},
    "more than 180 days": lambda d: d | {"expires": "2027-05-20T12:00:01Z"},
    "expires must be a UTC time": lambda d: d | {"expires": 1},
}


@pytest.mark.parametrize("message", MALFORMED)
def test_malformed_certificates_signed_by_the_root(
    root: SecretKey, online: SecretKey, message: str
) -> None:
    document = MALFORMED[message](good_document(root, online))
    serial, expires = document.get("serial"), document.get("expires")
    comment = f"mirror-keys serial:{serial} epoch:{document.get('epoch')} expires:{expires}"
    data, signature = resign(root, document, comment)
    with pytest.raises(KeyCertificateError, match=message):
        check_certificate(root.public, data, signature, now=NOW)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"a":1,"a":2}',
        b"[" * 5_000 + b"]" * 5_000,
    ],
)
def test_garbage_signed_by_the_root(root: SecretKey, data: bytes) -> None:
    signature = minisign.sign(root, data, "mirror-keys serial:1 epoch:0")
    with pytest.raises(KeyCertificateError):
        check_certificate(root.public, data, signature, now=NOW)


def test_non_canonical_spelling_is_refused(root: SecretKey, online: SecretKey) -> None:
    document = good_document(root, online)
    data = json.dumps(document, indent=2).encode()
    signature = minisign.sign(
        root, data, f"mirror-keys serial:1 epoch:0 expires:{document['expires']}"
    )
    with pytest.raises(KeyCertificateError, match="canonical"):
        check_certificate(root.public, data, signature, now=NOW)


def test_oversized_certificate_and_garbled_signature(root: SecretKey, online: SecretKey) -> None:
    with pytest.raises(KeyCertificateError, match="larger than"):
        check_certificate(root.public, b" " * (MAX_CERTIFICATE_BYTES + 1), b"", now=NOW)
    data, signature = certify(root, online.public, now=NOW, days=90)
    with pytest.raises(KeyCertificateError, match="truncated"):
        check_certificate(root.public, data, signature[:50], now=NOW)
