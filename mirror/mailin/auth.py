"""Whether a message really comes from its From address, as the receiving server judged
it in Authentication-Results (RFC 8601). Only servers we trust count: anyone can add the
header, so results under any other authserv-id are ignored."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import authres

from mirror.errors import ConfigError
from mirror.mailin.model import AuthResult, Inbound

REQUIRE_MODES = ("dmarc", "none")
MAX_HEADERS = 20  # Authentication-Results headers read per message
MAX_RESULTS = 50  # results kept per header

# The property that names the domain each method vouches for, in order of preference.
_DOMAIN_PROPERTIES = {
    "dmarc": (("header", "from"),),
    "dkim": (("header", "d"), ("header", "i")),
    "spf": (("smtp", "mailfrom"),),
}


@dataclass(frozen=True)
class Verdict:
    """Whether to treat the sender as authenticated, and why (a short key for logs and the
    report's `ignored` counts; never an address)."""

    passed: bool
    reason: str  # passed: "dmarc" | "dkim" | "spf" | "not_required"; else why not


def parse_all(values: Iterable[str]) -> tuple[AuthResult, ...]:
    """Every result of every Authentication-Results header value, in header order; a
    header that does not parse contributes nothing."""
    found: list[AuthResult] = []
    for value in list(values)[:MAX_HEADERS]:
        found.extend(parse_one(value))
    return tuple(found)


def parse_one(value: str) -> tuple[AuthResult, ...]:
    """The results of one Authentication-Results header value (RFC 8601)."""
    try:
        header = authres.AuthenticationResultsHeader.parse_value(value)
    except Exception:  # authres.AuthResError, and anything else hostile input may provoke
        return ()
    authserv_id = str(header.authserv_id or "").strip().lower()
    return tuple(
        AuthResult(
            authserv_id=authserv_id,
            method=str(result.method).lower(),
            result=str(result.result).lower(),
            domain=_domain_of(str(result.method).lower(), result.properties),
        )
        for result in header.results[:MAX_RESULTS]
    )


def _domain_of(method: str, properties: Iterable[authres.core.AuthenticationResultProperty]) -> str:
    values = {(str(p.type).lower(), str(p.name).lower()): str(p.value) for p in properties}
    for key in _DOMAIN_PROPERTIES.get(method, ()):
        if values.get(key):
            return _domain(values[key])
    return ""


def _domain(value: str) -> str:
    """ "user@Example.org", "@example.org" or "example.org" -> "example.org"."""
    return value.strip().strip('"').rsplit("@", 1)[-1].strip().rstrip(".").lower()


def authenticated(
    inbound: Inbound, *, trusted_authserv_ids: Iterable[str], require: str = "dmarc"
) -> Verdict:
    """Pass when a trusted server says dmarc=pass for the From domain, or dkim=pass or
    spf=pass for a domain aligned with it (relaxed: equal, or one a subdomain of the
    other). A trusted dmarc=fail for the From domain vetoes. require="none" always passes
    (the caller warns loudly)."""
    if require not in REQUIRE_MODES:
        raise ConfigError(f"must be one of {', '.join(REQUIRE_MODES)}", key="mailin.require")
    if require == "none":
        return Verdict(True, "not_required")
    if not inbound.sender_domain:
        return Verdict(False, "no_sender")
    trusted = {authserv_id.strip().lower() for authserv_id in trusted_authserv_ids}
    results = [r for r in inbound.auth_results if r.authserv_id in trusted]
    if not results:
        return Verdict(False, "no_trusted_results")
    return _judge(results, inbound.sender_domain.lower())


def _judge(results: list[AuthResult], from_domain: str) -> Verdict:
    if any(r.method == "dmarc" and r.result == "fail" and r.domain == from_domain for r in results):
        return Verdict(False, "dmarc_fail")
    if any(r.method == "dmarc" and r.result == "pass" and r.domain == from_domain for r in results):
        return Verdict(True, "dmarc")
    for method in ("dkim", "spf"):
        if any(
            r.method == method and r.result == "pass" and aligned(r.domain, from_domain)
            for r in results
        ):
            return Verdict(True, method)
    return Verdict(False, "not_aligned")


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment, approximated without the public suffix list: the same domain,
    or one a subdomain of the other."""
    if not domain or not from_domain:
        return False
    return (
        domain == from_domain
        or domain.endswith("." + from_domain)
        or from_domain.endswith("." + domain)
    )
