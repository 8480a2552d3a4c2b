"""Revocation for a reader with no memory: keys.json's serial against the other mirrors
(quorum) and against --min-serial, over real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from mirror.cli import run
from mirror.errors import KeyCertificateError, StaleKeysError
from mirror.trust import certificate, minisign
from mirror.verify.freshness import MAX_PEERS, PeerKeys, check_serial, peer_urls
from mirror.verify.readers import HttpSettings
from mirror.verify.run import verify_target

from editions import SITE, make_edition
from servers import closed_port, serve

FAST = HttpSettings(retries=0, timeout_s=10)
DAY = timedelta(days=1)


def mirrors_json(*urls: str) -> bytes:
    """mirrors.json as the build writes it."""
    document = {
        "publication": "The Example Times",
        "mirrors": [
            {"name": f"m{n}", "url": url, "index": url + "index.html"} for n, url in enumerate(urls)
        ],
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


# ---------------------------------------------------------------- pure parts


def test_peer_urls_leave_out_the_copy_itself_and_are_bounded() -> None:
    listed = [f"https://s3.example.net/bucket-{n}/" for n in range(12)]
    own = "HTTPS://S3.example.net/bucket-0"  # same mirror, spelled differently
    chosen = peer_urls(mirrors_json(*listed, listed[1], "ftp://x/", "file:///etc/"), own)
    assert chosen == listed[1 : 1 + MAX_PEERS]


@pytest.mark.parametrize("data", [b"[]", b"\xff", b"{}", b'{"mirrors": [1]}', b"[" * 9000])
def test_garbled_mirror_lists_name_no_peers(data: bytes) -> None:
    assert peer_urls(data, "https://a/") == []


def test_check_serial() -> None:
    peers = [PeerKeys("https://a/", 3), PeerKeys("https://b/", error="unreachable")]
    check_serial(3, peers, min_serial=3)
    with pytest.raises(
        StaleKeysError, match="serial 2 is older than serial 3 served by https://a/"
    ):
        check_serial(2, peers)
    with pytest.raises(StaleKeysError, match="older than --min-serial 4"):
        check_serial(3, [], min_serial=4)


# ---------------------------------------------------------------- the attack


@dataclass(frozen=True)
class Attack:
    """The root certified key A (serial 1), then revoked it for B (serial 2). A thief
    of A serves an old copy (serial 1, everything re-signed by A) on one mirror; the
    honest mirror, listed in the copy's own mirrors.json, serves serial 2."""

    root: minisign.SecretKey
    b: minisign.SecretKey  # the honest signing key
    serial2: dict[str, bytes]  # keys.json and its signature, serial 2
    attacker_url: str
    honest_url: str
    attacker: Path
    honest: Path


