"""moto's S3 server as a separate process on 127.0.0.1, for tests that need a real S3 API.

`moto_endpoint` (session-scoped: one server per xdist worker) yields the endpoint URL;
`aws_env` sets fake credentials and a region in the environment and hides the real
ones (no ~/.aws files, no instance metadata lookups). Never `mock_aws`: boto3 talks HTTP
to the server exactly as it would to a real store.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from mirror.config import MirrorConfig

from servers import free_port

START_TIMEOUT_S = 30.0
START_ATTEMPTS = 3  # another process may grab the free port before moto binds it
REGION = "us-east-1"


def moto_command() -> str:
    """The moto_server executable of this venv (else the one on PATH)."""
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if not found:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    return found


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def start_moto(
    log_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A running moto server and its endpoint URL; RuntimeError if none starts. `env`:
    the server's environment (e.g. INITIAL_NO_AUTH_ACTION_COUNT, to turn its auth on)."""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [moto_command(), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if _answers(url + "/moto-api/"):
                return proc, url
            time.sleep(0.1)
        stop_moto(proc)
    raise RuntimeError(f"moto_server did not start; see {log_path}")


def stop_moto(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def new_bucket_name() -> str:
    """A bucket name no other test uses."""
    return f"test-{uuid.uuid4().hex[:20]}"


def create_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a fresh bucket on the moto server (fake credentials); returns its name."""
    import boto3

    bucket = name or new_bucket_name()
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    client.close()
    return bucket


def s3_mirror(endpoint: str, bucket: str, **overrides: object) -> MirrorConfig:
    """The config of an s3 mirror on the moto server at `endpoint`."""
    values: dict[str, Any] = {
        "name": "moto-test",
        "type": "s3",
        "public_url": f"{endpoint}/{bucket}/",
        "bucket": bucket,
        "endpoint_url": endpoint,
        "region": REGION,
        **overrides,
    }
    return MirrorConfig(**values)
