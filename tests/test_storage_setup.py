"""`mirror mirrors setup`: buckets made and opened to readers, against moto's S3 server."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest

from mirror.config import MirrorConfig
from mirror.errors import ConfigError, MirrorUnreachableError, UsageError
from mirror.storage import provision
from mirror.storage.provision import POLICY_SID, public_read_policy, setup_mirror
from mirror.storage.s3 import detect_provider

from moto_server import new_bucket_name, s3_mirror
from servers import closed_port

pytestmark = pytest.mark.usefixtures("aws_env")


def raw_client(endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=region)


def policy_statements(endpoint: str, bucket: str) -> list[dict[str, Any]]:
    policy = json.loads(raw_client(endpoint).get_bucket_policy(Bucket=bucket)["Policy"])
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


def test_aws_creates_opens_and_adds_the_policy(moto_endpoint: str) -> None:
    bucket = new_bucket_name()
    mirror = s3_mirror(moto_endpoint, bucket, region="eu-central-1", prefix="news")
    steps = setup_mirror(mirror, "aws")
    assert steps[0] == f"created bucket {bucket} in eu-central-1"
    client = raw_client(moto_endpoint, "eu-central-1")
    assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-central-1"
    block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert not any(block.values())
    statement = policy_statements(moto_endpoint, bucket)[0]
    assert statement["Sid"] == POLICY_SID
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["s3:GetObject"]
    assert statement["Resource"] == [f"arn:aws:s3:::{bucket}/news/*"]
    assert statement["Principal"] == {"AWS": ["*"]}


@pytest.mark.slow
def test_aws_twice_is_harmless_and_keeps_other_statements(moto_endpoint: str) -> None:
    bucket = new_bucket_name()
    mirror = s3_mirror(moto_endpoint, bucket)
    setup_mirror(mirror, "aws")
    other = {
        "Sid": "Ops",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    statements = [*policy_statements(moto_endpoint, bucket), other]
    raw_client(moto_endpoint).put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
    )
    steps = setup_mirror(mirror, "aws")
    assert steps[0] == f"bucket {bucket} exists"
    assert steps[2].startswith("public read policy already set")
    assert [s["Sid"] for s in policy_statements(moto_endpoint, bucket)] == [POLICY_SID, "Ops"]


def test_aws_corrects_a_changed_prefix(moto_endpoint: str) -> None:
    bucket = new_bucket_name()
    setup_mirror(s3_mirror(moto_endpoint, bucket, prefix="old/"), "aws")
    setup_mirror(s3_mirror(moto_endpoint, bucket, prefix="new/"), "aws")
    statements = policy_statements(moto_endpoint, bucket)
    assert statements == [public_read_policy(bucket, "new/")]


def test_minio_adds_an_anonymous_read_policy(moto_endpoint: str) -> None:
    bucket = new_bucket_name()
    mirror = s3_mirror(moto_endpoint, bucket)
    steps = setup_mirror(mirror)  # a 127.0.0.1 endpoint is taken for MinIO
    assert steps == [
        f"created bucket {bucket} in us-east-1",
        f"public read policy set: s3:GetObject on arn:aws:s3:::{bucket}/* for anyone",
    ]
    assert policy_statements(moto_endpoint, bucket) == [public_read_policy(bucket, "")]
    assert setup_mirror(mirror)[0] == f"bucket {bucket} exists"
    raw_client(moto_endpoint).put_object(Bucket=bucket, Key="index.html", Body=b"hi")
    with urllib.request.urlopen(f"{moto_endpoint}/{bucket}/index.html", timeout=5) as answer:
        assert answer.read() == b"hi"


def test_b2_makes_a_public_read_bucket(moto_endpoint: str) -> None:
    bucket = new_bucket_name()
    mirror = s3_mirror(moto_endpoint, bucket)
    assert setup_mirror(mirror, "b2") == [f"created bucket {bucket} as public-read (allPublic)"]
    assert setup_mirror(mirror, "b2")[0] == f"bucket {bucket} exists"
    grants = raw_client(moto_endpoint).get_bucket_acl(Bucket=bucket)["Grants"]
    assert {
        "Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
        "Permission": "READ",
    } in grants


def test_r2_returns_manual_steps_without_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"  # any request would fail
    mirror = s3_mirror(endpoint, "news-mirror", name="r2-eu", prefix="ed")
    clients: list[object] = []
    monkeypatch.setattr(provision, "make_client", lambda *args, **kw: clients.append(args))
    steps = setup_mirror(mirror, "r2")
    assert clients == []  # no S3 client, so no request
    text = "\n".join(steps)
    assert "Settings → Public access" in text
    assert "r2.dev" in text
    assert 'mirrors[r2-eu].public_url = "https://pub-<id>.r2.dev/ed/"' in text
    assert "block it without blocking anything else" in text  # no false comfort


@pytest.mark.parametrize(
    ("endpoint", "provider"),
    [
        ("", "aws"),
        ("https://s3.eu-central-1.amazonaws.com", "aws"),
        ("https://abc123.r2.cloudflarestorage.com", "r2"),
        ("https://s3.us-west-004.backblazeb2.com", "b2"),
        ("http://127.0.0.1:9000", "minio"),
        ("https://minio.example.net", "minio"),
    ],
)
def test_provider_is_detected_from_the_endpoint(endpoint: str, provider: str) -> None:
    assert detect_provider(endpoint) == provider


def test_r2_endpoint_gets_manual_steps_by_default() -> None:
    mirror = s3_mirror("https://abc123.r2.cloudflarestorage.com", "news-mirror", region="auto")
    assert "Cloudflare dashboard" in setup_mirror(mirror)[0]


def test_unknown_provider_and_bad_bucket_are_refused(moto_endpoint: str) -> None:
    with pytest.raises(UsageError, match="unknown provider"):
        setup_mirror(s3_mirror(moto_endpoint, new_bucket_name()), "gcs")
    with pytest.raises(ConfigError):
        setup_mirror(s3_mirror(moto_endpoint, "Bad_Name"), "aws")


def test_unreachable_store_is_reported() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(MirrorUnreachableError, match="cannot connect"):
        setup_mirror(s3_mirror(endpoint, "news-mirror"), "minio")


def test_directory_mirror_gets_its_folder(tmp_path: Path) -> None:
    mirror = MirrorConfig(
        name="own",
        type="directory",
        public_url="https://m.example/",
        path=tmp_path / "public",
        prefix="ed",
    )
    assert "created" in setup_mirror(mirror)[0]
    assert (tmp_path / "public/ed").is_dir()
    assert "exists" in setup_mirror(mirror)[0]
