"""README's "Exit status" table, command by command, and messages ops can act on: each
case runs the real command line (`mirror.cli.run`, or `python -m mirror` where the
process itself matters: a closed pipe)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mirror.cli import run

from cli_configs import mirror_table, write_config
from moto_server import REGION, new_bucket_name, start_moto, stop_moto

BASE = "http://127.0.0.1:9/"


def config(tmp_path: Path, tables: str = "", digest: str = "") -> str:
    path = write_config(tmp_path, BASE, tables)
    if digest:
        path.write_text(path.read_text().replace("[digest]\n", f"[digest]\n{digest}\n"))
    return str(path)


def status_and_err(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = run(list(args))
    return status, capsys.readouterr().err


# --- 2: bad usage or config -------------------------------------------------------------


def test_a_bad_subscriber_address_is_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path)
    status, err = status_and_err(capsys, "-c", path, "subscribers", "add", "bad@@x")
    assert status == 2 and "not a valid email address" in err
    status, err = status_and_err(capsys, "-c", path, "subscribers", "remove", "nobody@x.org")
    assert status == 2 and "no such subscriber" in err
    (tmp_path / "list.csv").write_bytes(b"\xff\xfe not utf-8\n")
    status, err = status_and_err(
        capsys, "-c", path, "subscribers", "import", str(tmp_path / "list.csv")
    )
    assert status == 2 and "not UTF-8" in err


def test_a_bad_row_in_an_import_is_still_a_partial_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path)
    (tmp_path / "list.csv").write_text("good@example.org\nbad@@x\n")
    status, err = status_and_err(
        capsys, "-c", path, "subscribers", "import", str(tmp_path / "list.csv")
    )
    assert status == 1 and "row 2 skipped" in err


def test_publish_with_no_edition_built_is_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = mirror_table("site", type="directory", path="s", public_url="https://s.example/")
    status, err = status_and_err(capsys, "-c", config(tmp_path, tables), "publish")
    assert status == 2 and "run `mirror build`" in err


def test_a_failed_backup_names_its_destination_not_a_temp_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path)
    assert run(["-c", path, "subscribers", "list"]) == 0  # the store exists
    dest = tmp_path / "no-such-folder" / "copy.db"
    status, err = status_and_err(capsys, "-c", path, "backup", str(dest))
    assert status == 2
    assert f"backup to {dest} failed: no such file or directory" in err
    assert ".tmp" not in err and "Errno" not in err


@pytest.mark.parametrize(
    ("key", "line"),
    [
        ("digest.smtp_url", 'smtp_url = "smtp+insecure://mail.example.org:25"'),
        ("digest.smtp_url", 'smtp_url = "smtp+insecure://192.0.2.1"'),
        ("digest.smtp_url", 'smtp_url = "http://mail.example.org"'),
    ],
)
def test_clear_text_smtp_to_another_host_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, line: str
) -> None:
    """Refused when the config is read, by every command: not at the digest, as a
    "partly failed" 1, after a whole sync."""
    path = config(tmp_path, digest=line)
    for command in (["digest", "send", "--dry-run"], ["fetch"]):
        status, err = status_and_err(capsys, "-c", path, *command)
        assert status == 2, command
        assert key in err and "Traceback" not in err
    if "insecure" in line:
        assert "loopback" in err and "smtps://" in err


def test_clear_text_smtp_to_this_host_is_allowed(tmp_path: Path) -> None:
    from mirror.config import load_config

    for url in ("smtp+insecure://127.0.0.1:2525", "smtp+insecure://localhost", "smtps://m.org"):
        folder = tmp_path / url.replace("/", "_").replace(":", "_")
        folder.mkdir()
        path = config(folder, digest=f'smtp_url = "{url}"')
        assert load_config(Path(path)).digest.smtp_url == url


def test_clear_text_imap_to_another_host_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = Path(config(tmp_path))
    path.write_text(
        path.read_text() + '\n[mailin]\naddress = "news@example.org"\n'
        'imap_url = "imap+insecure://imap.example.org"\nrequire = "none"\n'
    )
    status, err = status_and_err(capsys, "-c", str(path), "fetch")
    assert status == 2 and "mailin.imap_url" in err and "loopback" in err


@pytest.mark.parametrize(
    ("tables", "words"),
    [
        (
            '\n[[mirrors]]\nnmae = "a"\ntype = "directory"\npath = "p"\n'
            'public_url = "https://m.example.org/"\n',
            "mirrors[0].nmae: unknown key (did you mean 'mirrors[0].name'?)",
        ),
        (
            mirror_table("a", type="directory", path="p", public_url="https://m.example.org/")
            + mirror_table("b", type="directory", path="q", public_url="https://n.example.org/")
            + "pubilc = true\n",
            "mirrors[1].pubilc: unknown key in [[mirrors]] 'b'",
        ),
        (
            '\n[[pools]]\nname = "p"\ntype = "directory"\nbucket = "n-{random8}"\n'
            'public_url = "https://p.example.org/{bucket}/"\nspraes = 1\n',
            "pools[0].spraes: unknown key in [[pools]] 'p' (did you mean 'pools[0].spares'?)",
        ),
    ],
)
def test_a_misspelt_key_in_an_array_of_tables_gets_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tables: str, words: str
) -> None:
    status, err = status_and_err(capsys, "-c", config(tmp_path, tables), "fetch")
    assert status == 2 and words in err and "]] #" not in err  # one spelling: mirrors[i]


def test_the_help_and_readme_list_every_exit_status() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("### Exit status", 1)[1].split("###", 1)[0]
    for status in ("0", "1", "2", "3", "75", "130", "143"):
        assert f"\n| {status} |" in table
    helped = subprocess.run(
        [sys.executable, "-m", "mirror", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "130" in helped.stdout and "143" in helped.stdout


# --- a closed pipe ----------------------------------------------------------------------


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """`mirror ARGS | head -c 0`: stdout is a pipe whose reader has gone before anything
    is written, so the first write fails (EPIPE) whatever the pipe's buffer."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "mirror", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (["subscribers", "list", "--json"], 0),
        (["subscribers", "list"], 0),
        (["articles", "list"], 0),
        (["status", "--json"], 1),  # its mirror is unreachable: 1, pipe or not
    ],
)
def test_a_closed_pipe_ends_quietly_with_the_commands_own_status(
    tmp_path: Path, command: list[str], status: int
) -> None:
    tables = mirror_table("gone", type="directory", path="g", public_url=BASE + "g/")
    path = config(tmp_path, tables)
    assert run(["-c", path, "subscribers", "add", "reader@example.org"]) == 0
    result = run_into_closed_pipe("-c", path, *command)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert "Exception ignored" not in result.stderr
    assert result.returncode == status, result.stderr


