"""`mirror keys certify` and the build's check of keys.json: the certificate's life is
bounded, ops are warned in time, and an expired or expiry-less keys.json is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.config import load_config
from mirror.errors import ConfigError
from mirror.newsroom import config_for
from mirror.trust import certificate, minisign
from mirror.trust.keyfiles import checked_certificate

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Setup:
    config: Path
    root: minisign.SecretKey
    root_key: Path  # the root's secret key file
    signing: minisign.SecretKey
    keys_json: Path


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    root, signing = minisign.generate_key(), minisign.generate_key()
    offline = tmp_path / "offline"
    minisign.write_key_pair(root, offline / "root.key", offline / "root.pub", None)
    keys_dir = tmp_path / "keys"
    minisign.write_key_pair(signing, keys_dir / "mirror.key", keys_dir / "mirror.pub", None)
    text = config_for("http://127.0.0.1:9/", tmp_path).replace(
        "[signing]\n", f'[signing]\nroot_public_key_file = "{offline / "root.pub"}"\n'
    )
    config = tmp_path / "mirror.toml"
    config.write_text(text, encoding="utf-8")
    return Setup(config, root, offline / "root.key", signing, keys_dir / "keys.json")


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """One moment, which the CLI's clock keeps too (else it may be a second later)."""
    moment = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr("mirror.cli.utc_now", lambda: moment)
    return moment


def certify(setup: Setup, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    args = ["-c", str(setup.config), "keys", "certify", "--root-key", str(setup.root_key)]
    status = run([*args, *extra])
    return status, capsys.readouterr().err


def written(setup: Setup) -> dict[str, object]:
    document: dict[str, object] = json.loads(setup.keys_json.read_bytes())
    return document


def put_certificate(setup: Setup, data: bytes, signature: bytes) -> None:
    setup.keys_json.write_bytes(data)
    setup.keys_json.with_name("keys.json.minisig").write_bytes(signature)


def test_certify_lasts_45_days_by_default_and_at_most_180(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = certify(setup, capsys, "--days", "181")
    assert status == 2 and "--days must be 1 to 180, not 181" in err
    assert not setup.keys_json.exists()
    assert certify(setup, capsys, "--days", "0")[0] == 2
    status, err = certify(setup, capsys)
    assert status == 0 and "certified for 45 days (serial 1, expires " in err
    document = written(setup)
    created = datetime.fromisoformat(str(document["created"]))
    assert datetime.fromisoformat(str(document["expires"])) - created == 45 * DAY
    assert "warning" not in err
    status, err = certify(setup, capsys, "--days", "180")
    assert status == 0 and written(setup)["serial"] == 2


def test_certify_warns_when_the_signing_key_is_due_for_renewal(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = certify(setup, capsys, "--days", "10")
    assert status == 0
    assert "warning: the signing key is due for renewal: keys.json expires at" in err
    assert "within 14 days" in err
    status, err = certify(setup, capsys, "--days", "15")
    assert status == 0 and "due for renewal" not in err


def test_an_expired_keys_json_stops_the_build_and_the_root_renews_it(
    setup: Setup, capsys: pytest.CaptureFixture[str], now: datetime
) -> None:
    revoked = minisign.generate_key().public
    data, signature = certificate.certify(
        setup.root, setup.signing.public, now=now - 60 * DAY, days=30, revoke=(revoked,)
    )
    put_certificate(setup, data, signature)
    config = load_config(setup.config)
    with pytest.raises(ConfigError, match=r"keys\.json expired at "):
        checked_certificate(config, setup.signing, now)
    status, err = certify(setup, capsys)
    assert status == 0
    assert "warning: the previous keys.json (serial 1) expired at" in err
    assert written(setup)["revoked"] == [revoked.line()] and written(setup)["serial"] == 2
    files, epoch = checked_certificate(config, setup.signing, now)
    assert epoch == 0 and files[0] == setup.keys_json.read_bytes()


def test_a_keys_json_without_expiry_is_refused_until_certified_again(
    setup: Setup, capsys: pytest.CaptureFixture[str], now: datetime
) -> None:
    data, _ = certificate.certify(setup.root, setup.signing.public, now=now, days=90)
    document = json.loads(data)
    del document["expires"]
    legacy = certificate.canonical_json(document)
    put_certificate(
        setup, legacy, minisign.sign(setup.root, legacy, "mirror-keys serial:1 epoch:0")
    )
    config = load_config(setup.config)
    with pytest.raises(ConfigError, match="no expiry"):
        checked_certificate(config, setup.signing, now)
    assert certify(setup, capsys)[0] == 0
    assert written(setup)["serial"] == 2
    checked_certificate(config, setup.signing, now)
