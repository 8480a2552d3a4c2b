"""The day's file attached to the digest: `digest send --dry-run` shows such a message,
the .minisig goes beside the file, and a config whose message cap cannot carry a file of
`edition.daily_max_bytes` is refused at load, naming both keys (README's setting works)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mirror.cli import run
from mirror.config import attachment_message_bytes, load_config, mailed_bytes
from mirror.errors import ConfigError

from digest_rig import parse, send, subscribe, with_smtp, with_unsubscribe
from smtp_servers import smtp_server

ROOT = Path(__file__).resolve().parent.parent


def readme_attach_settings() -> str:
    """The [digest] lines README gives for attach_edition (its toml example)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```toml\n\[digest\]\n(attach_edition = true\n.*?)```", readme, re.S)
    assert found, "README shows the [digest] settings for attach_edition"
    return found[1]


def with_digest(config: Path, lines: str) -> None:
    text = config.read_text(encoding="utf-8").replace("[digest]\n", f"[digest]\n{lines}")
    config.write_text(text, encoding="utf-8")


def test_dry_run_with_the_file_attached_prints_the_text_and_names_the_attachments(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_unsubscribe(built)
    with_digest(built, readme_attach_settings())
    subscribe(built, ("a@example.org", "en"))
    capsys.readouterr()
    assert run(["-c", str(built), "digest", "send", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "multipart/mixed" in out
    assert "All of the day's articles in one file" in out and "with its signature" in out
    names = re.findall(r"\[attached: (\S+), \d+ bytes\]", out)
    assert len(names) == 2 and names[1] == names[0] + ".minisig", out
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-en\.html", names[0])


def test_readme_settings_mail_the_file_with_its_signature(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with smtp_server() as server:
        with_smtp(built, server.port)
        with_digest(built, readme_attach_settings())
        subscribe(built, ("a@example.org", "en"))
        capsys.readouterr()
        status, report = send(built, capsys)
        assert status == 0 and report["sent"] == 1, report
        (received,) = server.handler.received
    message = parse(received.content)
    _, page, signature = message.iter_parts()
    out = built.parent / "edition"
    name = page.get_filename()
    (path,) = out.glob(f"editions/{name}")
    assert page.get_payload(decode=True) == path.read_bytes()
    assert signature.get_filename() == name + ".minisig"
    assert signature.get_payload(decode=True) == Path(f"{path}.minisig").read_bytes()


def test_a_cap_too_small_for_a_daily_file_is_refused_naming_both_keys(built: Path) -> None:
    with_digest(built, "attach_edition = true\n")  # max_message_bytes left at 200 000
    with pytest.raises(ConfigError) as refused:
        load_config(built)
    message = str(refused.value)
    assert "digest.max_message_bytes" in message and "edition.daily_max_bytes" in message
    assert str(attachment_message_bytes(1_000_000)) in message
    text = built.read_text(encoding="utf-8")
    built.write_text(text.replace("attach_edition = true\n", readme_attach_settings()))
    assert load_config(built).digest.attach_edition


def test_the_room_counts_base64_lines() -> None:
    assert mailed_bytes(57) == 78 and mailed_bytes(58) == 156
    assert attachment_message_bytes(1_000_000) > 1_000_000 * 4 // 3
