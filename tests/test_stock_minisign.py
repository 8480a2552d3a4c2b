"""Readers with stock minisign only: verify.html and the digest's footer print the root
key and two commands (keys.json with the root key, then a page with the signing key
keys.json certifies). Debian's real `minisign` runs them, as printed, on a built edition.
The download commands verify.html and the daily file print (curl --compressed, wget
--compression=auto) fetch from a compressed S3 mirror what minisign accepts."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import lxml.html
import pytest

from mirror.cli import run
from mirror.newsroom import config_for
from mirror.trust import minisign

from cli_configs import cli, mirror_table, with_store, write_config
from moto_server import REGION, create_bucket
from stock_minisign import minisign_binary, stock_tool

SECRET = "a-long-enough-unsubscribe-secret"


@pytest.fixture
def rooted(tmp_path: Path, fetched_store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config with an offline root that certified the signing key; edition built."""
    monkeypatch.setenv("MIRROR_UNSUBSCRIBE_SECRET", SECRET)
    root = minisign.generate_key()
    offline = tmp_path / "offline"
    minisign.write_key_pair(root, offline / "root.key", offline / "root.pub", None)
    signing = minisign.generate_key()
    keys = tmp_path / "keys"
    minisign.write_key_pair(signing, keys / "mirror.key", keys / "mirror.pub", None)
    text = config_for("http://127.0.0.1:9/", tmp_path) + (
        '\n[[mirrors]]\nname = "a"\ntype = "directory"\npath = "a"\n'
        'public_url = "https://a.example.net/m/"\n'
    )
    text = text.replace(
        "[signing]\n", f'[signing]\nroot_public_key_file = "{offline / "root.pub"}"\n'
    ).replace("[digest]\n", '[digest]\nunsubscribe_url = "https://news.example.org/u"\n')
    path = tmp_path / "mirror.toml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "state").mkdir()
    shutil.copy(fetched_store, tmp_path / "state" / "mirror.db")
    config = ["-c", str(path)]
    assert run([*config, "keys", "certify", "--root-key", str(offline / "root.key")]) == 0
    assert run([*config, "build"]) == 0
    return path


