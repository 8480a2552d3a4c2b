"""aiohttp's, ssl's and asyncio's exceptions, translated once.

`translate_error(exc, url)` gives the FetchError standing for one of them, with
`retryable` set by one rule: a timeout, a reset or a refused connection may pass, a
refused certificate (or a censor's forged one) never does. The origin client raises it;
the mirror reader (mirror.verify.readers) turns it into a TargetError.
"""

from __future__ import annotations

import ssl

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


def translate_error(exc: BaseException, url: str) -> FetchError | None:
    """The FetchError standing for an aiohttp/asyncio/OS exception, None if not one."""
    for source, target, label in _ERROR_TABLE:
        if isinstance(exc, source):
            error = target(url, f"{label}: {type(exc).__name__}")
            if isinstance(exc, _NOT_RETRYABLE):
                error.retryable = False
            return error
    return None
