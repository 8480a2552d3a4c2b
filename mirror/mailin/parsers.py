"""The real parsers behind `MailIn`: `message`, `commands`, `auth`, `loops` and `bounces`
bound to one config, as the handler's `Parsers`. The CLI and the tests share this one
wiring; the handler's own tests may pass stand-ins instead.

The authentication verdict's reason is logged with the message's hash (never an
address); `require = "none"` (every sender taken as authenticated) warns loudly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.utils import parseaddr

from mirror.config import Config, MailInConfig
from mirror.mailin.auth import authenticated
from mirror.mailin.bounces import bounce_of
from mirror.mailin.commands import read_request
from mirror.mailin.handle import Parsers
from mirror.mailin.loops import refusal
from mirror.mailin.message import parse_inbound
from mirror.mailin.model import Bounce, Inbound

log = logging.getLogger("mirror.mailin")
NOT_REQUIRED_WARNING = (
    'mailin.require = "none": EVERY sender is taken as authenticated, forged ones too: '
    "mail-in may mail anyone who is named in a From line. For tests only."
)


def real_parsers(config: Config) -> Parsers:
    """The parsers of `mirror.mailin` for this config's addresses and trusted servers."""
    digest = config.digest
    own = [digest.unsubscribe_mailto, digest.return_path]
    warned: list[bool] = []

    def judged(inbound: Inbound, mailin: MailInConfig) -> bool:
        verdict = authenticated(
            inbound, trusted_authserv_ids=mailin.trusted_authserv_ids, require=mailin.require
        )
        if verdict.reason == "not_required" and not warned:
            warned.append(True)
            log.warning("%s", NOT_REQUIRED_WARNING)
        log.info("message %s: authentication %s", inbound.sha256[:12], verdict.reason)
        return verdict.passed

    def refused(inbound: Inbound, address: str) -> str | None:
        addresses = (parseaddr(a)[1] or a for a in (address, *own) if a)
        return refusal(inbound, own_addresses=list(addresses))

    def bounced(inbound: Inbound, subscriber_of: Callable[[str], int | None]) -> Bounce | None:
        return bounce_of(inbound, subscriber_of=subscriber_of)

    return Parsers(
        parse=lambda data, max_bytes: parse_inbound(data, max_bytes=max_bytes),
        request=read_request,
        authenticated=judged,
        refusal=refused,
        bounce=bounced,
    )
