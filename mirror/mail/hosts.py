"""Which hosts a mail connection may reach in clear: smtp+insecure:// and
imap+insecure:// are for a server on this machine only."""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = ("localhost", "localhost.")


def is_loopback(host: str) -> bool:
    """A loopback IP literal or the name localhost; other names are not resolved."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
