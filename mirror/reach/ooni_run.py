"""OONI Run v2 descriptors: the listed mirrors' URLs for volunteers to test. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mirror.reach.ooni import TEST_NAME


def ooni_run_descriptor(publication: str, urls: Sequence[str]) -> dict[str, Any]:
    """An OONI Run v2 descriptor running web_connectivity on `urls` (public ones only:
    the caller passes listed mirrors, since a descriptor and its results are public)."""
    return {
        "name": f"{publication} mirrors",
        "short_description": f"Can {publication}'s mirrors be reached from here?",
        "description": (
            f"Tests whether the mirrors of {publication} are reachable from your network, "
            "so that blocked ones can be replaced."
        ),
        "author": publication,
        "nettests": [
            {
                "test_name": TEST_NAME,
                "inputs": list(urls),
                "options": {},
                "backend_options": {},
                "is_background_run_enabled_default": False,
                "is_manual_run_enabled_default": True,
            }
        ],
    }
