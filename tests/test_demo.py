from __future__ import annotations

import email
import email.policy
import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mirror.cli import run


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"
    status = run(["demo", "--dir", str(folder), "--articles", "6", "--no-serve", "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    report = json.loads(out.out)
    assert report["fetch"]["new"] == 6 and report["fetch"]["failed"] == []
    assert report["build"]["version"] == 1 and report["build"]["articles"] == 6
    mirrors = report["publish"]["mirrors"]
    assert [m["name"] for m in mirrors] == ["mirror-a", "mirror-b"]
    assert all(m["ok"] and m["files_uploaded"] > 0 for m in mirrors)
    assert all(v["ok"] for v in report["verify"].values())
    # --no-serve stopped its servers: the JSON names none of their URLs
    assert report["serving"] is False and "urls" not in report and "newsroom" not in report
    urls = served_urls(folder)
    assert (folder / "mirrors" / "mirror-a" / "index.html").is_file()
    no_serve_says_folders_and_commands(report, out.err)
    # the digest went to the two sample subscribers, as files in the outbox: added as
    # ops add them, so each got the welcome
    assert report["digest"]["sent"] == 2 and report["digest"]["failed"] == []
    assert report["digest"]["welcomed"] == 2 and "(2 of them welcomes)" in out.err
    outbox = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(Path(report["digest"]["outbox"]).glob("*.eml"))
    ]
    messages = [m for m in outbox if m["To"] != "chitatel@example.net"]
    assert sorted(m["To"] for m in messages) == ["reader-en@example.org", "reader-ru@example.org"]
    for message in messages:
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        body = message.get_content()
        assert "RW" in body and urls["mirror-a"].split("//")[1] in body
    # a reader's request for mirrors, answered into the outbox
    mailin = report["mailin"]
    assert mailin["replied"] == 1 and mailin["failed"] == []
    request = email.message_from_bytes(
        Path(mailin["request"]).read_bytes(), policy=email.policy.default
    )
    assert request["Subject"] == "зеркала"
    reply = email.message_from_bytes(
        Path(mailin["reply"]).read_bytes(), policy=email.policy.default
    )
    assert reply["To"] == "chitatel@example.net" and reply["Auto-Submitted"] == "auto-replied"
    assert urls["mirror-a"] in reply.get_body(("plain",)).get_content()
    assert "the reply: " + mailin["reply"] in out.err
    # a second demo starts afresh in its own folder
    assert run(["demo", "--dir", str(folder), "--articles", "3", "--no-serve", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fetch"]["new"] == 3


def test_demo_refuses_to_wipe_a_folder_that_is_not_a_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert run(["demo", "--dir", str(tmp_path), "--no-serve"]) == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert "not a mirror demo folder" in capsys.readouterr().err


def served_urls(folder: Path) -> dict[str, str]:
    """The demo mirrors' public URLs (on the ports of the servers the demo stopped), as
    its config names them."""
    config = tomllib.loads((folder / "mirror.toml").read_text("utf-8"))
    return {table["name"]: table["public_url"] for table in config["mirrors"]}


def no_serve_says_folders_and_commands(report: dict, err: str) -> None:  # type: ignore[type-arg]
    """`--no-serve` stopped its servers: no URL of theirs is offered to open (not the
    mirrors', not the sample newsroom's); the folders are, with a command that serves
    them and one that verifies them (both run here)."""
    newsroom = tomllib.loads(Path(report["config"]).read_text("utf-8"))["publication"]["home_url"]
    assert "sample newsroom" not in err and newsroom.startswith("http://127.0.0.1:")
    for url in [newsroom, *served_urls(Path(report["folder"])).values()]:
        assert url.startswith("http://127.0.0.1:") and url not in err
    folders = report["folders"]
    for name, path in folders.items():
        assert f"mirror {name}: {path}" in err
    serve = next(line for line in err.splitlines() if "serve them: " in line)
    command = shlex.split(serve.split("serve them: ", 1)[1])
    assert command[:3] == ["python3", "-m", "http.server"] and folders["mirror-a"].startswith(
        command[command.index("-d") + 1]
    )
    check = next(line for line in err.splitlines() if "check a mirror yourself: " in line)
    verify = shlex.split(check.split("check a mirror yourself: ", 1)[1])
    assert verify[:2] == ["mirror", "verify"] and verify[2] == folders["mirror-a"]
    done = subprocess.run(
        [sys.executable, "-m", "mirror", *verify[1:]], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