def run_printed(command: str, folder: Path, page: Path) -> subprocess.CompletedProcess[str]:
    """A printed `minisign -Vm FILE -P KEY` line, run as is in `folder` (the page's
    placeholder name replaced by a real page's)."""
    words = shlex.split(command)
    assert words[:2] == ["minisign", "-Vm"] and words[3] == "-P", command
    cwd = folder
    if words[2] != "keys.json":
        words[2], cwd = page.name, page.parent
    return subprocess.run(
        [minisign_binary(), *words[1:]], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def check_both(commands: list[str], edition: Path, page: Path, root: str, signing: str) -> None:
    keys_command, page_command = commands
    assert keys_command == f"minisign -Vm keys.json -P {root}"
    assert page_command.endswith(f".html -P {signing}")
    checked = run_printed(keys_command, edition, page)
    assert checked.returncode == 0, checked.stderr
    assert re.search(r"mirror-keys serial:1 epoch:0 expires:\S+Z", checked.stdout)
    checked = run_printed(page_command, edition, page)
    assert checked.returncode == 0, checked.stderr
    assert f"path:{page.relative_to(edition).as_posix()}" in checked.stdout


@pytest.mark.slow
def test_the_printed_commands_check_keys_json_then_a_page(
    rooted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = rooted.parent
    edition = folder / "edition"
    root = (folder / "offline" / "root.pub").read_text().splitlines()[1]
    signing = (folder / "keys" / "mirror.pub").read_text().splitlines()[1]
    page = next((edition / "articles").rglob("*.html"))

    html = lxml.html.fromstring((edition / "verify.html").read_bytes())
    shown = [node.text_content() for node in html.iter("code")]
    assert root in shown  # the root key line itself
    printed = [line for line in shown if line.startswith("minisign -Vm ")]
    check_both([line for line in printed if "manifests/" not in line][-2:], edition, page,
               root, signing)  # fmt: skip
    text = html.text_content()
    assert "What revocation does, and does not do" in text
    assert "can be fooled until" in text

    assert run(["-c", str(rooted), "subscribers", "add", "reader@example.org"]) == 0
    capsys.readouterr()
    assert run(["-c", str(rooted), "digest", "send", "--dry-run"]) == 0
    body = capsys.readouterr().out
    lines = [line.strip() for line in body.splitlines()]
    assert root in lines
    assert f"mirror verify MIRROR-URL --key {root} --min-serial 1" in lines
    printed = [line for line in lines if line.startswith("minisign -Vm ")]
    assert len(printed) == 3  # the manifest, then keys.json and a page
    check_both(printed[1:], edition, page, root, signing)


@pytest.mark.slow
def test_the_russian_verify_page_prints_the_same_commands_in_russian(rooted: Path) -> None:
    folder = rooted.parent
    edition = folder / "edition"
    root = (folder / "offline" / "root.pub").read_text().splitlines()[1]
    signing = (folder / "keys" / "mirror.pub").read_text().splitlines()[1]
    pages = (edition / "articles").rglob("*.html")
    page = next(p for p in pages if lxml.html.parse(str(p)).getroot().get("lang") == "ru")

    html = lxml.html.fromstring((edition / "verify-ru.html").read_bytes())
    assert html.get("lang") == "ru"
    text = html.text_content()
    assert "Корневой ключ: проверка одним minisign" in text
    assert "What revocation does" not in text
    shown = [node.text_content() for node in html.iter("code")]
    printed = [line for line in shown if line.startswith("minisign -Vm ")]
    check_both([line for line in printed if "manifests/" not in line][-2:], edition, page,
               root, signing)  # fmt: skip


def fetch(command: list[str], folder: Path) -> Path:
    """Run a download command (its first word the tool's name) in a new `folder`; the
    one file it saved."""
    folder.mkdir()
    done = subprocess.run(
        [stock_tool(command[0]), *command[1:]], cwd=folder, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    (saved,) = folder.iterdir()
    return saved


def minisign_check(page: Path, signature: bytes, key: str) -> subprocess.CompletedProcess[str]:
    """`minisign -Vm PAGE -P KEY` with `signature` saved beside the page."""
    page.with_name(page.name + ".minisig").write_bytes(signature)
    return subprocess.run(
        [minisign_binary(), "-Vm", page.name, "-P", key],
        cwd=page.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.usefixtures("aws_env")
@pytest.mark.slow
def test_the_printed_download_commands_save_what_minisign_checks_from_a_compressed_s3_mirror(
    tmp_path: Path, fetched_store: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = create_bucket(moto_endpoint)
    url = f"{moto_endpoint}/{bucket}/"
    s3 = {"type": "s3", "endpoint_url": moto_endpoint, "region": REGION}
    tables = mirror_table("s3", bucket=bucket, public_url=url, **s3)
    config = str(with_store(write_config(tmp_path, "http://127.0.0.1:9/", tables), fetched_store))
    assert cli(capsys, "-c", config, "build")[0] == 0
    assert cli(capsys, "-c", config, "publish")[0] == 0
    assert cli(capsys, "-c", config, "mirrors", "setup", "s3", "--provider", "minio")[0] == 0
    edition = tmp_path / "edition"
    key = (tmp_path / "keys" / "mirror.pub").read_text().splitlines()[1]
    article = next(edition.glob("articles/*/*/*.html")).relative_to(edition).as_posix()
    verify = lxml.html.fromstring((edition / "verify.html").read_bytes())
    (generic,) = verify.xpath("//pre[@id='download']/code/text()")
    daily = next(p for p in edition.glob("editions/*.html") if p.name != "index.html")
    printed = [
        code.text_content()
        for code in lxml.html.fromstring(daily.read_bytes()).iter("code")
        if code.text_content().startswith("curl ")
    ]
    assert printed and daily.relative_to(edition).as_posix() in printed[0]
    cases = [(line.replace("URL", url + article), article) for line in generic.splitlines()]
    cases += [(line, daily.relative_to(edition).as_posix()) for line in printed[0].splitlines()]
    assert len(cases) == 4  # curl and wget, for a page and for the daily file
    for number, (line, path) in enumerate(cases):
        signature = (edition / (path + ".minisig")).read_bytes()
        saved = fetch(shlex.split(line), tmp_path / f"asked-{number}")
        assert saved.read_bytes() == (edition / path).read_bytes(), line
        checked = minisign_check(saved, signature, key)
        assert checked.returncode == 0 and f"path:{path}" in checked.stdout, checked.stderr

    for number, tool in enumerate((["curl", "-sS", "-O"], ["wget", "-q"])):
        saved = fetch([*tool, url + article], tmp_path / f"plain-{number}")
        assert saved.read_bytes()[:2] == b"\x1f\x8b", tool  # gzip, though none was asked for
        signature = (edition / (article + ".minisig")).read_bytes()
        assert minisign_check(saved, signature, key).returncode != 0, tool