def certify_then_revoke(
    root: minisign.SecretKey, a: minisign.SecretKey, b: minisign.SecretKey, now: datetime
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """keys.json serial 1 (certifies A), then serial 2 (revokes A, certifies B)."""
    data1, sig1 = certificate.certify(root, a.public, now=now - 10 * DAY, days=45)
    one = certificate.check_certificate(root.public, data1, sig1, now=now)
    data2, sig2 = certificate.certify(
        root, b.public, now=now - DAY, days=45, previous=one, revoke=(a.public,)
    )
    serial1 = {"keys.json": data1, "keys.json.minisig": sig1}
    serial2 = {"keys.json": data2, "keys.json.minisig": sig2}
    return serial1, serial2


@pytest.fixture
async def attack(tmp_path: Path) -> AsyncIterator[Attack]:
    now = datetime.now(UTC).replace(microsecond=0)
    root, a, b = minisign.generate_key(), minisign.generate_key(), minisign.generate_key()
    serial1, serial2 = certify_then_revoke(root, a, b, now)
    app = web.Application()
    for name in ("attacker", "honest"):
        (tmp_path / name).mkdir()
        app.router.add_static(f"/{name}/", tmp_path / name)
    async with serve(app) as port:
        urls = [f"http://127.0.0.1:{port}/{name}/" for name in ("attacker", "honest")]
        listing = {"mirrors.json": mirrors_json(*urls)}
        times = {"created": now - timedelta(hours=1), "expires": now + 7 * DAY}
        # the thief's copy: the old keys.json, a page and a manifest signed by A, version 9
        make_edition(tmp_path / "attacker", a, 9, {**SITE, **listing, **serial1}, **times)
        make_edition(tmp_path / "honest", b, 5, {**SITE, **listing, **serial2}, **times)
        yield Attack(root, b, serial2, *urls, tmp_path / "attacker", tmp_path / "honest")


async def test_a_reader_with_no_memory_refuses_a_revoked_key_by_quorum(
    attack: Attack, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    root = attack.root.public
    alone = await verify_target(
        attack.attacker_url, root, now=now, state_dir=tmp_path / "c1", http=FAST, ask_peers=False
    )
    assert alone.ok and alone.keys_serial == 1  # what a reader with no memory saw before
    with pytest.raises(StaleKeysError, match=f"serial 1 is older than serial 2 served by "
                       f"{attack.honest_url}"):  # fmt: skip
        await verify_target(attack.attacker_url, root, now=now, state_dir=tmp_path / "c2",
                            http=FAST)  # fmt: skip
    assert not (tmp_path / "c2" / "seen.json").exists()  # a refused copy is not remembered
    honest = await verify_target(
        attack.honest_url, root, now=now, state_dir=tmp_path / "c3", http=FAST
    )
    assert honest.ok and honest.keys_serial == 2
    assert honest.peers == [PeerKeys(attack.attacker_url, 1, honest.peers[0].expires)]
    assert honest.to_json()["peers"][0]["serial"] == 1


async def test_min_serial_refuses_the_old_copy_alone(attack: Attack, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with pytest.raises(StaleKeysError, match="older than --min-serial 2"):
        await verify_target(
            str(attack.attacker), attack.root.public, now=now, state_dir=tmp_path, min_serial=2
        )
    report = await verify_target(
        str(attack.honest), attack.root.public, now=now, state_dir=tmp_path, min_serial=2
    )
    assert report.ok and report.peers == []  # a folder asks no mirror
    with pytest.raises(KeyCertificateError, match="--min-serial needs the root key"):
        await verify_target(  # the signing key alone cannot tell serials apart
            str(attack.honest), attack.b.public, now=now, state_dir=tmp_path, min_serial=2
        )


async def test_the_command_line_refuses_with_exit_3(
    attack: Attack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    root = attack.root.public.line()
    status = await asyncio.to_thread(run, ["verify", attack.attacker_url, "--key", root])
    err = capsys.readouterr().err
    assert status == 3
    assert f"serial 1 is older than serial 2 served by {attack.honest_url}" in err
    args = ["verify", str(attack.attacker), "--key", root, "--min-serial", "2"]
    assert await asyncio.to_thread(run, args) == 3
    assert "older than --min-serial 2" in capsys.readouterr().err
    args = ["verify", attack.honest_url, "--key", root, "--min-serial", "2", "--json"]
    assert await asyncio.to_thread(run, args) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["keys_serial"] == 2 and document["peers"][0]["serial"] == 1
    assert "keys.json serial 2 (expires " in err
    assert await asyncio.to_thread(run, ["verify", ".", "--key", root, "--min-serial", "-1"]) == 2


async def test_unreachable_and_false_mirrors_are_reported_not_fatal(
    attack: Attack, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/gone/"
    forged_root = minisign.generate_key()
    forged = tmp_path / "forged"
    data, signature = certificate.certify(forged_root, forged_root.public, now=datetime.now(UTC),
                                   days=45)  # fmt: skip
    forged.mkdir()
    (forged / "keys.json").write_bytes(data.replace(b'"serial":1', b'"serial":99'))
    (forged / "keys.json.minisig").write_bytes(signature)
    app = web.Application()
    app.router.add_static("/forged/", forged)
    async with serve(app) as port:
        false_url = f"http://127.0.0.1:{port}/forged/"
        listing = mirrors_json(attack.honest_url, dead, false_url, attack.attacker_url)
        times = {"created": datetime.now(UTC) - DAY, "expires": datetime.now(UTC) + DAY}
        files = {**SITE, "mirrors.json": listing, **attack.serial2}
        make_edition(attack.honest, attack.b, 6, files, **times)
        report = await verify_target(
            attack.honest_url, attack.root.public, now=datetime.now(UTC),
            state_dir=tmp_path / "cache", http=FAST,
        )  # fmt: skip
    assert report.ok, report
    by_url = {peer.url: peer for peer in report.peers}
    assert by_url[dead].serial is None and "cannot connect" in by_url[dead].error
    assert by_url[false_url].serial is None and "not signed by the root" in by_url[false_url].error
    assert by_url[attack.attacker_url].serial == 1


async def test_an_expired_keys_json_is_refused_by_verify_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    root, signing = minisign.generate_key(), minisign.generate_key()
    data, signature = certificate.certify(root, signing.public, now=now - 50 * DAY, days=45)
    expired_at = certificate.format_time(now - 5 * DAY)
    files = {**SITE, "keys.json": data, "keys.json.minisig": signature}
    times = {"created": now - DAY, "expires": now + DAY}  # the manifest itself is fresh
    make_edition(tmp_path / "e", signing, 1, files, **times)
    with pytest.raises(KeyCertificateError, match=rf"keys\.json expired at {expired_at}"):
        await verify_target(str(tmp_path / "e"), root.public, now=now, state_dir=tmp_path)
    app = web.Application()
    app.router.add_static("/e/", tmp_path / "e")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    async with serve(app) as port:
        url = f"http://127.0.0.1:{port}/e/"
        args = ["verify", url, "--key", root.public.line()]
        assert await asyncio.to_thread(run, args) == 3
    assert f"keys.json expired at {expired_at}" in capsys.readouterr().err
