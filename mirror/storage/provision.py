"""`mirror mirrors setup NAME`: create a mirror's bucket if missing and let anyone read it.

One recipe per provider, each idempotent (running it again changes nothing):

- aws:   create the bucket (in the mirror's region), turn the bucket's Block Public
         Access off, add a read-only bucket policy (s3:GetObject on the prefix, to all);
- minio: create the bucket, add the same policy (MinIO's "anonymous download");
- b2:    create the bucket as public-read (B2's S3 API has no bucket policies: the
         bucket's ACL is what makes it "allPublic");
- r2:    nothing is sent: R2's S3 API cannot make a bucket public, so the steps to do in
         the Cloudflare dashboard are returned instead.

Listing is never granted: readers fetch files by name, they cannot enumerate the bucket.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore import exceptions as boto_errors

from mirror.config import MirrorConfig, mirror_key
from mirror.errors import ConfigError, MirrorAccessError, UsageError
from mirror.storage import check_bucket, check_prefix
from mirror.storage.s3 import (
    detect_provider,
    error_kind,
    is_absent,
    make_client,
    translate_error,
)

PROVIDERS = ("aws", "minio", "b2", "r2")
POLICY_SID = "MirrorPublicRead"  # the statement this module owns in a bucket policy
PUBLIC_ACCESS_OFF = {
    "BlockPublicAcls": False,
    "IgnorePublicAcls": False,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}


BY_HAND = frozenset({"r2"})  # providers whose public access is not in the S3 API


def provider_of(mirror: MirrorConfig, provider: str = "") -> str:
    """`provider` if given, else what the mirror's `endpoint_url` says; UsageError for
    an unknown one."""
    provider = provider or detect_provider(mirror.endpoint_url)
    if provider not in PROVIDERS:
        raise UsageError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
    return provider


def setup_mirror(mirror: MirrorConfig, provider: str = "", *, fresh: bool = False) -> list[str]:
    """Make the mirror's bucket (or folder) exist and be publicly readable; returns one
    line per step done, or, for R2, the steps to do by hand. `provider` ("aws", "minio",
    "b2", "r2") defaults to what `endpoint_url` says. UsageError for an unknown provider,
    ConfigError for a bad bucket or prefix, a PublishError when the store refuses.
    `fresh`: the bucket (or a non-empty folder) must not exist yet, whoever's it is
    (MirrorAccessError, nothing written): a spawned mirror never takes over another's."""
    if mirror.type == "directory":
        return _setup_directory(mirror, fresh=fresh)
    bucket = check_bucket(mirror)
    prefix = check_prefix(mirror)
    provider = provider_of(mirror, provider)
    if provider in BY_HAND:
        if fresh:
            raise UsageError(f"{provider}: buckets are made public by hand, not spawned")
        return r2_manual_steps(mirror, prefix)
    client = make_client(mirror, max_pool=1)
    try:
        steps = [_create_fresh(client, mirror, bucket, provider)] if fresh else []
        return steps + RECIPES[provider](client, mirror, bucket, prefix)
    except Exception as exc:
        if isinstance(exc, boto_errors.ClientError) or error_kind(type(exc)) is not None:
            raise translate_error(mirror.name, exc) from exc
        raise
    finally:
        client.close()


def public_read_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """The policy statement letting anyone GET objects under the prefix (and nothing else)."""
    return {
        "Sid": POLICY_SID,
        "Effect": "Allow",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
    }


def r2_manual_steps(mirror: MirrorConfig, prefix: str) -> list[str]:
    """What to do in the Cloudflare dashboard to make an R2 bucket public."""
    return [
        "R2's S3 API cannot make a bucket public: do this once in the Cloudflare dashboard.",
        f"1. R2 Object Storage → Create bucket '{mirror.bucket}' (skip if it exists).",
        f"2. R2 Object Storage → '{mirror.bucket}' → Settings → Public access.",
        "3. Under 'R2.dev subdomain' click Allow (and type 'allow' to confirm); or under "
        "'Custom Domains' connect a domain of yours.",
        "4. Copy the 'Public R2.dev Bucket URL' it shows (https://pub-<id>.r2.dev) and set "
        f'{mirror_key(mirror.name, "public_url")} = "https://pub-<id>.r2.dev/{prefix}".',
        "   Know what that URL is: R2 has no public path-style URL on a shared hostname. The "
        "pub-<id>.r2.dev name belongs to this bucket alone and shows in DNS and in TLS SNI, "
        "so a censor can block it without blocking anything else (a custom domain: the "
        "same). Keep R2 as one mirror among others; prefer AWS S3 or B2 path-style URLs for "
        "mirrors that must outlast a block.",
        "   Note: Cloudflare rate-limits r2.dev URLs; a custom domain is not rate-limited.",
    ]


# -- recipes -----------------------------------------------------------------------------


