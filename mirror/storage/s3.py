"""A mirror that is a bucket on an S3-compatible store (AWS, R2, B2, MinIO, ...), via boto3.

boto3 blocks, so every call runs on a bounded thread pool and the event loop never
waits on a socket. Every botocore/boto3 exception is translated in one place,
`translate_error`, into the PublishError tree of mirror.errors. Stores that answer with
an HTML page (a captive portal, a misconfigured endpoint) are caught by a hook on every
response: botocore would otherwise accept a 200 text/html answer to a PUT as success.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore import exceptions as boto_errors
from botocore.config import Config
from botocore.handlers import add_expect_header
from botocore.parsers import ResponseParserError

from mirror.config import MirrorConfig, mirror_key
from mirror.errors import (
    ConflictError,
    MirrorAccessError,
    MirrorUnreachableError,
    ObjectTooLargeError,
    PublishError,
)
from mirror.http_errors import cannot_connect, no_answer
from mirror.storage import (
    Capabilities,
    Stored,
    ThreadedBackend,
    check_bucket,
    check_object_path,
    check_prefix,
)
from mirror.storage.wire import GZIP, GzipDecodeError, gunzip_bounded, wire_form

T = TypeVar("T")

DELETE_BATCH = 1000  # keys per DeleteObjects request (the S3 maximum)
CHUNK_BYTES = 1 << 16  # read size when streaming a body
SNIFF_BYTES = 1024  # bytes of an answer looked at to tell HTML from XML
CONNECT_TIMEOUT_S = 5.0  # the longest a connection may take, whatever `timeout_s` says


@dataclass(frozen=True)
class S3Limits:
    """Time and count bounds of one S3 mirror's calls."""

    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = 30.0  # longest silence while waiting for or reading an answer
    call_timeout_s: float = 30.0  # one call, botocore's retries included (not a listing)
    max_attempts: int = 3  # botocore "standard" retry mode, the first try included
    max_list_keys: int = 1_000_000  # a listing longer than this is refused

    @classmethod
    def for_mirror(cls, mirror: MirrorConfig) -> S3Limits:
        """The limits a mirror's `timeout_s` sets: read and call, and connect (at most 5 s)."""
        timeout = mirror.timeout_s
        return cls(min(CONNECT_TIMEOUT_S, timeout), read_timeout_s=timeout, call_timeout_s=timeout)


class NotS3AnswerError(Exception):
    """The endpoint answered with something no S3 store sends (an HTML page, no ETag)."""


