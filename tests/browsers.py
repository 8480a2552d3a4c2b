"""Headless Chromium for page tests: Debian's `chromium` driven by the `playwright`
package (never its own browser download), with the network cut twice (every request
routed, and a proxy that goes nowhere). A missing browser fails on CI (where .ci/run
installs it) and is a skip elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--proxy-server=127.0.0.1:9",  # a second wall: anything that slips out goes nowhere
]


def missing(tool: str) -> None:
    """Fail on CI (where .ci/run installs `tool`), skip elsewhere."""
    message = f"{tool} is not installed (apt-get install -y {tool})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium (a playwright Browser), or fail/skip when it is missing."""
    if not Path(CHROMIUM).exists():
        missing("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