# --- refusals from a store (moto with its auth on) --------------------------------------


@pytest.fixture(scope="module")
def strict_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A moto server that checks signatures and IAM policies (after its first three
    requests, which make a user without any policy, its key and a bucket)."""
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc, endpoint = start_moto(tmp_path_factory.mktemp("moto") / "moto.log", env)
    try:
        admin = {"endpoint_url": endpoint, "region_name": REGION,
                 "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # fmt: skip
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="no-rights")
        key = iam.create_access_key(UserName="no-rights")["AccessKey"]
        bucket = new_bucket_name()
        boto3.client("s3", **admin).create_bucket(Bucket=bucket)
        yield {"endpoint": endpoint, "bucket": bucket, "key": key}
    finally:
        stop_moto(proc)


def s3_table(strict_moto: dict[str, Any], name: str = "vault") -> str:
    endpoint, bucket = strict_moto["endpoint"], strict_moto["bucket"]
    return mirror_table(
        name, type="s3", bucket=bucket, endpoint_url=endpoint, region=REGION,
        public_url=f"{endpoint}/{bucket}/",
    )  # fmt: skip


def test_setup_with_refused_credentials_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], strict_moto: dict[str, Any], aws_env: None
) -> None:
    """The fake key ("testing") is unknown to the strict server: its HEAD answers a bare
    403 (no body, so no code), taken as "access denied" with every likely cause."""
    path = config(tmp_path, s3_table(strict_moto))
    status, err = status_and_err(capsys, "-c", path, "mirrors", "setup", "vault")
    assert status == 2
    assert "HTTP 403" in err and "403 (403)" not in err
    assert "access denied" in err and "mirror mirrors setup vault" in err
    assert "AWS_ACCESS_KEY_ID" in err and "mirrors[vault].profile" in err
    assert "Traceback" not in err and "testing" not in err  # no secret, nor the key id


def test_setup_names_an_unknown_mirror_and_refuses_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = mirror_table(
        "local", type="directory", path=str(tmp_path / "www"), public_url="http://127.0.0.1/"
    )
    path = config(tmp_path, folder)
    status, err = status_and_err(capsys, "-c", path, "mirrors", "setup", "nowhere")
    assert status == 2
    assert "no mirror named 'nowhere'" in err and "known: local" in err
    status, err = status_and_err(capsys, "-c", path, "mirrors", "setup", "local")
    assert status == 2 and "a directory mirror needs no setup" in err


def test_publish_refused_by_the_store_names_the_causes_and_the_fix(
    built: Path,
    capsys: pytest.CaptureFixture[str],
    strict_moto: dict[str, Any],
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Known credentials without a right to the bucket: 403 AccessDenied, one mirror
    failed (1), and the message says what to check and which command fixes the policy."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", strict_moto["key"]["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", strict_moto["key"]["SecretAccessKey"])
    built.write_text(built.read_text() + s3_table(strict_moto))
    status, err = status_and_err(capsys, "-c", str(built), "publish", "--mirror", "vault")
    assert status == 1
    assert "AccessDenied" in err and "403" in err
    causes = ("AWS_ACCESS_KEY_ID", "mirrors[vault].profile", "IAM policy", "bucket policy")
    for words in (*causes, "mirror mirrors setup vault", "mirrors[vault].region"):
        assert words in err, words
    assert strict_moto["key"]["SecretAccessKey"] not in err


def test_doctor_says_the_stores_refusal_hint_once(
    built: Path,
    capsys: pytest.CaptureFixture[str],
    strict_moto: dict[str, Any],
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """doctor's FAIL line for a 403: what the store said in the detail, the hint (what to
    check) once, as the fix."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", strict_moto["key"]["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", strict_moto["key"]["SecretAccessKey"])
    built.write_text(built.read_text() + s3_table(strict_moto))
    status, err = status_and_err(capsys, "-c", str(built), "doctor", "--deadline-s", "20")
    line = next(line for line in err.splitlines() if "FAIL mirror vault storage" in line)
    assert status == 1 and "HTTP 403" in line and "access denied: check" in line
    assert line.count("IAM policy") == 1 and line.count("mirrors[vault].profile") == 1, line
