"""The origin client: every request mirror makes to the outlet goes through here.

`OriginClient` is an `async with` object holding one aiohttp session. `get()` makes a
bounded, checked GET: only allowed hosts and ports (every redirect hop and every
resolved address checked), a byte cap on the decompressed body, connect/read/total
time limits, retries (mirror.retry) on connection errors, timeouts, 429 and 5xx. aiohttp
and asyncio exceptions become mirror's `FetchError`s in one place, `map_aiohttp_errors`.

`decode_html` turns a page's bytes into text (header charset, `<meta>`, BOM, detection).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import email.utils
import functools
import ipaddress
import re
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp
import charset_normalizer
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.compression_utils import HAS_BROTLI

from mirror.bounded import time_limit
from mirror.config import SourceConfig
from mirror.errors import (
    FetchError,
    FetchTimeoutError,
    HostNotAllowedError,
    HTTPStatusError,
    ResponseTooLargeError,
    TooManyRedirectsError,
)
from mirror.fetch.urls import AllowedHosts, host_of, is_allowed_host, normalise_url
from mirror.http_errors import TimeLimits, translate_error
from mirror.http_session import OneSession
from mirror.retry import Clock, RetryPolicy, Sleep, with_retries

ACCEPT_ENCODING = "gzip, deflate, br" if HAS_BROTLI else "gzip, deflate"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
KEPT_HEADERS = (
    "Content-Type",
    "Content-Language",
    "Content-Location",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Expires",
    "Date",
    "Link",
)
CHUNK_BYTES = 64 * 1024
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d (deprecated, still routed by some)
NAT64_PREFIXES = (  # RFC 6052's well-known prefix, RFC 8215's local-use one
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)


@dataclass(frozen=True)
class Response:
    """One successful answer: 200 with a body, or 304 (not modified) with none."""

    url: str  # final, after redirects
    status: int  # 2xx or 304
    body: bytes
    content_type: str  # "text/html"; "application/octet-stream" when missing
    charset: str | None  # from the Content-Type header only
    etag: str | None
    last_modified: str | None
    headers: Mapping[str, str] = field(default_factory=dict)  # the KEPT_HEADERS present


@dataclass(frozen=True)
class _Hop:
    """What one request (one redirect hop) answered."""

    status: int
    headers: Mapping[str, str]
    content_type: str
    charset: str | None
    body: bytes = b""
    location: str | None = None


# ---------------------------------------------------------------- error translation


@contextlib.asynccontextmanager
async def map_aiohttp_errors(url: str, limits: TimeLimits | None = None) -> AsyncIterator[None]:
    """Turn the client library's exceptions into mirror's FetchErrors, `from` the original."""
    try:
        yield
    except HostNotAllowedError as exc:
        if exc.url == url:
            raise
        raise HostNotAllowedError(url, exc.reason) from exc  # the resolver knows the host only
    except FetchError:
        raise
    except Exception as exc:
        error = translate_error(exc, url, limits)
        if error is None:
            raise
        raise error from exc


# ---------------------------------------------------------------- address checks


def is_public_address(address: str) -> bool:
    """Whether an IP address is a public, unicast one (not loopback, private, metadata…).

    An IPv6 address standing for an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64) is
    judged as that IPv4 address; a 6to4 one must wrap a public IPv4 address as well.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(str(embedded)) and _local_nat64_public(ip)
        if ip.sixtofour is not None and not is_public_address(str(ip.sixtofour)):
            return False
    return ip.is_global and not ip.is_multicast and ip not in METADATA_ADDRESSES


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address `ip` reaches: IPv4-mapped, IPv4-compatible or NAT64 (its /96 form)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    compatible = ip in IPV4_COMPATIBLE and int(ip) > 1  # not :: or ::1
    if compatible or any(ip in prefix for prefix in NAT64_PREFIXES):
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def _local_nat64_public(ip: ipaddress.IPv6Address) -> bool:
    """Outside 64:ff9b:1::/48, or public however long the local NAT64 prefix is.

    A local-use prefix may be /48, /56 or /64 as well as /96 (RFC 6052 puts the IPv4
    address at a different place for each), so every reading must be public.
    """
    if ip not in NAT64_PREFIXES[1]:
        return True
    high, low = int(ip) >> 64, int(ip) & (1 << 56) - 1  # without bits 64-71 (the u octet)
    joined = high << 56 | low
    readings = (
        ipaddress.IPv4Address(joined >> (88 - length) & 0xFFFF_FFFF) for length in (48, 56, 64)
    )
    return all(is_public_address(str(reading)) for reading in readings)


