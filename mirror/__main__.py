"""`python -m mirror` is the `mirror` command."""

from __future__ import annotations

from mirror.cli import main

main()