class S3Backend(ThreadedBackend):
    """The `Backend` of a `type = "s3"` mirror: objects in `bucket` under `prefix`.

    ETags are the store's own, quotes included: opaque tokens to pass back as `if_match`.
    Construction validates bucket and prefix (ConfigError), resolves a named profile
    (MirrorAccessError if missing) and opens no connection."""

    def __init__(
        self, mirror: MirrorConfig, *, max_workers: int = 16, limits: S3Limits | None = None
    ) -> None:
        self.bucket = check_bucket(mirror)
        self.prefix = check_prefix(mirror)
        self.limits = limits or S3Limits.for_mirror(mirror)
        self.checksums = mirror.checksums
        self.compress = mirror.compress
        self.capabilities = Capabilities(
            conditional_put=detect_provider(mirror.endpoint_url) != "b2",
            server_checksums=True,
        )
        self._client = make_client(mirror, max_pool=max_workers, limits=self.limits)
        super().__init__(
            mirror.name,
            max_workers=max_workers,
            thread_prefix=f"s3-{mirror.name}",
            call_timeout_s=self.limits.call_timeout_s,
        )

    async def put(
        self,
        path: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """See `Backend.put`. Sends Content-MD5 (or x-amz-checksum-sha256 when the mirror's
        `checksums` is "when_supported"), which the store checks before storing. With the
        mirror's `compress`, a text file is stored as gzip with Content-Encoding: gzip
        (mirror.storage.wire: where it pays); the checksum and ETag are then the gzip's."""
        packed = wire_form(path, data) if self.compress else None
        body = data if packed is None else packed
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._key(path),
            "Body": body,
            "ContentType": content_type,
            "CacheControl": cache_control,
            **self._checksum(body),
        }
        if packed is not None:
            args["ContentEncoding"] = GZIP
        if if_match is not None:
            args["IfMatch"] = if_match
        if if_none_match:
            args["IfNoneMatch"] = "*"
        return await self._call(self._put_sync, args)

    async def get(self, path: str, *, max_bytes: int) -> Stored | None:
        """See `Backend.get`: a gzip Content-Encoding is decoded (`max_bytes` bounds the
        stored and the decoded bytes alike), whatever this mirror's `compress` says."""
        return await self._call(self._get_sync, self._key(path), max_bytes)

    async def delete(self, paths: Sequence[str]) -> None:
        """See `Backend.delete`: DeleteObjects in batches of 1000, run concurrently; a key
        the store reports as not deleted raises."""
        keys = [self._key(path) for path in paths]
        batches = [keys[i : i + DELETE_BATCH] for i in range(0, len(keys), DELETE_BATCH)]
        await asyncio.gather(*(self._call(self._delete_sync, batch) for batch in batches))

    async def list(self) -> list[str]:
        """See `Backend.list`: ListObjectsV2 pages under the prefix; keys that are not clean
        edition paths (folder markers, foreign uploads) are left out."""
        return await self._call(self._list_sync, timed=False)  # pages: each read is timed

    def _release(self) -> None:
        self._client.close()

    # -- on the executor's threads ------------------------------------------------------

    def _put_sync(self, args: dict[str, Any]) -> str:
        try:
            response = self._client.put_object(**args)
        except boto_errors.ClientError as exc:
            if "IfMatch" in args and is_absent(exc):  # S3 answers 404 to If-Match on nothing
                raise ConflictError(self.name, f"{args['Key']} is gone (If-Match)") from exc
            raise
        etag = response.get("ETag")
        if not etag:
            raise NotS3AnswerError("answered a PUT without an ETag: is this an S3 endpoint?")
        return str(etag)

    def _get_sync(self, key: str, max_bytes: int) -> Stored | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except boto_errors.ClientError as exc:
            if is_absent(exc):
                return None
            raise
        body = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > max_bytes:
                raise self._too_large(key, max_bytes)
            data = _read_capped(body, max_bytes)
        finally:
            body.close()
        if data is None:
            raise self._too_large(key, max_bytes)
        if str(response.get("ContentEncoding") or "").lower() == GZIP:
            data = self._decoded(key, data, max_bytes)
        return Stored(data=data, etag=str(response["ETag"]))

    def _decoded(self, key: str, packed: bytes, max_bytes: int) -> bytes:
        """The plain bytes of a gzip object; too large past `max_bytes`, unreachable when
        the store answers with damaged gzip."""
        try:
            plain = gunzip_bounded(packed, max_bytes)
        except GzipDecodeError as exc:
            raise MirrorUnreachableError(self.name, f"{key}: {exc}") from exc
        if plain is None:
            raise self._too_large(key, max_bytes)
        return plain

    def _delete_sync(self, keys: Sequence[str]) -> None:
        response = self._client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        errors = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
        if errors:
            first = errors[0]
            code, message = str(first.get("Code", "")), str(first.get("Message", ""))[:200]
            reason = f"{len(errors)} objects not deleted, first {first.get('Key')!r}: "
            raise error_for_code(self.name, code, 0, reason + f"{code}: {message}")

    def _list_sync(self) -> builtins.list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        found: builtins.list[str] = []
        count = 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                count += 1
                if count > self.limits.max_list_keys:
                    reason = f"more than {self.limits.max_list_keys} objects under the prefix"
                    raise MirrorUnreachableError(self.name, reason)
                path = str(item["Key"])[len(self.prefix) :]
                if _is_clean(path):
                    found.append(path)
        return sorted(found)

    # -- plumbing ------------------------------------------------------------------------

    async def _call(self, func: Callable[..., T], *args: object, timed: bool = True) -> T:
        """Run a blocking boto3 call on the pool, translating what it raises."""
        try:
            return await self._in_thread(func, *args, timed=timed)
        except PublishError:
            raise
        except Exception as exc:
            if error_kind(type(exc)) is None and not isinstance(exc, boto_errors.ClientError):
                raise
            raise translate_error(self.name, exc, self.limits) from exc

    def _key(self, path: str) -> str:
        self._check_open()
        return self.prefix + check_object_path(self.name, path)

    def _checksum(self, data: bytes) -> dict[str, str]:
        if self.checksums == "when_supported":
            return {"ChecksumSHA256": _b64(hashlib.sha256(data).digest())}
        return {"ContentMD5": _b64(hashlib.md5(data, usedforsecurity=False).digest())}

    def _too_large(self, key: str, max_bytes: int) -> ObjectTooLargeError:
        return ObjectTooLargeError(self.name, f"{key} is larger than {max_bytes} bytes")


