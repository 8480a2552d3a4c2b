"""URLs of the origin: one canonical form, and the allowed-host rule; and `with_slash`,
the one trailing-slash rule for the base URL of a mirror (or any folder).

`normalise_url` turns any link found in a feed or a page into the one form mirror
requests and stores: absolute http(s), ASCII only, no fragment, no userinfo, no
default port, no `.`/`..` segment (so a path never climbs above the root). Anything
else is a `BadURLError`, raised before any request is made. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import idna

from mirror.errors import BadURLError

_SCHEMES = {"http": 80, "https": 443}
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/?%:@!$&'()*+,;=-._~"
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
# Characters browsers strip from a link before parsing it (WHATWG URL).
_STRIPPED = "".join(chr(c) for c in range(0x21)) + "\x7f"


def normalise_url(url: str, base: str | None = None, *, max_length: int) -> str:
    """The canonical absolute form of `url` (resolved against `base`), or BadURLError."""
    if len(url) > max_length:
        raise BadURLError(url[:100], f"URL longer than {max_length} characters")
    cleaned = _clean(url)
    try:
        parts = urlsplit(urljoin(_clean(base), cleaned) if base else cleaned)
        port = parts.port
    except ValueError as exc:
        raise BadURLError(url, f"malformed URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise BadURLError(url, f"scheme {scheme or '(none)'!r} is not http or https")
    if "@" in parts.netloc:
        raise BadURLError(url, "URL carries a user name or password")
    netloc = _netloc(url, parts.hostname or "", port, scheme)
    path = remove_dot_segments(_normalise_escapes(_quote(parts.path, _PATH_SAFE)))
    query = _uppercase_escapes(_quote(parts.query, _QUERY_SAFE))
    result = urlunsplit((scheme, netloc, path, query, ""))
    if len(result) > max_length:
        raise BadURLError(url[:100], f"URL longer than {max_length} characters")
    return result


def with_slash(url: str) -> str:
    """`url` as a folder's URL, ending in one "/" (a mirror's base URL)."""
    return url if url.endswith("/") else url + "/"


def host_of(url: str) -> str:
    """The host of a normalised URL (lower case, IPv6 without brackets); '' if none."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_allowed_host(host: str, allowed_hosts: tuple[str, ...] | list[str]) -> bool:
    """Whether `host` is exactly one of `allowed_hosts` (case-insensitive, no subdomains)."""
    wanted = _comparable(host)
    return bool(wanted) and any(_comparable(entry) == wanted for entry in allowed_hosts)


@dataclass(frozen=True)
class AllowedHost:
    """One host of `source.allowed_hosts` and the ports it may be reached on."""

    host: str  # canonical_host form
    ports: frozenset[int]  # listed with the host, or used by a configured URL on it
    scheme_default: bool  # listed without a port: a URL's default port (80, 443) too


@dataclass(frozen=True)
class AllowedHosts:
    """`source.allowed_hosts` parsed: the only hosts, and ports, mirror ever requests.

    An entry is `host`, `host:port`, `[v6]` or `[v6]:port` (a bare IPv6 address takes
    no port). A host listed without a port may be reached on its scheme's default port
    and on the ports the configured URLs (feeds, sitemaps, home_url) use on it; one
    listed with ports, only on those.
    """

    hosts: tuple[AllowedHost, ...]

    @classmethod
    def parse(cls, entries: Iterable[str], configured_urls: Iterable[str] = ()) -> AllowedHosts:
        """The entries as rules (ValueError naming a bad entry)."""
        ports: dict[str, set[int]] = {}
        portless: set[str] = set()
        for entry in entries:
            host, port = parse_allowed_host(entry)
            ports.setdefault(host, set()).update([port] if port is not None else [])
            if port is None:
                portless.add(host)
        for url in configured_urls:
            host, port = _host_and_port(url)
            if host in portless and port is not None:
                ports[host].add(port)
        hosts = (AllowedHost(host, frozenset(p), host in portless) for host, p in ports.items())
        return cls(tuple(hosts))

    @property
    def names(self) -> tuple[str, ...]:
        """The hosts alone (what the resolver compares names and addresses with)."""
        return tuple(allowed.host for allowed in self.hosts)

    def refusal(self, url: str, key: str = "allowed_hosts") -> str | None:
        """Why `url` may not be requested, or None when it may (`key`: the list's name)."""
        host, port = _host_and_port(url)
        found = next((allowed for allowed in self.hosts if allowed.host == host), None)
        if found is None:
            return f"host {host or '(none)'} is not in {key}"
        default = port == _SCHEMES.get(urlsplit(url).scheme.lower())
        if port in found.ports or (default and found.scheme_default):
            return None
        listed = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"port {port} of host {host} is not in {key} (list {listed} to allow it)"


