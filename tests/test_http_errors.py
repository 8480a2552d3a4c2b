"""One translation of aiohttp/ssl/asyncio exceptions, one retry rule: the origin client
and the mirror reader (verify, status) agree, and no test here sleeps for real."""

from __future__ import annotations

import asyncio
import inspect
import ssl
from collections import Counter

import aiohttp
import pytest
from aiohttp import web

from mirror.errors import ConnectionFailedError, FetchError, TargetError
from mirror.fetch.origin import map_aiohttp_errors
from mirror.http_errors import translate_error
from mirror.verify.readers import (
    HttpReader,
    HttpSettings,
    ReadOutcome,
    map_http_errors,
    read_bytes,
    read_small,
)

from servers import closed_port, serve
from stalled_servers import StalledServer

URL = "https://h.org/"
NOT_RETRYABLE = [
    ssl.SSLCertVerificationError("self-signed"),
    aiohttp.ServerFingerprintMismatch(b"expected", b"got", "h.org", 443),
]


def aiohttp_exception_classes() -> list[type[BaseException]]:
    classes = [getattr(aiohttp, name) for name in aiohttp.__all__]
    return [cls for cls in classes if inspect.isclass(cls) and issubclass(cls, aiohttp.ClientError)]


EVERY_CLASS = [*aiohttp_exception_classes(), TimeoutError, ConnectionResetError, ssl.SSLError]


@pytest.mark.parametrize("cls", EVERY_CLASS, ids=lambda cls: cls.__name__)
async def test_the_reader_maps_every_client_exception_as_the_origin_does(
    cls: type[BaseException],
) -> None:
    exc = cls.__new__(cls)  # mapping looks at the type only
    origin = translate_error(exc, URL)
    assert isinstance(origin, FetchError)
    with pytest.raises(TargetError) as caught:
        async with map_http_errors(URL):
            raise exc
    assert caught.value.__cause__ is exc
    assert caught.value.retryable is origin.retryable
    assert origin.reason in str(caught.value)


@pytest.mark.parametrize("exc", NOT_RETRYABLE, ids=lambda exc: type(exc).__name__)
async def test_a_refused_certificate_is_retried_by_neither(exc: BaseException) -> None:
    with pytest.raises(ConnectionFailedError) as origin:
        async with map_aiohttp_errors(URL):
            raise exc
    with pytest.raises(TargetError) as reader:
        async with map_http_errors(URL):
            raise exc
    assert not origin.value.retryable and not reader.value.retryable


async def test_a_reset_is_retried_by_both() -> None:
    for mapping in (map_aiohttp_errors, map_http_errors):
        with pytest.raises((ConnectionFailedError, TargetError)) as caught:
            async with mapping(URL):
                raise aiohttp.ServerDisconnectedError()
        assert caught.value.retryable


async def test_unrelated_exceptions_pass_the_reader_map() -> None:
    with pytest.raises(KeyError):
        async with map_http_errors(URL):
            raise KeyError("bug")


# ---------------------------------------------------------------- the reader's retries


class Waits(list[float]):
    """A sleep that returns at once and records how long it was asked to wait."""

    async def sleep(self, seconds: float) -> None:
        self.append(seconds)


def flaky_app(hits: Counter[str], failures: int, status: int) -> web.Application:
    """`current` answers `status` `failures` times, then "1\\n"."""

    async def current(request: web.Request) -> web.Response:
        hits["current"] += 1
        if hits["current"] <= failures:
            return web.Response(status=status)
        return web.Response(body=b"1\n")

    app = web.Application()
    app.router.add_get("/current", current)
    return app


async def read_current(port: int, settings: HttpSettings, waits: Waits) -> bytes | None:
    async with HttpReader(f"http://127.0.0.1:{port}/", settings, sleep=waits.sleep) as reader:
        return await read_small(reader, "current", max_bytes=100, error=TargetError)


async def test_the_reader_retries_5xx_with_a_doubling_backoff() -> None:
    hits: Counter[str] = Counter()
    waits = Waits()
    async with serve(flaky_app(hits, 2, 503)) as port:
        data = await read_current(port, HttpSettings(retries=2, backoff_s=0.25), waits)
    assert data == b"1\n" and hits["current"] == 3 and waits == [0.25, 0.5]


async def test_the_reader_gives_up_after_its_retries() -> None:
    hits: Counter[str] = Counter()
    waits = Waits()
    async with serve(flaky_app(hits, 5, 500)) as port:
        with pytest.raises(TargetError, match="HTTP 500") as caught:
            await read_current(port, HttpSettings(retries=2, backoff_s=1), waits)
    assert caught.value.retryable and hits["current"] == 3 and waits == [1, 2]


async def test_the_reader_does_not_retry_a_client_error() -> None:
    hits: Counter[str] = Counter()
    waits = Waits()
    async with serve(flaky_app(hits, 5, 400)) as port:
        with pytest.raises(TargetError, match="HTTP 400"):
            await read_current(port, HttpSettings(retries=2, backoff_s=1), waits)
    assert hits["current"] == 1 and waits == []


async def test_an_unreachable_mirror_is_retried_then_named() -> None:
    waits = Waits()
    port = closed_port()
    with pytest.raises(TargetError) as caught:
        await read_current(port, HttpSettings(retries=1, backoff_s=3), waits)
    assert caught.value.retryable and waits == [3]
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in str(caught.value)
    assert "ssl:default" not in str(caught.value) and "Connect call" not in str(caught.value)


async def test_a_deadline_is_not_a_retryable_read() -> None:
    """The deadline's own timeout passes the map untouched (it is not the reader's)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0), map_http_errors(URL):
            await asyncio.sleep(1)


async def test_403_is_absent_for_verify_and_forbidden_for_status() -> None:
    hits: Counter[str] = Counter()
    async with serve(flaky_app(hits, 5, 403)) as port:
        url = f"http://127.0.0.1:{port}/"
        async with HttpReader(url, HttpSettings(retries=2), sleep=Waits().sleep) as reader:
            assert await read_small(reader, "current", max_bytes=100, error=TargetError) is None
            assert await read_bytes(reader, "current", max_bytes=100) == (
                ReadOutcome.FORBIDDEN,
                b"",
            )
    assert hits["current"] == 2  # not retried


async def test_a_silent_mirror_is_named_with_the_time_it_had() -> None:
    """Not "TimeoutError": which limit passed, after how long, and its setting's name."""
    settings = HttpSettings(retries=0, read_timeout_s=0.2)
    with StalledServer() as silent, pytest.raises(TargetError) as caught:
        await read_current(silent.port, settings, Waits())
    assert "no answer within 0.2 s (the reader's read limit)" in str(caught.value)


def connection_key(host: str, port: int) -> object:
    """aiohttp's key of a connection (its fields vary by version: the rest are None)."""
    from aiohttp.client_reqrep import ConnectionKey

    values = {"host": host, "port": port, "is_ssl": False, "ssl": True}
    return ConnectionKey._make(values.get(name) for name in ConnectionKey._fields)


def test_connect_failures_are_worded_without_aiohttps_repr() -> None:
    key = connection_key("mirror.example", 80)
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connect call failed"))  # type: ignore[arg-type]
    dns = aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known"))  # type: ignore[arg-type]
    assert "ssl:default" in str(refused)  # what aiohttp itself says
    reasons = [translate_error(exc, URL).reason for exc in (refused, dns)]  # type: ignore[union-attr]
    assert reasons == [
        "cannot connect to mirror.example:80: connection refused",
        "DNS lookup failed: cannot resolve mirror.example",
    ]