class CheckedResolver(AbstractResolver):
    """A resolver that refuses answers pointing inside the network.

    Loopback, private, link-local, multicast, reserved, unspecified and cloud metadata
    addresses are dropped unless the address itself is in `allowed`, or the name is
    `localhost` (listed in `allowed`) and the address is loopback. An IPv6 address that
    embeds an IPv4 one (::ffff:127.0.0.1, ::127.0.0.1, 64:ff9b::7f00:1) is judged, and
    allowed, as that IPv4 address. A name left with no address raises
    HostNotAllowedError; the connection is never attempted.
    """

    def __init__(self, inner: AbstractResolver, allowed: tuple[str, ...]) -> None:
        self._inner = inner
        self._allowed = allowed

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The inner resolver's answers that may be connected to."""
        answers = await self._inner.resolve(host, port, family)
        kept = [answer for answer in answers if self._may_connect(host, answer["host"])]
        if not kept:
            shown = ", ".join(sorted({answer["host"] for answer in answers})) or "nothing"
            raise HostNotAllowedError(host, f"{host} resolves to a refused address ({shown})")
        return kept

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()

    def _may_connect(self, host: str, address: str) -> bool:
        """Whether `host`, resolved to `address`, may be connected to."""
        if is_public_address(address):
            return True
        ip = _as_ipv4(ipaddress.ip_address(address.split("%", 1)[0]))
        if is_allowed_host(str(ip), self._allowed):
            return True
        name = host.rstrip(".").lower()
        is_localhost = name == "localhost" or name.endswith(".localhost")
        return is_localhost and ip.is_loopback and is_allowed_host(host, self._allowed)