def parse_allowed_host(entry: str) -> tuple[str, int | None]:
    """An allowed_hosts entry as (canonical host, port or None); ValueError if malformed."""
    text = entry.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r} is not [IPv6] or [IPv6]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None
    if port_text is not None and not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"{entry!r}: port {port_text!r} is not a number")
    port = int(port_text) if port_text is not None else None
    if port is not None and not 1 <= port <= 65_535:
        raise ValueError(f"{entry!r}: port {port} is not in 1-65535")
    try:
        return canonical_host(host), port
    except (ValueError, OSError) as exc:
        raise ValueError(f"{entry!r}: {exc}") from exc


def _host_and_port(url: str) -> tuple[str, int | None]:
    """Canonical host and port (the scheme's default if none) of a URL; '' and None if bad."""
    try:
        parts = urlsplit(url)
        port = parts.port or _SCHEMES.get(parts.scheme.lower())
    except ValueError:
        return "", None
    return _comparable(parts.hostname or ""), port


def canonical_host(host: str) -> str:
    """The host as mirror compares and requests it: IDNA ASCII, lower case, dotted IPv4.

    Raises ValueError when it is no valid host name or IP address.
    """
    host = unquote(host).strip().rstrip(".").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError("empty host")
    if "%" in host:
        raise ValueError("percent sign or IPv6 zone in host")
    if ":" in host:
        return ipaddress.IPv6Address(host).compressed
    last_label = host.rsplit(".", 1)[-1]
    if last_label.isdigit() or last_label.startswith("0x"):
        return socket.inet_ntoa(socket.inet_aton(host))  # 0x7f.1, 2130706433 → 127.0.0.1
    return _ascii_host(host)


def _ascii_host(host: str) -> str:
    """A DNS name in IDNA (2008, UTS #46) ASCII form."""
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"invalid international host name: {exc}") from exc
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise ValueError(f"invalid host name {host!r}")
    return host


def _comparable(host: str) -> str:
    """`canonical_host`, or '' when the host is invalid."""
    try:
        return canonical_host(host)
    except (ValueError, OSError):
        return ""


def _clean(url: str) -> str:
    """The link as a browser reads it: outer controls/spaces gone, `\\` as `/` before `?`."""
    url = url.strip(_STRIPPED).replace("\t", "").replace("\n", "").replace("\r", "")
    head, sep, tail = url.partition("?")
    return head.replace("\\", "/") + sep + tail


def _netloc(url: str, hostname: str, port: int | None, scheme: str) -> str:
    """Canonical host[:port], the port dropped when it is the scheme's default."""
    try:
        host = canonical_host(hostname)
    except (ValueError, OSError) as exc:
        raise BadURLError(url, f"bad host: {exc}") from exc
    if ":" in host:
        host = f"[{host}]"
    return host if port in (None, _SCHEMES[scheme]) else f"{host}:{port}"


def _quote(text: str, safe: str) -> str:
    """Percent-encode what is not allowed in a URL (Unicode as UTF-8, a stray `%` as %25)."""
    return quote(_STRAY_PERCENT.sub("%25", text), safe=safe)


def _uppercase_escapes(text: str) -> str:
    """`%2f` → `%2F`: the two spellings mean the same."""
    return _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), text)


def _normalise_escapes(path: str) -> str:
    """Decode escaped unreserved characters (`%2e` → `.`), upper-case the others."""

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(0)[1:], 16))
        return char if char in UNRESERVED else match.group(0).upper()

    return _PERCENT_ESCAPE.sub(one, path)


def remove_dot_segments(path: str) -> str:
    """The path without `.`/`..` segments (RFC 3986 5.2.4); `..` at the root stays at the
    root; always absolute."""
    segments = path.split("/")[1:] if path.startswith("/") else path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments and segments[-1] in (".", ".."):
        kept.append("")
    return "/" + "/".join(kept)


def without_trackers(url: str) -> str:
    """`url` without the query parameters that only track (campaign tags, click ids).

    The rest of the query keeps its order and its exact bytes; a URL with nothing to
    drop comes back unchanged. Used on the links we publish and mail: a reader who
    follows one tells the other site nothing about where the click came from."""
    base, hash_mark, fragment = url.partition("#")
    head, mark, query = base.partition("?")
    if not mark or not query:
        return url
    pairs = query.split("&")
    kept = [pair for pair in pairs if not _is_tracker(pair.partition("=")[0])]
    if len(kept) == len(pairs):
        return url
    rest = hash_mark + fragment
    return f"{head}?{'&'.join(kept)}{rest}" if kept else head + rest


def _is_tracker(name: str) -> bool:
    # courlan keeps the list (utm_*, fbclid, gclid, yclid, mc_eid, ...); imported here, as
    # it costs ~50 ms and readers of this module (verify, publish) need no tracker rule
    from courlan.clean import TRACKERS_RE

    return bool(name) and TRACKERS_RE.search(unquote(name).lower()) is not None
