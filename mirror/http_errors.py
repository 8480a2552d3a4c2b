"""aiohttp's, ssl's and asyncio's exceptions, translated once.

`translate_error(exc, url)` gives the FetchError standing for one of them, with
`retryable` set by one rule: a timeout, a reset or a refused connection may pass, a
refused certificate (or a censor's forged one) never does. The origin client raises it;
the mirror reader (mirror.verify.readers) turns it into a TargetError.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

import aiohttp

from mirror.errors import (
    BadURLError,
    ConnectionFailedError,
    FetchError,
    FetchTimeoutError,
    TooManyRedirectsError,
)

# First match wins: specific classes before their bases. Timeouts first, since
# aiohttp's timeout errors are also connection errors and OSErrors.
_ERROR_TABLE: tuple[tuple[type[BaseException], type[FetchError], str], ...] = (
    (TimeoutError, FetchTimeoutError, "time limit passed"),
    (aiohttp.InvalidURL, BadURLError, "URL refused by the HTTP client"),
    (aiohttp.NonHttpUrlClientError, BadURLError, "not an HTTP URL"),
    (aiohttp.RedirectClientError, BadURLError, "bad redirect"),
    (aiohttp.TooManyRedirects, TooManyRedirectsError, "too many redirects"),
    (aiohttp.ClientHttpProxyError, ConnectionFailedError, "the proxy refused"),
    (aiohttp.ClientConnectorCertificateError, ConnectionFailedError, "TLS certificate"),
    (aiohttp.ClientConnectorDNSError, ConnectionFailedError, "DNS lookup failed"),
    (aiohttp.ClientSSLError, ConnectionFailedError, "TLS failed"),
    (aiohttp.ServerFingerprintMismatch, ConnectionFailedError, "TLS fingerprint mismatch"),
    (aiohttp.ClientConnectorError, ConnectionFailedError, "unreachable"),
    (aiohttp.ClientConnectionError, ConnectionFailedError, "connection failed"),
    (aiohttp.ClientPayloadError, ConnectionFailedError, "body truncated or undecodable"),
    (aiohttp.ClientResponseError, ConnectionFailedError, "bad response"),
    (aiohttp.ClientError, ConnectionFailedError, "HTTP client error"),
    (ssl.SSLError, ConnectionFailedError, "TLS failed"),
    (OSError, ConnectionFailedError, "connection failed"),
)
# Retrying cannot fix a certificate the client refuses (or a censor's forged one).
_NOT_RETRYABLE = (ssl.SSLCertVerificationError, aiohttp.ServerFingerprintMismatch)


@dataclass(frozen=True)
class TimeLimits:
    """The client's time limits, so that a timeout says which one passed, and after how
    long; the `*_key`s are the settings' keys (or flags) a reader of the message can change."""

    total_s: float
    connect_s: float
    read_s: float
    total_key: str = "timeout_s"
    connect_key: str = "connect_timeout_s"
    read_key: str = "read_timeout_s"

    @classmethod
    def single(cls, seconds: float, key: str) -> TimeLimits:
        """One limit for connecting, each read and the whole request, named `key`."""
        return cls(seconds, seconds, seconds, key, key, key)


def translate_error(
    exc: BaseException, url: str, limits: TimeLimits | None = None
) -> FetchError | None:
    """The FetchError standing for an aiohttp/asyncio/OS exception, None if not one. Its
    reason is worded for ops: "cannot connect to 127.0.0.1:9: connection refused", "no
    answer within 30 s (read_timeout_s)"; never aiohttp's `ssl:default` repr."""
    for source, target, label in _ERROR_TABLE:
        if isinstance(exc, source):
            error = target(url, _worded(exc, limits) or f"{label}: {type(exc).__name__}")
            if isinstance(exc, _NOT_RETRYABLE):
                error.retryable = False
            return error
    return None


def _worded(exc: BaseException, limits: TimeLimits | None) -> str:
    """A plain reason for the common failures (a timeout, a refused or reset connection);
    "" for the others, which keep their label and class name."""
    if isinstance(exc, TimeoutError):
        return _timeout_reason(exc, limits) if limits is not None else ""
    if isinstance(exc, aiohttp.ClientConnectorError) and type(exc) in _PLAIN_CONNECT_ERRORS:
        try:
            host, port, cause = exc.host, exc.port, exc.os_error
        except AttributeError:  # built without its connection key: the type is all there is
            return ""
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return f"DNS lookup failed: cannot resolve {host}"
        return cannot_connect(host, port, cause)
    if isinstance(exc, OSError) and not isinstance(exc, aiohttp.ClientError) and exc.errno:
        return f"connection failed: {os_reason(exc)}"
    return ""


# Only these are worded as "cannot connect": the certificate, DNS and TLS subclasses keep
# their own labels.
_PLAIN_CONNECT_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ClientConnectorDNSError)


def _timeout_reason(exc: BaseException, limits: TimeLimits) -> str:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"could not connect within {limits.connect_s:g} s ({limits.connect_key})"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return no_answer(limits.read_s, limits.read_key)
    return f"not done within {limits.total_s:g} s ({limits.total_key})"


# The two common failures, worded once for every client (HTTP, SMTP, IMAP, OONI).


def cannot_connect(host: str, port: int | None, cause: OSError) -> str:
    """ "cannot connect to 127.0.0.1:9: connection refused"."""
    return f"cannot connect to {host}:{port}: {os_reason(cause)}"


def no_answer(seconds: float, key: str) -> str:
    """ "no answer within 30 s (digest.timeout_s)": `key` names the limit to change."""
    return f"no answer within {seconds:g} s ({key})"


def os_reason(exc: OSError) -> str:
    """ "connection refused" from an OSError's errno (its strerror may be asyncio's
    "Connect call failed ('127.0.0.1', 9)")."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__
