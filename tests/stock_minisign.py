"""The stock minisign binary (Debian's `minisign`), and the download tools (curl,
wget), for tests that check our signatures with the tools readers use."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def minisign_binary() -> str:
    """The real minisign binary; missing is a failure on CI, a skip elsewhere."""
    found = shutil.which("minisign") or (
        "/usr/bin/minisign" if Path("/usr/bin/minisign").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("minisign is not installed (apt-get install minisign)")
        pytest.skip("minisign is not installed")
    return found


def stock_tool(name: str) -> str:
    """A reader's command-line tool (`curl`, `wget`) as Debian ships it; missing is a
    failure on CI (README's apt-get line installs it), a skip elsewhere."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (apt-get install {name})")
        pytest.skip(f"{name} is not installed")
    return found
