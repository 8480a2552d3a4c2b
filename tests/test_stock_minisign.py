"""Readers with stock minisign only: verify.html and the digest's footer print the root
key and two commands (keys.json with the root key, then a page with the signing key
keys.json certifies). Debian's real `minisign` runs them, as printed, on a built edition."""

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

from stock_minisign import minisign_binary

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
