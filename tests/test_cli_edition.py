"""The edition's commands end to end through the CLI: keygen, keys certify, build,
verify, articles hide; exit codes and JSON documents."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from aiohttp import web

from mirror.cli import run
from mirror.errors import KeyFileError
from mirror.newsroom import config_for

from servers import serve


@pytest.fixture
def config_path(fetched_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "mirror.toml"
    path.write_text(config_for("http://127.0.0.1:9/", tmp_path), encoding="utf-8")
    (tmp_path / "state").mkdir()
    shutil.copy(fetched_store, tmp_path / "state" / "mirror.db")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = run(list(args))
    out = capsys.readouterr()
    return status, out.out, out.err


def with_root(config_path: Path, root_pub: Path) -> None:
    text = config_path.read_text(encoding="utf-8")
    text = text.replace("[signing]\n", f'[signing]\nroot_public_key_file = "{root_pub}"\n')
    config_path.write_text(text, encoding="utf-8")


def test_keygen_build_verify_and_tamper(
    config_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = str(config_path)
    folder = config_path.parent
    status, _, err = cli(capsys, "-c", c, "keygen")
    assert status == 0 and "RW" in err
    secret = folder / "keys" / "mirror.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_bytes() not in err.encode()
    assert cli(capsys, "-c", c, "keygen")[0] == 2  # never overwrites

    status, out, _ = cli(capsys, "-c", c, "build", "--json")
    report = json.loads(out)
    assert status == 0 and report["version"] == 1 and report["articles"] == 8
    assert {"version", "articles", "files", "bytes", "largest"} <= set(report)

    edition = folder / "edition"
    key = str(folder / "keys" / "mirror.pub")
    cache = folder / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    status, out, _ = cli(capsys, "verify", str(edition), "--key", key, "--json")
    assert status == 0 and json.loads(out)["ok"] is True

    page = next((edition / "articles").rglob("*.html"))
    page.write_bytes(page.read_bytes().replace(b"<p>", b"<p>FORGED ", 1))
    status, out, _ = cli(capsys, "verify", str(edition), "--key", key, "--json")
    result = json.loads(out)
    assert status == 3 and result["ok"] is False
    assert page.relative_to(edition).as_posix() in result["tampered"]


def test_insecure_secret_key_is_refused(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = str(config_path)
    cli(capsys, "-c", c, "keygen")
    (config_path.parent / "keys" / "mirror.key").chmod(0o644)
    status, _, err = cli(capsys, "-c", c, "build")
    assert status == 2 and "chmod 600" in err


def test_root_certifies_then_revokes_the_signing_key(
    config_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = str(config_path)
    folder = config_path.parent
    offline = folder / "offline"
    assert cli(capsys, "keygen", "--root", "--out", str(offline), "--no-passphrase")[0] == 0
    cli(capsys, "-c", c, "keygen")
    with_root(config_path, offline / "root.pub")
    status, _, err = cli(capsys, "-c", c, "build")
    assert status == 2 and "keys certify" in err  # no certificate yet

    root_key = str(offline / "root.key")
    assert cli(capsys, "-c", c, "keys", "certify", "--root-key", root_key, "--days", "30")[0] == 0
    assert cli(capsys, "-c", c, "build")[0] == 0
    edition = folder / "edition"
    assert (edition / "keys.json").exists() and (edition / "keys.json.minisig").exists()
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
    status, out, _ = cli(
        capsys, "verify", str(edition), "--key", str(offline / "root.pub"), "--json"
    )
    assert status == 0 and json.loads(out)["ok"] is True

    signing = str(folder / "keys" / "mirror.pub")
    status = cli(capsys, "-c", c, "keys", "certify", "--root-key", root_key, "--revoke", signing)[0]
    assert status != 0  # the root refuses to certify a key it revokes in the same breath
    stolen = (folder / "keys" / "mirror.pub").read_text().splitlines()[1]
    (folder / "keys" / "mirror.key").unlink()
    (folder / "keys" / "mirror.pub").unlink()
    cli(capsys, "-c", c, "keygen")  # a new online key after the old one was stolen
    revoke = cli(capsys, "-c", c, "keys", "certify", "--root-key", root_key, "--revoke", stolen)
    assert revoke[0] == 0
    assert cli(capsys, "-c", c, "build")[0] == 0
    status, out, _ = cli(
        capsys, "verify", str(edition), "--key", str(offline / "root.pub"), "--json"
    )
    assert status == 0 and json.loads(out)["ok"] is True


def test_an_unencrypted_root_key_needs_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offline = tmp_path / "offline"
    status, _, err = cli(capsys, "keygen", "--root", "--out", str(offline))
    assert status == 2 and "--no-passphrase" in err and "--passphrase-file" in err
    assert not offline.exists() or not any(offline.iterdir())  # nothing written
    with pytest.raises(SystemExit) as caught:  # one way of protecting it, not two
        run(["keygen", "--root", "--out", str(offline), "--no-passphrase",
             "--passphrase-env", "ROOT_PASS"])  # fmt: skip
    assert caught.value.code == 2


def test_the_root_key_is_encrypted_with_a_passphrase_from_a_file(
    config_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from functools import partial

    from mirror.trust import minisign

    monkeypatch.setattr(  # scrypt at minisign's cost takes 1 GiB: a cheaper one for the test
        minisign, "write_key_pair",
        partial(minisign.write_key_pair, kdf_opslimit=524_288, kdf_memlimit=16_777_216),
    )  # fmt: skip
    c, offline = str(config_path), config_path.parent / "offline"
    passphrase = config_path.parent / "root.pass"
    passphrase.write_text("correct horse battery\n", encoding="utf-8")
    passphrase.chmod(0o600)
    assert cli(capsys, "keygen", "--root", "--out", str(offline),
               "--passphrase-file", str(passphrase))[0] == 0  # fmt: skip
    with pytest.raises(KeyFileError, match="passphrase"):
        minisign.load_secret_key(offline / "root.key", None)
    assert minisign.load_secret_key(offline / "root.key", "correct horse battery")
    cli(capsys, "-c", c, "keygen")
    root_key = str(offline / "root.key")
    status, _, err = cli(capsys, "-c", c, "keys", "certify", "--root-key", root_key)
    assert status == 2 and "passphrase" in err
    status, _, err = cli(capsys, "-c", c, "keys", "certify", "--root-key", root_key,
                         "--passphrase-file", str(passphrase))  # fmt: skip
    assert status == 0, err
    assert "correct horse" not in err


def test_hide_takes_an_article_down(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(config_path)
    cli(capsys, "-c", c, "keygen")
    cli(capsys, "-c", c, "build")
    _, out, _ = cli(capsys, "-c", c, "articles", "list", "--json")
    victim = json.loads(out)["articles"][0]
    assert cli(capsys, "-c", c, "articles", "hide", victim["url"])[0] == 0
    assert cli(capsys, "-c", c, "articles", "hide", "https://nowhere.example/")[0] == 2
    _, out, _ = cli(capsys, "-c", c, "build", "--json")
    assert json.loads(out)["version"] == 2
    assert not (config_path.parent / "edition" / victim["path"]).exists()


def test_verify_a_mirror_over_http(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    from datetime import UTC, datetime

    from mirror.verify.run import VerifyReport, verify_target

    c = str(config_path)
    cli(capsys, "-c", c, "keygen")
    cli(capsys, "-c", c, "build")
    edition = config_path.parent / "edition"
    app = web.Application()
    app.router.add_static("/bucket/", edition)

    async def check() -> VerifyReport:
        async with serve(app) as port:
            return await verify_target(
                f"http://127.0.0.1:{port}/bucket/",
                str(config_path.parent / "keys" / "mirror.pub"),
                now=datetime.now(UTC),
                state_dir=config_path.parent / "cache",
            )

    report = asyncio.run(check())
    assert report.ok and report.version == 1


def set_key(config_path: Path, section: str, line: str) -> None:
    """Put `line` at the top of `[section]` (TOML takes the first of a key only once:
    the sample config's own line for that key is dropped)."""
    key = line.split("=")[0].strip()
    kept = [
        row
        for row in config_path.read_text(encoding="utf-8").splitlines()
        if row.split("=")[0].strip() != key
    ]
    text = "\n".join(kept) + "\n"
    if f"[{section}]\n" not in text:
        text += f"[{section}]\n"
    config_path.write_text(text.replace(f"[{section}]\n", f"[{section}]\n{line}\n", 1))


def test_build_into_the_config_folder_is_refused_and_deletes_nothing(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = str(config_path)
    assert cli(capsys, "-c", c, "keygen")[0] == 0
    set_key(config_path, "edition", 'output_dir = "."')
    folder = config_path.parent
    before = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    (folder / "notes.txt").write_text("ops' own notes\n")
    status, out, err = cli(capsys, "-c", c, "build", "--json")
    assert status == 2 and out == ""
    assert "edition.output_dir" in err and "is the config file's folder" in err
    assert "Traceback" not in err
    after = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    assert after == sorted([*before, "notes.txt"])


@pytest.mark.parametrize(
    ("section", "line", "key"),
    [
        ("edition", 'output_dir = ""', "edition.output_dir"),
        ("state", 'path = ""', "state.path"),
        ("signing", "expires_days = 999999999", "signing.expires_days"),
        ("source", "timeout_s = inf", "source.timeout_s"),
    ],
)
def test_bad_values_are_named_with_exit_2_not_a_traceback(
    config_path: Path, capsys: pytest.CaptureFixture[str], section: str, line: str, key: str
) -> None:
    assert cli(capsys, "-c", str(config_path), "keygen")[0] == 0
    set_key(config_path, section, line)
    for command in (["build"], ["fetch"], ["status"]):
        status, _, err = cli(capsys, "-c", str(config_path), *command)
        assert status == 2, (command, err)
        assert key in err and "Traceback" not in err


def test_build_warns_once_about_files_it_did_not_write_and_keeps_them(
    config_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = str(config_path)
    assert cli(capsys, "-c", c, "keygen")[0] == 0
    edition = config_path.parent / "edition"
    edition.mkdir()
    (edition / "robots.txt").write_text("User-agent: *\n")
    (edition / "archive").mkdir()
    (edition / "archive" / "old.html").write_text("<p>an older site's page</p>\n")
    status, _, err = cli(capsys, "-c", c, "build")
    assert status == 0
    assert err.count("no build wrote") == 1 and "holds 2 file(s) no build wrote" in err
    assert (edition / "robots.txt").read_text() == "User-agent: *\n"
    assert (edition / "archive" / "old.html").exists()
    monkeypatch.setenv("XDG_CACHE_HOME", str(config_path.parent / "cache"))
    key = str(config_path.parent / "keys" / "mirror.pub")
    status, out, _ = cli(capsys, "verify", str(edition), "--key", key, "--json")
    assert status == 3 and json.loads(out)["extra"] == ["archive/old.html", "robots.txt"]