def _setup_aws(client: Any, mirror: MirrorConfig, bucket: str, prefix: str) -> list[str]:
    return [
        _ensure_bucket(client, mirror, bucket),
        _open_public_access_block(client, bucket),
        _ensure_policy(client, bucket, prefix),
    ]


def _setup_minio(client: Any, mirror: MirrorConfig, bucket: str, prefix: str) -> list[str]:
    return [_ensure_bucket(client, mirror, bucket), _ensure_policy(client, bucket, prefix)]


def _setup_b2(client: Any, mirror: MirrorConfig, bucket: str, prefix: str) -> list[str]:
    if _bucket_exists(client, bucket):
        client.put_bucket_acl(Bucket=bucket, ACL="public-read")
        return [f"bucket {bucket} exists", f"bucket {bucket} is public-read (allPublic)"]
    client.create_bucket(Bucket=bucket, ACL="public-read")
    return [f"created bucket {bucket} as public-read (allPublic)"]


RECIPES: dict[str, Callable[[Any, MirrorConfig, str, str], list[str]]] = {
    "aws": _setup_aws,
    "minio": _setup_minio,
    "b2": _setup_b2,
}


def _setup_directory(mirror: MirrorConfig, *, fresh: bool = False) -> list[str]:
    if mirror.path is None:
        raise ConfigError("a directory mirror needs 'path'", key=mirror_key(mirror.name))
    folder = Path(mirror.path) / check_prefix(mirror)
    existed = folder.is_dir()
    if fresh and (folder.exists() and (not existed or any(folder.iterdir()))):
        raise MirrorAccessError(mirror.name, f"{folder} exists and is not empty: never written to")
    folder.mkdir(parents=True, exist_ok=True)
    done = "exists" if existed else "created"
    return [f"folder {folder} {done}; serve it with a static web server (nginx: root {folder};)"]


# -- steps -------------------------------------------------------------------------------


def _bucket_exists(client: Any, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
    except boto_errors.ClientError as exc:
        if is_absent(exc) or exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return False
        raise
    return True


def _create_args(mirror: MirrorConfig, bucket: str) -> dict[str, Any]:
    """CreateBucket's arguments: the name, and the region unless it is S3's default."""
    args: dict[str, Any] = {"Bucket": bucket}
    if mirror.region and mirror.region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": mirror.region}
    return args


def _create_fresh(client: Any, mirror: MirrorConfig, bucket: str, provider: str) -> str:
    """Create a bucket that must be new: one that exists (anyone's) is refused."""
    if _bucket_exists(client, bucket):
        raise MirrorAccessError(mirror.name, f"bucket {bucket!r} exists already: never written to")
    args = _create_args(mirror, bucket)
    if provider == "b2":
        args["ACL"] = "public-read"
    try:
        client.create_bucket(**args)
    except boto_errors.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
            reason = f"bucket {bucket!r} exists already ({code}): never written to"
            raise MirrorAccessError(mirror.name, reason) from exc
        raise
    return f"created bucket {bucket} in {mirror.region or 'the default region'}"


def _ensure_bucket(client: Any, mirror: MirrorConfig, bucket: str) -> str:
    """Create the bucket unless it exists (and is ours)."""
    if _bucket_exists(client, bucket):
        return f"bucket {bucket} exists"
    args = _create_args(mirror, bucket)
    try:
        client.create_bucket(**args)
    except boto_errors.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == "BucketAlreadyOwnedByYou":
            return f"bucket {bucket} exists"
        if code == "BucketAlreadyExists":
            reason = f"bucket name {bucket!r} is taken by another account: choose another"
            raise MirrorAccessError(mirror.name, reason) from exc
        raise
    return f"created bucket {bucket} in {mirror.region or 'the default region'}"


def _open_public_access_block(client: Any, bucket: str) -> str:
    client.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=dict(PUBLIC_ACCESS_OFF)
    )
    return (
        f"Block Public Access turned off for bucket {bucket} "
        "(the account-wide setting must allow public bucket policies too)"
    )


def _ensure_policy(client: Any, bucket: str, prefix: str) -> str:
    """Add (or correct) this module's statement in the bucket policy, keeping the others."""
    statement = public_read_policy(bucket, prefix)
    current = _current_policy(client, bucket)
    statements = current.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    others = [s for s in statements if s.get("Sid") != POLICY_SID]
    if [s for s in statements if s.get("Sid") == POLICY_SID] == [statement]:
        return f"public read policy already set on {statement['Resource'][0]}"
    policy = {"Version": "2012-10-17", **current, "Statement": [*others, statement]}
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return f"public read policy set: s3:GetObject on {statement['Resource'][0]} for anyone"


def _current_policy(client: Any, bucket: str) -> dict[str, Any]:
    try:
        text = client.get_bucket_policy(Bucket=bucket)["Policy"]
    except boto_errors.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucketPolicy":
            return {}
        raise
    policy = json.loads(text)
    return policy if isinstance(policy, dict) else {}
