"""`mirror doctor` against real servers: the sample newsroom's feed, folder mirrors
served over HTTP, moto's S3 server, aiosmtpd (plain, STARTTLS, AUTH), Dovecot, a port
with nothing listening; keys.json near or past its expiry; no secret in any output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from mirror.config import load_config
from mirror.doctor import DoctorReport, keys_expiry_check, run_checks
from mirror.newsroom import RunningNewsroom
from mirror.trust import certificate, minisign

from cli_configs import cli, mirror_table, sync_config
from dovecot import Dovecot
from moto_server import create_bucket
from servers import closed_port
from smtp_servers import Certificate, make_certificate, smtp_server
from stalled_servers import StalledServer

UNSUBSCRIBE = "unsubscribe-secret-3f9a1c-never-shown"
SMTP_PASSWORD = "smtp-password-7d2e-never-shown"
IMAP_WRONG = "imap-password-wrong-51bc-never-shown"
MAILIN_SECRET = "mailin-sender-secret-88e0-never-shown"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", UNSUBSCRIBE)
    monkeypatch.setenv("MIRROR_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("MIRROR_MAILIN_SECRET", MAILIN_SECRET)


@pytest.fixture
def cert(tmp_path: Path) -> Certificate:
    return make_certificate(tmp_path)


def by_name(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {check["name"]: check for check in report["checks"]}


def add(config: str, text: str) -> str:
    path = Path(config)
    path.write_text(path.read_text() + text, encoding="utf-8")
    return config


def mailin_section(url: str, username: str) -> str:
    return (
        f'\n[mailin]\naddress = "news@example.org"\nimap_url = "{url}"\n'
        f'username = "{username}"\ntrusted_authserv_ids = ["mx.example.org"]\n'
    )


@pytest.mark.usefixtures("secrets")
def test_a_good_config_passes_and_a_fresh_mirror_only_warns(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = sync_config(tmp_path, newsroom, web_root)
    status, report, err = cli(capsys, "-c", config, "doctor", "--json")
    checks = by_name(report)
    assert status == 0 and report["ok"], err
    assert list(checks)[:4] == ["config", "signing key", "output_dir", "secrets"]
    assert checks["mirror site storage"]["ok"]
    public = checks["mirror site public"]
    assert public["ok"] and public["warning"] and "nothing published" in public["detail"]
    assert checks[f"feed {newsroom.base_url}rss.xml"]["ok"]
    assert "WARN mirror site public:" in err and "`mirror publish`" in err

    assert cli(capsys, "-c", config, "sync")[0] == 0
    status, report, err = cli(capsys, "-c", config, "doctor", "--json")
    public = by_name(report)["mirror site public"]
    assert status == 0 and not public["warning"] and "live version 1" in public["detail"]
    assert "ok   mirror site public:" in err and "0 failed, 0 warnings" in err


@pytest.mark.usefixtures("secrets")
def test_a_config_that_does_not_load_is_one_fail_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mirror.toml"
    path.write_text('[[mirrors]]\nnmae = "a"\n', encoding="utf-8")
    status, report, err = cli(capsys, "-c", str(path), "doctor", "--json")
    assert status == 2 and not report["ok"]
    assert [c["name"] for c in report["checks"]] == ["config"]
    assert err.startswith("FAIL config: ") and "edit the file" in err
    assert cli(capsys, "-c", str(tmp_path / "none.toml"), "doctor")[0] == 2


@pytest.mark.usefixtures("secrets", "aws_env")
def test_s3_mirrors_credentials_and_public_readability(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, private = create_bucket(moto_endpoint), create_bucket(moto_endpoint)
    missing = f"{good}-none"
    config = sync_config(tmp_path, newsroom, web_root)
    for name, bucket in (("good", good), ("private", private), ("missing", missing)):
        add(config, mirror_table(
            name, type="s3", bucket=bucket, endpoint_url=moto_endpoint, region="us-east-1",
            public_url=f"{moto_endpoint}/{bucket}/",
        ))  # fmt: skip
    assert cli(capsys, "-c", config, "mirrors", "setup", "good", "--provider", "minio")[0] == 0
    # published, never made public (moto, unlike S3, answers 404 for a missing key)
    boto3.client("s3", endpoint_url=moto_endpoint).put_object(
        Bucket=private, Key="current", Body=b"1\n"
    )

    status, report, err = cli(capsys, "-c", config, "doctor", "--json")
    checks = by_name(report)
    assert status == 1 and not report["ok"]
    assert (
        checks["mirror good storage"]["ok"]
        and "HeadBucket" in checks["mirror good storage"]["detail"]
    )
    assert checks["mirror good public"]["ok"]
    assert checks["mirror private storage"]["ok"]
    assert not checks["mirror private public"]["ok"]
    private_line = "FAIL mirror private public: not public: readers get 403 Forbidden (after "
    # "403" alone could be in a port or a duration: count the words around it
    assert private_line in err and "403 (403)" not in err and err.count("403 Forbidden") == 1
    assert "s): run `mirror mirrors setup private`, or check the bucket policy" in err
    missing_storage = checks["mirror missing storage"]
    assert not missing_storage["ok"] and "does not exist" in missing_storage["detail"]
    assert "mirror mirrors setup missing" in missing_storage["fix"]


@pytest.mark.usefixtures("secrets", "aws_env")
def test_refused_credentials_name_the_likely_causes(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = add(sync_config(tmp_path, newsroom, web_root), mirror_table(
        "s3", type="s3", bucket="some-bucket", endpoint_url=f"http://127.0.0.1:{closed_port()}",
        region="us-east-1", public_url="http://127.0.0.1:9/some-bucket/",
    ))  # fmt: skip
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    report = doctor(Path(config))
    storage = named(report, "mirror s3 storage")
    assert not storage.ok and "no S3 credentials" in storage.detail
    assert "AWS_ACCESS_KEY_ID" in storage.fix and "region" in storage.fix


def doctor(path: Path, **options: object) -> DoctorReport:
    import asyncio

    config = load_config(path)
    return asyncio.run(run_checks(config, now=datetime.now(UTC), **options))  # type: ignore[arg-type]


def named(report: DoctorReport, name: str):  # type: ignore[no-untyped-def]
    return next(check for check in report.checks if check.name == name)


@pytest.mark.usefixtures("secrets")
def test_smtp_plain_starttls_login_and_failures(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    cert: Certificate,
) -> None:
    base = sync_config(tmp_path, newsroom, web_root)
    text = Path(base).read_text()

    def with_smtp(url: str, username: str = "") -> Path:
        path = tmp_path / "smtp.toml"
        extra = f'smtp_url = "{url}"\nsmtp_username = "{username}"\n'
        path.write_text(text.replace("[digest]\n", "[digest]\n" + extra), encoding="utf-8")
        return path

    with smtp_server() as plain:
        check = named(doctor(with_smtp(f"smtp+insecure://127.0.0.1:{plain.port}")), "smtp")
        assert check.ok and "no TLS" in check.detail, check
        assert not plain.handler.received and plain.handler.attempts == 0  # no mail sent
    logins = {"mirror": SMTP_PASSWORD}
    with smtp_server(starttls=cert.server_context(), logins=logins) as tls:
        url = f"smtp://127.0.0.1:{tls.port}"
        trusted = cert.client_context()
        check = named(doctor(with_smtp(url, "mirror"), tls_context=trusted), "smtp")
        assert check.ok and "STARTTLS, login accepted" in check.detail, check
        untrusted = named(doctor(with_smtp(url, "mirror")), "smtp")  # the system's CAs only
        assert not untrusted.ok and "TLS failed" in untrusted.detail
        assert "certificate" in untrusted.fix
        wrong = named(doctor(with_smtp(url, "someone"), tls_context=trusted), "smtp")
        assert not wrong.ok and "login refused" in wrong.detail
        assert "smtp_username" in wrong.fix
        assert not tls.handler.received
    port = closed_port()
    refused = named(doctor(with_smtp(f"smtp+insecure://127.0.0.1:{port}")), "smtp")
    assert not refused.ok and "cannot connect" in refused.detail and "port" in refused.fix
    assert (
        refused.line().startswith("FAIL smtp: cannot connect") and " s): check " in refused.line()
    )


@pytest.mark.usefixtures("secrets")
def test_imap_login_ok_and_a_wrong_password_fails_without_showing_it(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = add(sync_config(tmp_path, newsroom, web_root),
                 mailin_section(dovecot.url(), dovecot.username))  # fmt: skip
    monkeypatch.setenv("MIRROR_IMAP_PASSWORD", dovecot.password)
    status, report, err = cli(capsys, "-c", config, "doctor", "--json")
    imap = by_name(report)["imap"]
    assert status == 0 and imap["ok"] and "login accepted" in imap["detail"], err
    assert dovecot.password not in err + str(report)

    monkeypatch.setenv("MIRROR_IMAP_PASSWORD", IMAP_WRONG)
    monkeypatch.setenv("MIRROR_SMTP_PASSWORD", SMTP_PASSWORD)
    status, report, err = cli(capsys, "-c", config, "doctor", "--json", "-vv")
    imap = by_name(report)["imap"]
    assert status == 1 and not imap["ok"] and "login refused" in imap["detail"]
    assert "mailin.username" in imap["fix"]
    assert "FAIL imap: " in err
    everything = err + str(report)
    for secret in (IMAP_WRONG, UNSUBSCRIBE, MAILIN_SECRET, SMTP_PASSWORD, dovecot.password):
        assert secret not in everything


@pytest.mark.usefixtures("secrets")
def test_missing_secrets_are_named_by_variable_not_value(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = sync_config(tmp_path, newsroom, web_root)
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", "short")
    status, report, err = cli(capsys, "-c", config, "doctor", "--json")
    secrets = by_name(report)["secrets"]
    assert status == 1 and not secrets["ok"]
    assert "$MIRROR_UNSUBSCRIBE_SECRET" in secrets["detail"] and "short" not in secrets["detail"]
    assert "FAIL secrets:" in err


@pytest.mark.usefixtures("secrets")
def test_keys_json_expired_soon_or_fine(
    tmp_path: Path, newsroom: RunningNewsroom, web_root: tuple[Path, str]
) -> None:
    config = Path(sync_config(tmp_path, newsroom, web_root))
    root = minisign.generate_key()
    minisign.write_key_pair(root, tmp_path / "root.key", tmp_path / "root.pub", None)
    text = config.read_text().replace(
        "[signing]\n", f'[signing]\nroot_public_key_file = "{tmp_path / "root.pub"}"\n'
    )
    config.write_text(text, encoding="utf-8")
    signing = minisign.load_public_key(tmp_path / "keys" / "mirror.pub")
    now = datetime.now(UTC)

    def certified(start: datetime, days: int) -> object:
        data, signature = certificate.certify(root, signing, now=start, days=days)
        (tmp_path / "keys" / "keys.json").write_bytes(data)
        (tmp_path / "keys" / "keys.json.minisig").write_bytes(signature)
        return named(doctor(config), "keys.json")

    missing = named(doctor(config), "keys.json")
    assert not missing.ok and "missing" in missing.detail and "keys certify" in missing.fix
    expired = certified(now - timedelta(days=10), 5)
    assert not expired.ok and "expired" in expired.detail and "keys certify" in expired.fix  # type: ignore[attr-defined]
    soon = certified(now - timedelta(days=1), 4)
    assert not soon.ok and "in 3." in soon.detail  # type: ignore[attr-defined]
    warned = certified(now, 10)
    assert warned.ok and warned.warning  # type: ignore[attr-defined]
    fine = certified(now, 45)
    assert fine.ok and not fine.warning  # type: ignore[attr-defined]


def test_keys_expiry_thresholds() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    path = Path("keys.json")
    for days, ok, warning in ((-1, False, False), (6.9, False, False), (7.1, True, True),
                              (13.9, True, True), (14.1, True, False)):  # fmt: skip
        check = keys_expiry_check(now + timedelta(days=days), now, path)
        assert (check.ok, check.warning) == (ok, warning), days
        assert check.line().startswith("ok   " if ok and not warning else "WARN" if ok else "FAIL")


@pytest.mark.usefixtures("secrets")
def test_unwritable_output_dir_and_folder_mirror_fail(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
) -> None:
    config = add(sync_config(tmp_path, newsroom, web_root), mirror_table(
        "blocked", type="directory", path=str(tmp_path / "file" / "under"),
        public_url="http://127.0.0.1:9/",
    ))  # fmt: skip
    (tmp_path / "file").write_text("not a folder")
    report = doctor(Path(config))
    storage = named(report, "mirror blocked storage")
    assert not storage.ok and "not a folder" in storage.detail
    public = named(report, "mirror blocked public")
    assert not public.ok and "127.0.0.1:9" in public.fix


@pytest.mark.usefixtures("secrets")
def test_the_whole_run_stays_within_its_deadline(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
) -> None:
    import socket

    silent = socket.socket()  # accepts connections (backlog) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        base = Path(sync_config(tmp_path, newsroom, web_root))
        base.write_text(base.read_text().replace(
            "[digest]\n",
            f'[digest]\nsmtp_url = "smtp+insecure://127.0.0.1:{silent.getsockname()[1]}"\n',
        ))  # fmt: skip
        report = doctor(base, deadline_s=1.0)
    finally:
        silent.close()
    smtp = named(report, "smtp")
    assert not smtp.ok and "no answer within 1 s (--deadline-s)" in smtp.detail
    assert named(report, "secrets").ok  # the other checks still report


@pytest.mark.usefixtures("secrets")
def test_a_silent_smtp_server_names_digest_timeout_s_as_digest_send_does(
    tmp_path: Path, newsroom: RunningNewsroom, web_root: tuple[Path, str]
) -> None:
    with StalledServer() as silent:
        digest = f'smtp_url = "smtp+insecure://127.0.0.1:{silent.port}"\ntimeout_s = 1\n'
        report = doctor(Path(sync_config(tmp_path, newsroom, web_root, digest)))
    line = named(report, "smtp").line()
    assert line.startswith("FAIL smtp: no answer within 1 s (digest.timeout_s) (after "), line


def test_a_missing_imap_password_is_local_and_says_no_after(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MIRROR_IMAP_PASSWORD", raising=False)
    url = f"imap+insecure://127.0.0.1:{closed_port()}"
    config = add(sync_config(tmp_path, newsroom, web_root), mailin_section(url, "reader"))
    imap = named(doctor(Path(config)), "imap")
    assert not imap.ok and "not set" in imap.detail and "password" in imap.fix
    assert "(after" not in imap.line() and imap.line().startswith("FAIL imap: "), imap.line()


@pytest.mark.usefixtures("secrets", "aws_env")
def test_pools_provider_reachable_or_not(
    tmp_path: Path, newsroom: RunningNewsroom, web_root: tuple[Path, str], moto_endpoint: str
) -> None:
    pools = (
        f'\n[[pools]]\nname = "moto"\ntype = "s3"\nbucket = "news-{{random8}}"\n'
        f'endpoint_url = "{moto_endpoint}"\nregion = "us-east-1"\n'
        f'public_url = "{moto_endpoint}/{{bucket}}/"\n'
        f'\n[[pools]]\nname = "down"\ntype = "s3"\nbucket = "news-{{random8}}"\n'
        f'endpoint_url = "http://127.0.0.1:{closed_port()}"\nregion = "us-east-1"\n'
        f'public_url = "https://x.example/{{bucket}}/"\n'
        f'\n[[pools]]\nname = "folders"\ntype = "directory"\nbucket = "news-{{random8}}"\n'
        f'path = "{tmp_path / "pool" / "{bucket}"}"\npublic_url = "https://y.example/{{bucket}}/"\n'
    )
    report = doctor(Path(add(sync_config(tmp_path, newsroom, web_root), pools)))
    assert named(report, "pool moto").ok and "ListBuckets" in named(report, "pool moto").detail
    down = named(report, "pool down")
    assert not down.ok and "cannot connect" in down.detail and "endpoint_url" in down.fix
    assert named(report, "pool folders").ok


@pytest.mark.usefixtures("secrets")
def test_a_signing_key_that_does_not_match_or_lacks_its_passphrase(
    tmp_path: Path, newsroom: RunningNewsroom, web_root: tuple[Path, str]
) -> None:
    config = Path(sync_config(tmp_path, newsroom, web_root))
    assert named(doctor(config), "signing key").ok
    other = minisign.generate_key()
    minisign.write_key_pair(other, tmp_path / "o.key", tmp_path / "o.pub", "a passphrase")
    (tmp_path / "keys" / "mirror.pub").write_bytes((tmp_path / "o.pub").read_bytes())
    mismatch = named(doctor(config), "signing key")
    assert not mismatch.ok and "not the public half" in mismatch.detail
    text = config.read_text().replace(
        'secret_key_file = "' + str(tmp_path / "keys" / "mirror.key"),
        'passphrase_env = "NO_SUCH_PASSPHRASE_VAR"\nsecret_key_file = "' + str(tmp_path / "o.key"),
    )
    config.write_text(text, encoding="utf-8")
    locked = named(doctor(config), "signing key")
    assert not locked.ok and "$NO_SUCH_PASSPHRASE_VAR" in locked.detail
    assert "passphrase" in locked.fix


@pytest.mark.usefixtures("secrets")
def test_imaps_certificate_trusted_or_not(
    tmp_path: Path,
    newsroom: RunningNewsroom,
    web_root: tuple[Path, str],
    dovecot_tls: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Path(add(sync_config(tmp_path, newsroom, web_root),
                      mailin_section(dovecot_tls.url("imaps"), dovecot_tls.username)))  # fmt: skip
    monkeypatch.setenv("MIRROR_IMAP_PASSWORD", dovecot_tls.password)
    assert dovecot_tls.certificate is not None
    trusted = named(doctor(config, tls_context=dovecot_tls.certificate.client_context()), "imap")
    assert trusted.ok, trusted
    untrusted = named(doctor(config), "imap")  # the system's CAs only
    assert not untrusted.ok and "certificate" in untrusted.detail, untrusted
