from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import inspect
import socket
import ssl
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from mirror.config import SourceConfig
from mirror.errors import (
    BadURLError,
    ConnectionFailedError,
    FetchError,
    FetchTimeoutError,
    HostNotAllowedError,
    HTTPStatusError,
    ResponseTooLargeError,
    TooManyRedirectsError,
)
from mirror.fetch.origin import (
    ACCEPT_ENCODING,
    CheckedResolver,
    OriginClient,
    Response,
    decode_html,
    is_public_address,
    map_aiohttp_errors,
    parse_retry_after,
)
from mirror.http_errors import translate_error

from servers import closed_port, serve

RUSSIAN = (
    "Независимые журналисты продолжают работать, несмотря на блокировки. "
    "Читатели находят зеркала сайта и получают новости по электронной почте. "
) * 5

BOMB = web.AppKey("bomb", bytes)


def gzip_bomb() -> bytes:
    """A valid gzip stream: 1 GiB of zeros in about 1 MB."""
    zeros = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    # after a full flush the compressor starts afresh, so every 1 MiB block is identical
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    crc_of_1_gib_of_zeros = 0x5B64C2B0
    trailer = struct.pack("<II", crc_of_1_gib_of_zeros, 0)  # size mod 2**32
    return header + block * 1024 + compressor.flush(zlib.Z_FINISH) + trailer