# -- configuration -----------------------------------------------------------------------


def detect_provider(endpoint_url: str) -> str:
    """ "aws", "r2", "b2" or "minio" (any other S3-compatible store), from the endpoint."""
    host = (urlsplit(endpoint_url).hostname or "").lower()
    if not host or host == "amazonaws.com" or host.endswith(".amazonaws.com"):
        return "aws"
    if host.endswith(".r2.cloudflarestorage.com"):
        return "r2"
    if host.endswith(".backblazeb2.com"):
        return "b2"
    return "minio"


def make_client(mirror: MirrorConfig, *, max_pool: int = 16, limits: S3Limits | None = None) -> Any:
    """A boto3 S3 client for the mirror (profile or standard credential chain, endpoint,
    region, addressing style, checksum mode, standard retries, timeouts) that refuses
    answers no S3 store would send. MirrorAccessError if the named profile is missing."""
    limits = limits or S3Limits.for_mirror(mirror)
    config = Config(
        s3={"addressing_style": mirror.addressing_style},
        request_checksum_calculation=mirror.checksums,
        response_checksum_validation=mirror.checksums,
        retries={"mode": "standard", "total_max_attempts": limits.max_attempts},
        connect_timeout=limits.connect_timeout_s,
        read_timeout=limits.read_timeout_s,
        max_pool_connections=max_pool,
    )
    try:
        session = boto3.session.Session(profile_name=mirror.profile or None)
        client = session.client(
            "s3",
            endpoint_url=mirror.endpoint_url or None,
            region_name=mirror.region or None,
            config=config,
        )
    except Exception as exc:
        if error_kind(type(exc)) is None:
            raise
        raise translate_error(mirror.name, exc) from exc
    client.meta.events.register("before-parse.s3.*", refuse_foreign_answer)
    # botocore asks for `Expect: 100-continue` on every PUT, so each upload waits a round
    # trip for "100 Continue" before sending its body: on a 200 ms link that doubles the
    # time of a few-kB page. It is optional in HTTP/1.1; S3, R2, B2 and MinIO take bodies
    # without it.
    client.meta.events.unregister("before-call.s3", add_expect_header)
    return client


# -- answers that are not S3 -------------------------------------------------------------


def refuse_foreign_answer(
    operation_model: Any,
    response_dict: dict[str, Any],
    customized_response_dict: dict[str, Any],
    **_: Any,
) -> None:
    """botocore hook, before a response is parsed: NotS3AnswerError for an HTML page or
    an object answer without ETag. A 5xx HTML page (a proxy's "bad gateway") is left to
    botocore's retries, its error message saying it was HTML."""
    headers = response_dict["headers"]
    body = response_dict.get("body")
    status = int(response_dict["status_code"])
    html = "text/html" in str(headers.get("content-type", "")).lower()
    if isinstance(body, bytes):
        if not _looks_like_html(body, html):
            return
        if status >= 500:
            error = {"Code": str(status), "Message": "answered with an HTML page"}
            customized_response_dict["Error"] = error
            return
        raise NotS3AnswerError("answered with an HTML page, not S3 XML")
    is_object = operation_model.name in ("GetObject", "HeadObject")
    if status < 300 and is_object and "etag" not in headers:
        if body is not None:
            body.close()
        what = "an HTML page" if html else "an object without ETag"
        raise NotS3AnswerError(f"answered with {what}, not an S3 object")


