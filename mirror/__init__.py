"""mirror: keep a blocked news outlet readable through signed static mirrors and digests."""

from __future__ import annotations

__version__ = "0.1.0"