@dataclass
class Newsroom:
    """A purpose-built origin that records what it was asked."""

    hits: collections.Counter[str] = field(default_factory=collections.Counter)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: collections.Counter[str] = field(default_factory=collections.Counter)
    max_in_flight: collections.Counter[str] = field(default_factory=collections.Counter)
    cut: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.record])
        routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "/ok": self.ok,
            "/redirect/outside": self.redirect_outside,
            "/redirect/localhost": self.redirect_localhost,
            "/redirect/javascript": self.redirect_javascript,
            "/redirect/relative": self.redirect_relative,
            "/loop": self.loop,
            "/chain/{n}": self.chain,
            "/forever": self.forever,
            "/declared-big": self.declared_big,
            "/drip": self.drip,
            "/status/{code}": self.status,
            "/flaky": self.flaky,
            "/busy": self.busy,
            "/busy-long": self.busy_long,
            "/bomb": self.bomb,
            "/cp1251/{mode}": self.cp1251,
            "/slow": self.slow,
        }
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        return app

    @web.middleware
    async def record(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        self.hits[request.path] += 1
        self.headers.append(dict(request.headers))
        host = request.host.split(":")[0]
        for key in ("all", host):
            self.in_flight[key] += 1
            self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])
        try:
            return await handler(request)
        finally:
            for key in ("all", host):
                self.in_flight[key] -= 1

    async def ok(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(
            text="<p>hello</p>",
            content_type="text/html",
            headers={"ETag": '"v1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"},
        )

    async def redirect_outside(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://evil.example/steal")

    async def redirect_localhost(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"http://localhost:{self.port}/ok")

    async def redirect_javascript(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "javascript:alert(1)"})

    async def redirect_relative(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently("../ok#fragment")

    async def loop(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/loop")

    async def chain(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(text="end")
        raise web.HTTPFound(f"/chain/{n - 1}")

    async def forever(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            while True:
                await response.write(b"x" * 65536)
        except ConnectionError:
            self.cut.set()
        return response

    async def declared_big(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * 300_000)

    async def drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client hung up
            for _ in range(1000):
                await response.write(b".")
                await asyncio.sleep(0.05)
        return response

    async def status(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=int(request.match_info["code"]))

    async def flaky(self, request: web.Request) -> web.StreamResponse:
        if self.hits["/flaky"] == 1:
            return web.Response(status=503)
        return web.Response(text="recovered")

    async def busy(self, request: web.Request) -> web.StreamResponse:
        if self.hits["/busy"] == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(text="your turn")

    async def busy_long(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": "3600"})

    async def bomb(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=request.app[BOMB],
            headers={"Content-Encoding": "gzip", "Content-Type": "text/html"},
        )

    async def cp1251(self, request: web.Request) -> web.StreamResponse:
        body = f"<html><body><p>{RUSSIAN}</p></body></html>".encode("cp1251")
        mode = request.match_info["mode"]
        content_type = "text/html; charset=utf-8" if mode == "wrong" else "text/html"
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def slow(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.Response(text="done")


@pytest.fixture(scope="module")
def bomb_bytes() -> bytes:
    return gzip_bomb()


@pytest.fixture
async def newsroom(bomb_bytes: bytes) -> AsyncIterator[Newsroom]:
    room = Newsroom()
    app = room.app()
    app[BOMB] = bomb_bytes
    async with serve(app) as port:
        room.port = port
        yield room


def config(room: Newsroom | None, **changes: object) -> SourceConfig:
    """A client config; with `room`, a feed on it (so a port-less 127.0.0.1 reaches it)."""
    base = SourceConfig(
        feeds=(url(room, "/rss"),) if room else (),
        allowed_hosts=("127.0.0.1",),
        timeout_s=3.0,
        connect_timeout_s=1.0,
        read_timeout_s=1.0,
        retries=2,
        backoff_s=0.01,
        max_redirects=3,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def url(room: Newsroom, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{room.port}{path}"


class Waits(list[float]):
    """A sleep that returns at once and records how long it was asked to wait."""

    async def sleep(self, seconds: float) -> None:
        self.append(seconds)


async def fetch(
    room: Newsroom,
    path: str,
    max_bytes: int = 100_000,
    *,
    waits: Waits | None = None,
    **changes: object,
) -> Response:
    sleep = (waits if waits is not None else Waits()).sleep
    async with OriginClient(config(room, **changes), sleep=sleep) as client:
        return await client.get(url(room, path), max_bytes=max_bytes)


class FakeResolver(AbstractResolver):
    """Answers names from a table, as a (possibly lying) DNS server would."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------- the good path


async def test_get_returns_body_validators_and_sends_identity(newsroom: Newsroom) -> None:
    async with OriginClient(config(newsroom, user_agent="mirror-test/1")) as client:
        response = await client.get(url(newsroom, "/ok"), max_bytes=1000)
    assert response.status == 200
    assert response.body == b"<p>hello</p>"
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert response.etag == '"v1"'
    assert response.last_modified == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert response.headers["ETag"] == '"v1"'
    assert response.url == url(newsroom, "/ok")
    assert newsroom.headers[0]["User-Agent"] == "mirror-test/1"
    assert newsroom.headers[0]["Accept-Encoding"] == ACCEPT_ENCODING


async def test_conditional_get_returns_304_with_the_validators(newsroom: Newsroom) -> None:
    async with OriginClient(config(newsroom)) as client:
        response = await client.get(url(newsroom, "/ok"), max_bytes=1000, etag='"v1"')
    assert (response.status, response.body, response.etag) == (304, b"", '"v1"')
    assert newsroom.headers[0]["If-None-Match"] == '"v1"'


async def test_relative_redirect_is_followed_and_final_url_reported(newsroom: Newsroom) -> None:
    response = await fetch(newsroom, "/redirect/relative")
    assert response.url == url(newsroom, "/ok")


async def test_redirect_chain_within_limit(newsroom: Newsroom) -> None:
    response = await fetch(newsroom, "/chain/3", max_redirects=3)
    assert response.body == b"end"


async def test_localhost_reaches_loopback_when_listed(newsroom: Newsroom) -> None:
    cfg = config(newsroom, allowed_hosts=(f"localhost:{newsroom.port}",))
    async with OriginClient(cfg) as client:
        response = await client.get(url(newsroom, "/ok", "localhost"), max_bytes=1000)
    assert response.status == 200


# ---------------------------------------------------------------- hosts and redirects


async def test_redirect_to_host_outside_allowed_hosts(newsroom: Newsroom) -> None:
    with pytest.raises(HostNotAllowedError) as caught:
        await fetch(newsroom, "/redirect/outside")
    assert caught.value.url == "http://evil.example/steal"


async def test_redirect_to_unlisted_name_of_the_same_address(newsroom: Newsroom) -> None:
    with pytest.raises(HostNotAllowedError):
        await fetch(newsroom, "/redirect/localhost")
    assert newsroom.hits["/ok"] == 0


async def test_redirect_to_javascript_url(newsroom: Newsroom) -> None:
    with pytest.raises(BadURLError):
        await fetch(newsroom, "/redirect/javascript")


async def test_redirect_loop(newsroom: Newsroom) -> None:
    with pytest.raises(TooManyRedirectsError):
        await fetch(newsroom, "/loop", max_redirects=4)
    assert newsroom.hits["/loop"] == 5


async def test_too_many_redirects(newsroom: Newsroom) -> None:
    with pytest.raises(TooManyRedirectsError):
        await fetch(newsroom, "/chain/4", max_redirects=3)
    assert newsroom.hits["/chain/0"] == 0


@pytest.mark.parametrize(
    "bad", ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)", "data:,x"]
)
async def test_refused_schemes_make_no_request(newsroom: Newsroom, bad: str) -> None:
    async with OriginClient(config(newsroom)) as client:
        with pytest.raises(BadURLError):
            await client.get(bad, max_bytes=1000)
    assert sum(newsroom.hits.values()) == 0


async def test_dot_segments_and_unicode_are_normalised_before_the_request(
    newsroom: Newsroom,
) -> None:
    async with OriginClient(config(newsroom)) as client:
        for path in ("/a/../ok", "/%2e%2e/%2E%2e/ok", "/новости/../ok"):
            response = await client.get(url(newsroom, path), max_bytes=1000)
            assert response.url == url(newsroom, "/ok")
    assert newsroom.hits["/ok"] == 3


async def test_over_long_url_makes_no_request(newsroom: Newsroom) -> None:
    async with OriginClient(config(newsroom)) as client:
        with pytest.raises(BadURLError):
            await client.get(url(newsroom, "/ok?q=" + "a" * 2_100), max_bytes=1000)
    assert sum(newsroom.hits.values()) == 0


@pytest.mark.parametrize(
    ("host", "allowed"), [("localhost", ("127.0.0.1",)), ("127.0.0.1", ("localhost",))]
)
async def test_unlisted_name_for_a_listed_address_is_refused(
    newsroom: Newsroom, host: str, allowed: tuple[str, ...]
) -> None:
    with_port = tuple(f"{host}:{newsroom.port}" for host in allowed)
    async with OriginClient(config(newsroom, allowed_hosts=with_port)) as client:
        with pytest.raises(HostNotAllowedError):
            await client.get(url(newsroom, "/ok", host), max_bytes=1000)
    assert sum(newsroom.hits.values()) == 0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "192.168.0.7", "169.254.169.254", "fd00:ec2::254",
        "::ffff:127.0.0.1", "64:ff9b::7f00:1", "::127.0.0.1", "64:ff9b::10.0.0.1",
        "64:ff9b::169.254.169.254", "64:ff9b:1::a00:1",
    ],
)  # fmt: skip
async def test_listed_name_resolving_inside_the_network_is_refused_at_connect(
    newsroom: Newsroom, address: str
) -> None:
    resolver = FakeResolver({"news.test": [address]})
    cfg = config(newsroom, allowed_hosts=(f"news.test:{newsroom.port}",))
    async with OriginClient(cfg, resolver=resolver) as client:
        with pytest.raises(HostNotAllowedError) as caught:
            await client.get(url(newsroom, "/ok", "news.test"), max_bytes=1000)
    assert caught.value.url == url(newsroom, "/ok", "news.test")
    assert "resolves to a refused address" in caught.value.reason
    assert not caught.value.retryable
    assert sum(newsroom.hits.values()) == 0


async def test_private_address_allowed_when_the_address_itself_is_listed(
    newsroom: Newsroom,
) -> None:
    resolver = FakeResolver({"news.test": ["127.0.0.1"]})
    allowed = (f"news.test:{newsroom.port}", "127.0.0.1")
    async with OriginClient(config(newsroom, allowed_hosts=allowed), resolver=resolver) as client:
        response = await client.get(url(newsroom, "/ok", "news.test"), max_bytes=1000)
    assert response.status == 200


@pytest.mark.parametrize(
    "address",
    ["::ffff:10.0.0.1", "::127.0.0.1", "::192.168.0.7", "64:ff9b::7f00:1", "64:ff9b::10.0.0.1",
     "64:ff9b::169.254.169.254", "64:ff9b:1::a00:1", "64:ff9b:1::7f00:1"],
)  # fmt: skip
async def test_resolver_refuses_ipv6_forms_of_inner_ipv4_addresses(address: str) -> None:
    inner = FakeResolver({"news.test": [address]})
    with pytest.raises(HostNotAllowedError, match="resolves to a refused address"):
        await CheckedResolver(inner, ("news.test",)).resolve("news.test", 80)


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1"])
async def test_embedded_loopback_allowed_exactly_as_plain_127_0_0_1(address: str) -> None:
    inner = FakeResolver({"news.test": [address], "localhost": [address]})
    refused = CheckedResolver(inner, ("news.test",))
    with pytest.raises(HostNotAllowedError):
        await refused.resolve("news.test", 80)
    for allowed, name in ((("news.test", "127.0.0.1"), "news.test"), (("localhost",), "localhost")):
        answers = await CheckedResolver(inner, allowed).resolve(name, 80)
        assert [answer["host"] for answer in answers] == [address]


async def test_localhost_still_reaches_ipv6_loopback() -> None:
    inner = FakeResolver({"localhost": ["::1"]})
    answers = await CheckedResolver(inner, ("localhost",)).resolve("localhost", 80)
    assert [answer["host"] for answer in answers] == ["::1"]


async def test_mapped_loopback_reaches_the_server_when_127_0_0_1_is_listed(
    newsroom: Newsroom,
) -> None:
    resolver = FakeResolver({"news.test": ["::ffff:127.0.0.1"]})
    allowed = (f"news.test:{newsroom.port}", "127.0.0.1")
    async with OriginClient(config(newsroom, allowed_hosts=allowed), resolver=resolver) as client:
        response = await client.get(url(newsroom, "/ok", "news.test"), max_bytes=1000)
    assert response.status == 200


async def test_resolver_keeps_only_public_answers() -> None:
    inner = FakeResolver({"news.test": ["10.0.0.1", "93.184.215.14", "::ffff:127.0.0.1"]})
    answers = await CheckedResolver(inner, ("news.test",)).resolve("news.test", 80)
    assert [answer["host"] for answer in answers] == ["93.184.215.14"]


async def test_resolver_refuses_localhost_when_only_its_address_is_not_listed() -> None:
    inner = FakeResolver({"localhost": ["127.0.0.1"]})
    with pytest.raises(HostNotAllowedError):
        await CheckedResolver(inner, ("example.org",)).resolve("localhost", 80)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),
        ("fe80::1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("240.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("::ffff:127.0.0.1", False),
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::10.0.0.1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::10.0.0.1", False),
        ("64:ff9b::169.254.169.254", False),
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 (RFC 8215), /96 form
        ("64:ff9b:1:0:a:0:100:0", False),  # the same 10.0.0.1 under a /64 local prefix
        ("64:ff9b::5db8:d70e", True),  # DNS64 of a public address: reachable as before
        ("::ffff:93.184.215.14", True),
        ("::1", False),
        ("::", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


# ---------------------------------------------------------------- byte limits


async def test_endless_body_is_cut_while_streaming(newsroom: Newsroom) -> None:
    with pytest.raises(ResponseTooLargeError, match="body over 200000 bytes"):
        await fetch(newsroom, "/forever", max_bytes=200_000)  # it never ends: only the cap stops it
    await asyncio.wait_for(newsroom.cut.wait(), 2)  # the server saw the connection go


async def test_declared_length_over_the_cap(newsroom: Newsroom) -> None:
    with pytest.raises(ResponseTooLargeError):
        await fetch(newsroom, "/declared-big", max_bytes=100_000)
    assert newsroom.hits["/declared-big"] == 1


async def test_gzip_bomb_is_never_inflated_in_full(newsroom: Newsroom, bomb_bytes: bytes) -> None:
    cap = 5_000_000
    assert len(bomb_bytes) < cap  # Content-Length passes: the cap must hit while inflating
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError, match=f"body over {cap} bytes"):
            await fetch(newsroom, "/bomb", max_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000  # the server's own 1 MB copy included; 1 GiB inflated would show


# ---------------------------------------------------------------- time limits and retries


async def test_slow_drip_fails_at_the_total_timeout(newsroom: Newsroom) -> None:
    # a byte every 0.05 s for 50 s: never silent for read_timeout_s, cut at timeout_s
    with pytest.raises(FetchTimeoutError, match=r"not done within 0\.5 s \(timeout_s\)"):
        await fetch(newsroom, "/drip", retries=0, timeout_s=0.5, read_timeout_s=0.3)
    assert newsroom.hits["/drip"] == 1


async def test_server_error_forever_is_retried_then_raised(newsroom: Newsroom) -> None:
    waits = Waits()
    with pytest.raises(HTTPStatusError) as caught:
        await fetch(newsroom, "/status/500", waits=waits, retries=3, backoff_s=0.5)
    assert caught.value.status == 500
    assert newsroom.hits["/status/500"] == 4
    assert len(waits) == 3  # doubling, each with jitter down to half
    assert all(0.5 * 2**n / 2 <= wait_s <= 0.5 * 2**n for n, wait_s in enumerate(waits))


async def test_503_then_200_succeeds(newsroom: Newsroom) -> None:
    waits = Waits()
    response = await fetch(newsroom, "/flaky", waits=waits)
    assert response.body == b"recovered"
    assert newsroom.hits["/flaky"] == 2 and len(waits) == 1


async def test_429_waits_for_retry_after(newsroom: Newsroom) -> None:
    waits = Waits()
    response = await fetch(newsroom, "/busy", waits=waits)
    assert waits == [1.0]  # the Retry-After, not the backoff
    assert response.body == b"your turn"


async def test_retry_after_over_the_limit_fails_at_once(newsroom: Newsroom) -> None:
    waits = Waits()
    with pytest.raises(HTTPStatusError) as caught:
        await fetch(newsroom, "/busy-long", waits=waits, max_retry_after_s=60)
    assert caught.value.retry_after_s == 3600
    assert newsroom.hits["/busy-long"] == 1 and waits == []


@pytest.mark.parametrize("code", [404, 410, 403])
async def test_client_errors_are_not_retried(newsroom: Newsroom, code: int) -> None:
    waits = Waits()
    with pytest.raises(HTTPStatusError) as caught:
        await fetch(newsroom, f"/status/{code}", waits=waits)
    assert waits == []
    assert caught.value.status == code
    assert newsroom.hits[f"/status/{code}"] == 1


async def test_connection_refused_after_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    cfg = config(None, allowed_hosts=(f"127.0.0.1:{port}",), retries=2, backoff_s=1.0)
    waits = Waits()
    async with OriginClient(cfg, sleep=waits.sleep) as client:
        attempts = 0
        real_attempt = client._attempt

        async def counted(*args: object) -> object:
            nonlocal attempts
            attempts += 1
            return await real_attempt(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(client, "_attempt", counted)
        with pytest.raises(ConnectionFailedError):
            await client.get(f"http://127.0.0.1:{port}/", max_bytes=1000)
    assert attempts == 3 and len(waits) == 2 and 0.5 <= waits[0] <= 1 <= waits[1] <= 2


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now) == 120
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


# ---------------------------------------------------------------- concurrency


async def test_global_and_per_host_limits(newsroom: Newsroom) -> None:
    allowed = ("127.0.0.1", f"localhost:{newsroom.port}")
    cfg = config(newsroom, allowed_hosts=allowed, concurrency=3, per_host_concurrency=2)
    async with OriginClient(cfg) as client:
        urls = [url(newsroom, "/slow", host) for host in ("127.0.0.1", "localhost") * 6]
        await asyncio.gather(*(client.get(u, max_bytes=100) for u in urls))
    assert newsroom.max_in_flight["all"] == 3
    assert newsroom.max_in_flight["127.0.0.1"] <= 2
    assert newsroom.max_in_flight["localhost"] <= 2


# ---------------------------------------------------------------- lifecycle


async def test_use_before_open_and_after_close_is_refused(newsroom: Newsroom) -> None:
    client = OriginClient(config(newsroom))
    with pytest.raises(RuntimeError):
        await client.get(url(newsroom, "/ok"), max_bytes=100)
    async with client:
        await client.get(url(newsroom, "/ok"), max_bytes=100)
    with pytest.raises(RuntimeError):
        await client.get(url(newsroom, "/ok"), max_bytes=100)
    with pytest.raises(RuntimeError):
        async with client:
            pass


# ---------------------------------------------------------------- error translation


def aiohttp_exception_classes() -> list[type[BaseException]]:
    classes = [getattr(aiohttp, name) for name in aiohttp.__all__]
    return [cls for cls in classes if inspect.isclass(cls) and issubclass(cls, aiohttp.ClientError)]


@pytest.mark.parametrize(
    "cls",
    [*aiohttp_exception_classes(), TimeoutError, asyncio.TimeoutError, ConnectionResetError],
)
def test_every_aiohttp_exception_is_mapped(cls: type[BaseException]) -> None:
    exc = cls.__new__(cls)  # no constructor arguments needed: mapping looks at the type
    assert isinstance(translate_error(exc, "http://h.org/"), FetchError)


def test_certificate_errors_are_not_retried() -> None:
    exc = ssl.SSLCertVerificationError("self-signed")
    error = translate_error(exc, "https://h.org/")
    assert isinstance(error, ConnectionFailedError)
    assert not error.retryable


async def test_mapping_chains_the_original() -> None:
    original = aiohttp.ServerDisconnectedError()
    with pytest.raises(ConnectionFailedError) as caught:
        async with map_aiohttp_errors("http://h.org/"):
            raise original
    assert caught.value.__cause__ is original
    assert caught.value.retryable
    with pytest.raises(FetchTimeoutError):
        async with map_aiohttp_errors("http://h.org/"):
            raise TimeoutError


async def test_unrelated_exceptions_pass_through() -> None:
    with pytest.raises(KeyError):
        async with map_aiohttp_errors("http://h.org/"):
            raise KeyError("bug")


# ---------------------------------------------------------------- decoding


async def test_windows_1251_without_charset(newsroom: Newsroom) -> None:
    response = await fetch(newsroom, "/cp1251/missing")
    assert response.charset is None
    text = decode_html(response.body, response.charset)
    assert RUSSIAN in text


async def test_windows_1251_with_wrong_header_charset(newsroom: Newsroom) -> None:
    response = await fetch(newsroom, "/cp1251/wrong")
    assert response.charset == "utf-8"
    text = decode_html(response.body, response.charset)
    assert RUSSIAN in text


@pytest.mark.parametrize(
    "page",
    [
        b'<html><head><meta charset="windows-1251"></head><body>%s</body></html>',
        b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">%s',
        b"<META CHARSET=cp1251>%s",
    ],
)
def test_meta_charset_is_sniffed(page: bytes) -> None:
    body = page % "Привет, мир".encode("cp1251")
    assert "Привет, мир" in decode_html(body, None)


def test_header_charset_wins_over_meta() -> None:
    body = '<meta charset="utf-8"><p>Привет</p>'.encode("koi8-r")
    assert "Привет" in decode_html(body, "koi8-r")


def test_meta_wins_over_a_western_server_default() -> None:
    body = '<meta charset="windows-1251"><p>Привет</p>'.encode("cp1251")
    assert "Привет" in decode_html(body, "ISO-8859-1")


def test_wrong_meta_falls_back_to_detection() -> None:
    body = f'<meta charset="utf-8"><p>{RUSSIAN}</p>'.encode("cp1251")
    assert RUSSIAN in decode_html(body, None)


def test_byte_order_mark() -> None:
    assert decode_html("\ufeff<p>Привет</p>".encode(), None) == "<p>Привет</p>"
    assert decode_html("<p>Привет</p>".encode("utf-16"), None) == "<p>Привет</p>"


def test_unknown_charsets_and_garbage_still_decode() -> None:
    assert decode_html(b"<p>plain</p>", "no-such-charset") == "<p>plain</p>"
    assert isinstance(decode_html(bytes(range(256)), None), str)
    assert decode_html(b"", None) == ""


# ---------------------------------------------------------------- proxy


async def test_requests_go_through_the_configured_proxy(newsroom: Newsroom) -> None:
    seen: list[str] = []

    async def forward(request: web.Request) -> web.StreamResponse:
        seen.append(str(request.url))
        async with aiohttp.ClientSession() as session, session.get(request.url) as answer:
            return web.Response(body=await answer.read(), status=answer.status)

    proxy_app = web.Application()
    proxy_app.router.add_route("GET", "/{tail:.*}", forward)
    async with serve(proxy_app) as proxy_port:
        cfg = config(newsroom, proxy=f"http://127.0.0.1:{proxy_port}")
        async with OriginClient(cfg) as client:
            response = await client.get(url(newsroom, "/ok"), max_bytes=1000)
    assert response.body == b"<p>hello</p>"
    assert seen == [url(newsroom, "/ok")]
    assert newsroom.hits["/ok"] == 1