def _looks_like_html(body: bytes, declared_html: bool) -> bool:
    """Whether an answer's body is an HTML page (S3 answers XML, or JSON for policies)."""
    head = body[:SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<!doctype html") or b"<html" in head:
        return True
    return declared_html and b"<body" in head


# -- the one place botocore's exceptions become ours -------------------------------------

_CREDENTIALS_HELP = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the mirror a `profile` "
    "from ~/.aws/credentials, or run where an instance/container role applies"
)
_ERROR_KINDS: tuple[tuple[Any, type[PublishError], str], ...] = (
    (NotS3AnswerError, MirrorUnreachableError, ""),
    (ResponseParserError, MirrorUnreachableError, "answered with something that is not S3 XML"),
    (boto_errors.ConnectTimeoutError, MirrorUnreachableError, "timed out connecting"),
    (boto_errors.ReadTimeoutError, MirrorUnreachableError, "timed out waiting for an answer"),
    (boto_errors.SSLError, MirrorUnreachableError, "TLS failed"),
    (boto_errors.ProxyConnectionError, MirrorUnreachableError, "cannot connect to the proxy"),
    (boto_errors.EndpointConnectionError, MirrorUnreachableError, "cannot connect"),
    (boto_errors.ConnectionError, MirrorUnreachableError, "cannot connect"),
    (boto_errors.ConnectionClosedError, MirrorUnreachableError, "connection closed early"),
    (boto_errors.ResponseStreamingError, MirrorUnreachableError, "connection broke mid-answer"),
    (boto_errors.HTTPClientError, MirrorUnreachableError, "HTTP failure"),
    (boto_errors.IncompleteReadError, MirrorUnreachableError, "answer cut short"),
    (boto_errors.ChecksumError, MirrorUnreachableError, "answer fails its checksum"),
    (boto_errors.FlexibleChecksumError, MirrorUnreachableError, "answer fails its checksum"),
    (boto_errors.AwsChunkedWrapperError, MirrorUnreachableError, "upload stream failed"),
    (boto_errors.CapacityNotAvailableError, MirrorUnreachableError, "too many failed retries"),
    (boto_errors.PaginationError, MirrorUnreachableError, "listing went wrong"),
    (boto_errors.NoCredentialsError, MirrorAccessError, "no S3 credentials found"),
    (boto_errors.PartialCredentialsError, MirrorAccessError, "incomplete S3 credentials"),
    (boto_errors.ProfileNotFound, MirrorAccessError, "AWS profile not found"),
    (boto_errors.CredentialRetrievalError, MirrorAccessError, "cannot get S3 credentials"),
    (boto_errors.RefreshWithMFAUnsupportedError, MirrorAccessError, "credentials need MFA"),
    (boto_errors.MetadataRetrievalError, MirrorAccessError, "cannot get instance credentials"),
    (boto_errors.UnknownCredentialError, MirrorAccessError, "unknown credential provider"),
    (boto_errors.NoAuthTokenError, MirrorAccessError, "no auth token"),
    (boto_errors.TokenRetrievalError, MirrorAccessError, "cannot get an auth token"),
    (boto_errors.SSOError, MirrorAccessError, "AWS SSO login needed or expired"),
    (boto_errors.LoginError, MirrorAccessError, "AWS login needed or expired"),
    (boto_errors.ConfigNotFound, MirrorAccessError, "AWS config file not found"),
    (boto_errors.ConfigParseError, MirrorAccessError, "AWS config file unreadable"),
    (boto_errors.InvalidConfigError, MirrorAccessError, "AWS config invalid"),
    (boto_errors.NoRegionError, PublishError, "no region: set the mirror's `region`"),
    (boto_errors.InvalidRegionError, PublishError, "invalid `region`"),
    (boto_errors.BaseEndpointResolverError, PublishError, "no endpoint for this region"),
    (boto_errors.EndpointProviderError, PublishError, "no endpoint for this configuration"),
    (boto_errors.InvalidEndpointConfigurationError, PublishError, "invalid endpoint config"),
    (boto_errors.InvalidDNSNameError, PublishError, "bucket unusable with virtual addressing"),
    (boto_errors.InvalidS3AddressingStyleError, PublishError, "invalid `addressing_style`"),
    (boto_errors.InvalidChecksumConfigError, PublishError, "invalid `checksums`"),
    (boto_errors.UnsupportedS3ConfigurationError, PublishError, "unsupported S3 configuration"),
    (boto_errors.ParamValidationError, PublishError, "request refused by boto3"),
    (boto_errors.ValidationError, PublishError, "request refused by boto3"),
    (boto_errors.UnseekableStreamError, PublishError, "upload cannot be retried"),
    (boto_errors.MD5UnavailableError, PublishError, "MD5 unavailable on this host"),
)
# Names only, never values: these messages say which credential is missing, not what it is.
_SAFE_DETAIL = (boto_errors.ProfileNotFound, boto_errors.PartialCredentialsError)

