"""Refused connections and silent servers are worded alike by every client (HTTP, SMTP,
IMAP, the OONI API): "cannot connect to HOST:PORT: connection refused", "no answer within
N s (KEY)" with the key that sets the limit; and a mirror answering 403 names its fix."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from botocore import exceptions as boto_errors

from mirror.config import MirrorConfig, ReachConfig
from mirror.errors import (
    ImapConnectionError,
    MirrorUnreachableError,
    ReachError,
    SmtpConnectionError,
)
from mirror.mail.imap import ImapMailbox, ImapSettings
from mirror.mail.smtp import SmtpTransport
from mirror.publish.status import mirror_status
from mirror.reach.ooni import OoniClient
from mirror.storage.s3 import S3Limits, translate_error
from mirror.trust import minisign
from mirror.verify.readers import HttpSettings

from cli_configs import cli, mirror_table, with_store, write_config
from moto_server import REGION
from servers import closed_port, serve
from stalled_servers import StalledServer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def smtp(port: int, timeout_s: float = 5) -> SmtpTransport:
    url = f"smtp+insecure://127.0.0.1:{port}"
    return SmtpTransport(url, sender="news@example.org", timeout_s=timeout_s)


def imap(port: int, timeout_s: float = 5) -> ImapMailbox:
    url = f"imap+insecure://127.0.0.1:{port}"
    return ImapMailbox(ImapSettings(url, "reader", "secret", timeout_s=timeout_s))


async def ooni_page(api: str, timeout_s: float = 5) -> None:
    async with OoniClient(ReachConfig(ooni_api=api, timeout_s=timeout_s)) as client:
        await client.measurements("https://m.example/", "RU", NOW, NOW)


async def test_smtp_names_the_refused_port() -> None:
    port = closed_port()
    with pytest.raises(SmtpConnectionError) as caught:
        await smtp(port).probe()
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in str(caught.value)
    assert "Errno" not in str(caught.value) and "Connect call failed" not in str(caught.value)


async def test_a_silent_smtp_server_is_named_with_its_limit() -> None:
    with StalledServer() as silent, pytest.raises(SmtpConnectionError) as caught:
        await smtp(silent.port, timeout_s=0.3).probe()
    assert "no answer within 0.3 s (digest.timeout_s)" in str(caught.value)


async def test_imap_names_the_refused_port() -> None:
    port = closed_port()
    with pytest.raises(ImapConnectionError) as caught:
        await imap(port).open()
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in str(caught.value)


async def test_a_silent_imap_server_is_named_with_its_limit() -> None:
    with StalledServer() as silent, pytest.raises(ImapConnectionError) as caught:
        await imap(silent.port, timeout_s=0.3).open()
    assert "no answer within 0.3 s (mailin.timeout_s)" in str(caught.value)


async def test_the_ooni_api_refused_and_silent() -> None:
    port = closed_port()
    with pytest.raises(ReachError) as refused:
        await ooni_page(f"http://127.0.0.1:{port}")
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in str(refused.value)
    with StalledServer() as silent, pytest.raises(ReachError) as caught:
        await ooni_page(silent.url, timeout_s=0.3)
    assert "within 0.3 s (reach.timeout_s)" in str(caught.value)
    assert "TimeoutError" not in str(caught.value)


async def forbidden(request: web.Request) -> web.Response:
    return web.Response(status=403)


def forbidding() -> web.Application:
    app = web.Application()
    app.router.add_get("/{tail:.*}", forbidden)
    return app


@pytest.mark.parametrize(
    ("backend", "fix"),
    [
        ("s3", "run `mirror mirrors setup pub`, or check the bucket policy"),
        ("directory", "let the web server serving {url} read /srv/pub"),
    ],
)
async def test_a_403_names_the_mirror_once_and_its_backends_fix(backend: str, fix: str) -> None:
    key = minisign.generate_key().public
    async with serve(forbidding()) as port:
        url = f"http://127.0.0.1:{port}/pub/"
        mirror = MirrorConfig(
            "pub", backend, url, bucket="pub" if backend == "s3" else "",
            path=Path("/srv/pub") if backend == "directory" else None,
        )  # fmt: skip
        status = await mirror_status(mirror, key, now=NOW, local_version=1)
    line = status.summary()
    assert not status.public and status.fix == fix.format(url=url)
    assert line == f"pub: NOT PUBLIC (readers get 403 Forbidden): {fix.format(url=url)}"
    assert line.count("pub:") == 1 and line.lower().count("not public") == 1


async def test_a_silent_mirror_is_reported_at_its_own_timeout_not_the_deadline() -> None:
    """status reads each mirror within its `timeout_s` per request: a silent one is
    unreachable for that limit, named as the config names it, long before --deadline-s."""
    key = minisign.generate_key().public
    with StalledServer() as silent:
        mirror = MirrorConfig("slow", "s3", f"{silent.url}/slow/", bucket="slow", timeout_s=0.3)
        status = await mirror_status(
            mirror, key, now=NOW, local_version=1, deadline_s=600,
            http=HttpSettings(retries=0),
        )  # fmt: skip
    assert not status.reachable
    assert "no answer within 0.3 s (mirrors[slow].timeout_s)" in status.error
    assert "deadline" not in status.error


@pytest.mark.usefixtures("aws_env")
def test_publish_to_a_refused_s3_endpoint_says_so_in_our_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fetched_store: Path
) -> None:
    """botocore's "Could not connect to the endpoint URL" becomes the shared wording."""
    port = closed_port()
    endpoint = f"http://127.0.0.1:{port}"
    tables = mirror_table(
        "dead", type="s3", bucket="bbb", endpoint_url=endpoint, region=REGION,
        public_url=f"{endpoint}/bbb/",
    )  # fmt: skip
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    assert cli(capsys, "-c", config, "build")[0] == 0
    status, _, err = cli(capsys, "-c", config, "publish")
    assert status == 1
    assert f"publish dead: FAILED: cannot connect to 127.0.0.1:{port}: connection refused" in err
    assert "Could not connect to the endpoint URL" not in err


def test_a_silent_s3_endpoint_names_the_mirrors_timeout_setting() -> None:
    exc = boto_errors.ReadTimeoutError(endpoint_url="http://127.0.0.1:1/b/k", error="read")
    error = translate_error("eu-1", exc, S3Limits(read_timeout_s=7.0))
    assert isinstance(error, MirrorUnreachableError)
    assert "no answer within 7 s (mirrors[eu-1].timeout_s)" in str(error)
    connect = boto_errors.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1/b/k", error="c")
    worded = str(translate_error("eu-1", connect, S3Limits(connect_timeout_s=2.0)))
    assert "no answer within 2 s (mirrors[eu-1].timeout_s)" in worded