def _as_ipv4(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 one embeds (so the allowances apply to it alike), else `ip`."""
    embedded = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return embedded or ip


# ---------------------------------------------------------------- the client


class OriginClient(OneSession):
    """Bounded, checked GETs to the origin; use as `async with OriginClient(cfg) as c:`."""

    def __init__(
        self,
        config: SourceConfig,
        *,
        resolver: AbstractResolver | None = None,
        home_url: str = "",
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        """`resolver`: the name resolver whose answers are checked; default aiohttp's.
        `home_url`: the publication's, whose port a host listed without one may use too.
        `sleep` and `clock`: what waits between retries (tests pass fakes)."""
        self._config = config
        self._limits = TimeLimits(config.timeout_s, config.connect_timeout_s, config.read_timeout_s)
        self._retry = RetryPolicy(
            retries=config.retries,
            backoff_s=config.backoff_s,
            jitter=0.5,
            max_retry_after_s=config.max_retry_after_s,
        )
        self._sleep = sleep
        self._clock = clock
        configured = (*config.feeds, *config.sitemaps, *([home_url] if home_url else []))
        self._allowed = AllowedHosts.parse(config.allowed_hosts, configured)
        self._inner_resolver = resolver
        self._all_slots = asyncio.Semaphore(config.concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Response:
        """GET `url` (conditionally when validators are given), following checked redirects.

        Raises a FetchError subclass; 404/410 and every other non-2xx/304 answer are
        HTTPStatusError with `status`.
        """
        current = self._checked_url(url, None)
        headers = _request_headers(etag, last_modified)
        seen: list[str] = []
        for _hop in range(self._config.max_redirects + 1):
            hop = await with_retries(
                functools.partial(self._attempt, current, headers, max_bytes),
                self._retry,
                sleep=self._sleep,
                clock=self._clock,
            )
            if hop.location is None:
                return _response(current, hop, etag, last_modified)
            seen.append(current)
            current = self._checked_url(hop.location, current)
        # A revisit alone is no proof of a loop (a cookie may change the next answer).
        reason = "redirect loop" if current in seen else "too long a redirect chain"
        raise TooManyRedirectsError(
            current, f"{reason} (max_redirects {self._config.max_redirects})"
        )

    def _new_session(self) -> aiohttp.ClientSession:
        """The one session: limits, timeouts, checked resolver, identifying headers."""
        config = self._config
        allowed = self._allowed.names + _proxy_hosts(config.proxy)
        inner = self._inner_resolver or aiohttp.DefaultResolver()
        connector = aiohttp.TCPConnector(
            limit=config.concurrency,
            limit_per_host=config.per_host_concurrency,
            resolver=CheckedResolver(inner, allowed),
        )
        timeout = aiohttp.ClientTimeout(
            total=config.timeout_s,
            connect=config.connect_timeout_s,
            sock_connect=config.connect_timeout_s,
            sock_read=config.read_timeout_s,
        )
        headers = {"User-Agent": config.user_agent, "Accept-Encoding": ACCEPT_ENCODING}
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers, trust_env=False
        )

    def _checked_url(self, url: str, base: str | None) -> str:
        """`url` normalised (against `base`), its host and port allowed by allowed_hosts."""
        normal = normalise_url(url, base, max_length=self._config.max_url_length)
        refusal = self._allowed.refusal(normal)
        if refusal is not None:
            raise HostNotAllowedError(normal, refusal)
        return normal

    async def _attempt(self, url: str, headers: dict[str, str], max_bytes: int) -> _Hop:
        """One request within the concurrency limits and the total time limit."""
        session = self._open_session()
        timeout_s = self._config.timeout_s
        reason = f"not done within {timeout_s:g} s (timeout_s)"
        async with (
            self._slots(host_of(url)),
            map_aiohttp_errors(url, self._limits),
            time_limit(timeout_s, lambda: FetchTimeoutError(url, reason)),
            session.get(
                url, headers=headers, allow_redirects=False, proxy=self._config.proxy or None
            ) as answer,
        ):
            return await _read_hop(url, answer, max_bytes)

    @contextlib.asynccontextmanager
    async def _slots(self, host: str) -> AsyncIterator[None]:
        """Hold a slot for `host`, then one of the global slots (in that order: no hoarding)."""
        per_host = self._host_slots.setdefault(
            host, asyncio.Semaphore(self._config.per_host_concurrency)
        )
        async with per_host, self._all_slots:
            yield


# ---------------------------------------------------------------- reading answers


async def _read_hop(url: str, answer: aiohttp.ClientResponse, max_bytes: int) -> _Hop:
    """The hop's status, headers and capped body; HTTPStatusError for failures."""
    status = answer.status
    location = answer.headers.get("Location")
    kept = {name: answer.headers[name] for name in KEPT_HEADERS if name in answer.headers}
    hop = _Hop(status, kept, answer.content_type, answer.charset)
    if status in REDIRECT_STATUSES and location:
        return dataclasses.replace(hop, location=location)
    if status == 304:
        return hop
    if not 200 <= status < 300:
        retry_after = parse_retry_after(answer.headers.get("Retry-After"), time.time())
        raise HTTPStatusError(url, status, retry_after)
    return dataclasses.replace(hop, body=await read_capped(url, answer, max_bytes))


async def read_capped(url: str, answer: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The (decompressed) body, aborted as soon as it passes `max_bytes`."""
    declared = answer.content_length
    if declared is not None and declared > max_bytes:
        answer.close()
        raise ResponseTooLargeError(url, f"Content-Length {declared} over {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            answer.close()  # drop the connection: the rest is never downloaded or inflated
            raise ResponseTooLargeError(url, f"body over {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After (delay-seconds or HTTP-date) as seconds from `now`; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _request_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """The conditional-request headers for the validators we hold."""
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _response(url: str, hop: _Hop, etag: str | None, last_modified: str | None) -> Response:
    """The public Response; a 304 keeps the validators it was asked with if it sent none."""
    return Response(
        url=url,
        status=hop.status,
        body=hop.body,
        content_type=hop.content_type,
        charset=hop.charset,
        etag=hop.headers.get("ETag", etag if hop.status == 304 else None),
        last_modified=hop.headers.get(
            "Last-Modified", last_modified if hop.status == 304 else None
        ),
        headers=hop.headers,
    )


def _proxy_hosts(proxy: str) -> tuple[str, ...]:
    """The proxy's host, which the resolver must let through (it is configured, trusted)."""
    host = host_of(proxy) if proxy else ""
    return (host,) if host else ()


# ---------------------------------------------------------------- decoding pages

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.+-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SERVER_DEFAULTS = frozenset({"iso8859-1", "cp1252"})
SNIFF_BYTES = 4096
DETECT_BYTES = 200_000


def decode_html(body: bytes, header_charset: str | None) -> str:
    """A page's text: header charset, else BOM, else `<meta>`, else detection, else UTF-8.

    A declared charset the bytes do not decode with is ignored (detection decides).
    """
    bom = _bom_encoding(body)
    if bom is not None:
        return body.decode(bom, errors="replace")
    for declared in _declared_charsets(body, header_charset):
        text = _decode_strict(body, declared)
        if text is not None:
            return text
    detected = _detect_encoding(body)
    return body.decode(detected or "utf-8", errors="replace")


def _declared_charsets(body: bytes, header_charset: str | None) -> list[str | None]:
    """Header and `<meta>` charsets, in the order to try them.

    A Latin-1/Windows-1252 header is often a server's default rather than the page's
    choice, so a `<meta>` naming something else is tried first.
    """
    meta = sniff_meta_charset(body)
    if _codec_name(header_charset) in _SERVER_DEFAULTS and meta:
        return [meta, header_charset]
    return [header_charset, meta]


def _codec_name(charset: str | None) -> str | None:
    """Python's name for a charset label, None if unknown."""
    try:
        return codecs.lookup(charset.strip().strip("\"'")).name if charset else None
    except LookupError:
        return None


def sniff_meta_charset(body: bytes) -> str | None:
    """The charset a `<meta charset>` or `http-equiv` tag declares in the first 4 KB."""
    match = _META_CHARSET.search(body[:SNIFF_BYTES])
    return match.group(1).decode("ascii") if match else None


def _bom_encoding(body: bytes) -> str | None:
    """The encoding (one that drops the mark) when the body starts with a byte order mark."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return encoding
    return None


def _decode_strict(body: bytes, charset: str | None) -> str | None:
    """`body` decoded with `charset`, or None if unknown or the bytes do not fit it."""
    name = _codec_name(charset)
    if name is None:
        return None
    if name.startswith("utf-16"):  # a BOM-less page saying UTF-16 in ASCII bytes is not
        name = "utf-8"
    try:
        return body.decode(name)
    except UnicodeDecodeError:
        return None


def _detect_encoding(body: bytes) -> str | None:
    """charset_normalizer's best guess from the start of the body."""
    best = charset_normalizer.from_bytes(body[:DETECT_BYTES]).best()
    return best.encoding if best is not None else None