ACCESS_CODES = frozenset({
    "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "NoSuchBucket", "AccountProblem",
    "InvalidBucketName", "AuthorizationHeaderMalformed", "PermanentRedirect",
    "RequestTimeTooSkewed", "InvalidSecurity", "UnauthorizedAccess", "Forbidden",
})  # fmt: skip
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})
UNREACHABLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests",
    "RequestTimeout", "InternalError", "ServiceUnavailable", "BadDigest", "InvalidDigest",
    "XAmzContentSHA256Mismatch", "IncompleteBody", "OperationAborted",
})  # fmt: skip
_CODE_KINDS: tuple[tuple[frozenset[str], type[PublishError]], ...] = (
    (CONFLICT_CODES, ConflictError),
    (ACCESS_CODES, MirrorAccessError),
    (UNREACHABLE_CODES, MirrorUnreachableError),
)


def error_kind(exc_type: type[BaseException]) -> type[PublishError] | None:
    """The PublishError class a non-ClientError exception maps to; None if unmapped."""
    for cls, kind, _ in _ERROR_KINDS:
        if issubclass(exc_type, cls):
            return kind
    return None


def is_absent(exc: Any) -> bool:
    """Whether a ClientError means "no such key" (a 404 that is not about the bucket)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def translate_error(
    mirror_name: str, exc: Exception, limits: S3Limits | None = None
) -> PublishError:
    """The PublishError for anything boto3 or botocore raised; never carries a secret.
    A refused endpoint or a timeout is worded as every client words it (http_errors):
    "cannot connect to 127.0.0.1:9: connection refused", "no answer within 30 s
    (mirrors[NAME].timeout_s)"; `limits` gives the seconds (else the botocore wording)."""
    if isinstance(exc, boto_errors.ClientError):
        return _client_error(mirror_name, exc)
    worded = _worded(mirror_name, exc, limits)
    if worded:
        return MirrorUnreachableError(mirror_name, worded)
    for cls, kind, what in _ERROR_KINDS:
        if isinstance(exc, cls):
            return kind(mirror_name, _reason(exc, kind, what))
    return PublishError(mirror_name, f"S3 client failed: {type(exc).__name__}")


def _worded(mirror_name: str, exc: Exception, limits: S3Limits | None) -> str:
    """The shared wording of a timeout or a refused connection; "" for the others."""
    key = mirror_key(mirror_name, "timeout_s")
    if isinstance(exc, boto_errors.ConnectTimeoutError):
        return no_answer(limits.connect_timeout_s, key) if limits is not None else ""
    if isinstance(exc, boto_errors.ReadTimeoutError):
        return no_answer(limits.read_timeout_s, key) if limits is not None else ""
    if isinstance(exc, boto_errors.EndpointConnectionError) and not isinstance(
        exc, boto_errors.ProxyConnectionError
    ):
        cause = _os_cause(exc.kwargs.get("error"))
        host = urlsplit(str(exc.kwargs.get("endpoint_url", "")))
        if cause is not None and host.hostname:
            return cannot_connect(host.hostname, host.port or _default_port(host.scheme), cause)
    return ""


def _os_cause(error: BaseException | None) -> OSError | None:
    """The first OSError with an errno in `error`'s chain (urllib3 wraps the socket's)."""
    seen = 0
    while error is not None and seen < 10:  # a cycle-proof bound on the chain
        if isinstance(error, OSError) and error.errno:
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def _default_port(scheme: str) -> int:
    return 80 if scheme == "http" else 443


def _reason(exc: Exception, kind: type[PublishError], what: str) -> str:
    if isinstance(exc, NotS3AnswerError):
        return str(exc)
    if isinstance(exc, _SAFE_DETAIL):
        return f"{what}: {exc}; {_CREDENTIALS_HELP}"
    if kind is MirrorAccessError:
        return f"{what} ({type(exc).__name__}); {_CREDENTIALS_HELP}"
    return f"{what}: {str(exc)[:300]}"


def _client_error(mirror_name: str, exc: Any) -> PublishError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))[:200]
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    said = f"HTTP {status}" if code in ("", str(status)) else f"{code} (HTTP {status})"
    reason = f"{exc.operation_name}: {said} {message}".rstrip()
    return error_for_code(mirror_name, code, status, reason)


def error_for_code(mirror_name: str, code: str, status: int, reason: str) -> PublishError:
    """The PublishError for an S3 error code and HTTP status (0 if unknown): codes first,
    then the status class."""
    if code == "NoSuchBucket":
        return _refusal(mirror_name, reason, f"`mirror mirrors setup {mirror_name}` creates it")
    if code in ACCESS_CODES or (status in (401, 403) and code not in CONFLICT_CODES):
        return _refusal(mirror_name, reason, access_hint(mirror_name, code))
    for codes, kind in _CODE_KINDS:
        if code in codes:
            return kind(mirror_name, reason)
    if status in (409, 412):
        return ConflictError(mirror_name, reason)
    if status >= 500 or status == 429:
        return MirrorUnreachableError(mirror_name, reason)
    return PublishError(mirror_name, reason)


CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
    "TokenRefreshRequired", "InvalidSecurity", "UnauthorizedAccess",
})  # fmt: skip
REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed"})


def _refusal(mirror_name: str, reason: str, fix: str) -> MirrorAccessError:
    error = MirrorAccessError(mirror_name, f"{reason}: {fix}")
    error.fix = fix
    return error


def access_hint(mirror_name: str, code: str) -> str:
    """The likely cause of a refusal (an S3 error code; 403 without one) and what fixes it."""
    credentials = (
        "the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment, or the mirror's "
        f"`profile` ({mirror_key(mirror_name, 'profile')}) in ~/.aws/credentials"
    )
    if code in CREDENTIAL_CODES:
        return f"the store refuses the credentials: check {credentials}"
    if code in REGION_CODES:
        return f"wrong region: set {mirror_key(mirror_name, 'region')} to the bucket's region"
    if code == "RequestTimeTooSkewed":
        return "this host's clock is off: set it right (NTP)"
    if code == "InvalidBucketName":
        return f"the store refuses the name: check {mirror_key(mirror_name, 'bucket')}"
    if code in ("AccountProblem", "AllAccessDisabled"):
        return "the provider has disabled the account or bucket: see its console"
    return (
        f"access denied: check {credentials} and what their IAM policy allows; a bucket "
        f"policy that refuses them (`mirror mirrors setup {mirror_name}` sets the public-read "
        f"part); the bucket's region ({mirror_key(mirror_name, 'region')})"
    )


# -- small pieces ------------------------------------------------------------------------


def _read_capped(body: Any, max_bytes: int) -> bytes | None:
    """The body's bytes, or None as soon as it passes `max_bytes`."""
    parts: list[bytes] = []
    total = 0
    while chunk := body.read(CHUNK_BYTES):
        total += len(chunk)
        if total > max_bytes:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _is_clean(path: str) -> bool:
    try:
        check_object_path("", path)
    except PublishError:
        return False
    return True


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")
