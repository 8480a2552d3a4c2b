"""Every error mirror raises, under one root.

    MirrorError                      anything mirror reports by name
    ├── ConfigError                  the config file or a value in it is wrong (exit 2)
    ├── UsageError                   the command line is wrong (exit 2)
    ├── StoreError                   the store cannot be opened, migrated or written
    │   └── StoreLockedError         another run holds the store's lock (exit 2)
    ├── SandboxError                 a parser worker cannot be confined as it must be (exit 2)
    ├── FetchError                   one request to the origin failed (has url, reason)
    │   ├── BadURLError              the URL is malformed, too long or of a refused scheme
    │   ├── HostNotAllowedError      host outside allowed_hosts, or it resolves to a
    │   │                            loopback/private/link-local/metadata address
    │   ├── ResponseTooLargeError    body (or its decompressed form) over the byte limit
    │   ├── FetchTimeoutError        connect, read or total time limit passed
    │   ├── TooManyRedirectsError    redirect loop or too long a redirect chain
    │   ├── ConnectionFailedError    refused, reset, DNS failure, TLS failure
    │   └── HTTPStatusError          an answer other than 2xx/304 (has status)
    ├── ContentError                 what the origin sent is unusable (the data is bad)
    │   ├── FeedError                not a feed or sitemap, or unparsable
    │   ├── ExtractError             no article could be extracted from the page
    │   └── ImageError               not an image, or over the pixel limit
    ├── SigningError                 a key cannot be made, read or used
    │   └── KeyFileError             a key file is missing, garbled, or readable by others
    ├── BuildError                   the edition cannot be built
    │   ├── EditionTooLargeError     a daily edition cannot fit its byte limit at all
    │   └── FeedTooLargeError        a feed over edition.feed_max_bytes even with no entry
    ├── PublishError                 one mirror could not be brought up to date (has mirror)
    │   ├── MirrorUnreachableError   refused, reset, timed out, 5xx after retries, HTML pages
    │   │   ├── ObjectTooLargeError  an object larger than any we write (not ours)
    │   │   └── MirrorDeadlineError  the mirror's publish passed its `deadline_s`
    │   ├── MirrorAccessError        credentials missing or refused, no such bucket
    │   ├── NotPublicError           readers get 403 from the mirror's public URL (status)
    │   ├── ConflictError            a conditional write lost: another publish got there first
    │   └── ShrinkGuardError         the publish would delete too much of the mirror
    ├── DigestError                  the digest cannot be composed or sent at all
    │   ├── SubscriberError          a bad address or an unknown subscriber
    │   ├── SmtpConnectionError      the server is down, refuses us, or times out
    │   ├── TlsRequiredError         smtp:// but the server offers no STARTTLS
    │   └── DeliveryError            one recipient refused (has permanent: 5xx vs 4xx)
    ├── MailInError                  one inbound message cannot be taken in (has reason)
    │   ├── MessageTooLargeError     over mailin.max_message_bytes: skipped unread
    │   └── MalformedMailError       not a mail we can read: no headers, too many headers or
    │                                MIME parts, nesting too deep, the parser gave up
    ├── MailboxError                 the readers' mailbox cannot be used at all (the run stops)
    │   ├── ImapConnectionError      the IMAP server is down, drops us, or times out
    │   ├── ImapAuthError            the IMAP login was refused
    │   ├── ImapTlsError             imap:// without STARTTLS offered, or TLS failed
    │   └── ImapProtocolError        the server refused a command (NO/BAD) or made no sense
    ├── ReachError                   the OONI API gave no usable answer: down, slow, 5xx,
    │                                malformed or too large (has reason); nothing is blocked
    └── VerifyError                  a copy is not the outlet's own, or is stale (exit 3)
        ├── SignatureError           garbled or truncated signature, wrong key, no match
        ├── KeyCertificateError      keys.json not signed by the root, expired, or revoking
        ├── ExpiredError             the manifest is past its expiry (a freeze)
        ├── RollbackError            the version is older than one seen before for this key
        │   └── StaleKeysError       keys.json older than another mirror's or --min-serial
        ├── ManifestError            a manifest is malformed: bad paths, duplicates, too large
        └── TargetError              the copy cannot be read: unreachable, redirected away
            ├── DeadlineError        checking one copy took longer than its deadline
            └── TooSlowError         a transfer stayed under the minimum rate

Whether to retry is a property of the error (`retryable`, `retry_after_s`), never a
match on its text; mirror.retry reads it. Retryable: FetchTimeoutError,
ConnectionFailedError (not a refused certificate), HTTPStatusError for 429 and 5xx,
MirrorUnreachableError (not ObjectTooLargeError nor MirrorDeadlineError),
SmtpConnectionError (not a refused login or TLS), DeliveryError for 4xx,
ImapConnectionError, and a
TargetError when the reader marks it so (a timeout, a reset, 429 or 5xx). Nothing else.
"""

from __future__ import annotations


class MirrorError(Exception):
    """Root of every error mirror reports by name."""

    retryable: bool = False
    retry_after_s: float | None = None


class ConfigError(MirrorError):
    """The config file or a value in it is wrong."""

    def __init__(self, message: str, *, path: str = "", key: str = "") -> None:
        where = ": ".join(part for part in (path, key) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.key = key


class UsageError(MirrorError):
    """The command line is wrong."""


class StoreError(MirrorError):
    """The store cannot be opened, migrated or written."""


class StoreLockedError(StoreError):
    """Another run holds the store's lock."""


class SandboxError(MirrorError):
    """A parser worker cannot be confined (Landlock present but refusing the rules)."""


class FetchError(MirrorError):
    """One request to the origin failed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.url, self.reason))


class BadURLError(FetchError):
    """The URL is malformed, too long or of a refused scheme; nothing was requested."""


class HostNotAllowedError(FetchError):
    """The host is not allowed, or resolves to an address that is not."""


class ResponseTooLargeError(FetchError):
    """The body, or its decompressed form, passed the byte limit."""


class FetchTimeoutError(FetchError):
    """A connect, read or total time limit passed."""

    retryable = True


class TooManyRedirectsError(FetchError):
    """A redirect loop, or a chain longer than allowed."""


class ConnectionFailedError(FetchError):
    """The connection was refused, reset, or could not be made."""

    retryable = True


class HTTPStatusError(FetchError):
    """The origin answered with a status other than 2xx or 304."""

    def __init__(self, url: str, status: int, retry_after_s: float | None = None) -> None:
        super().__init__(url, f"HTTP {status}")
        self.status = status
        self.retryable = status == 429 or status >= 500
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.url, self.status, self.retry_after_s))


class ContentError(MirrorError):
    """What the origin sent is unusable."""


class FeedError(ContentError):
    """Not a feed or sitemap, or unparsable."""


class ExtractError(ContentError):
    """No article could be extracted from the page."""


class ImageError(ContentError):
    """Not an image, or over the pixel limit."""


class SigningError(MirrorError):
    """A key cannot be made, read or used."""


class KeyFileError(SigningError):
    """A key file is missing, garbled, or readable by group or others."""


class BuildError(MirrorError):
    """The edition cannot be built."""


class EditionTooLargeError(BuildError):
    """A daily edition is over `edition.daily_max_bytes` even with no article in it."""


class FeedTooLargeError(BuildError):
    """A feed is over `edition.feed_max_bytes` even with no entry left in it."""


class MailInError(MirrorError):
    """A reader's message cannot be taken in: malformed, too large, unreadable; `reason`
    is short, fit for a report key, and never holds an address (nor does `detail`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.reason, self.detail))


class MessageTooLargeError(MailInError):
    """The message is over the byte limit: skipped unread."""


class MalformedMailError(MailInError):
    """Not a mail we can read: no header section, too many headers or MIME parts, MIME
    nesting too deep, or the parser gave up."""


class MailboxError(MirrorError):
    """The readers' mailbox cannot be used at all: unlike a MailInError (one message),
    this stops the run."""


class ImapConnectionError(MailboxError):
    """The IMAP server is down, refuses or drops the connection, or times out."""

    retryable = True


class ImapAuthError(MailboxError):
    """The IMAP server refused the login: trying again will not help (and may lock)."""


class ImapTlsError(MailboxError):
    """imap:// was given but the server offers no STARTTLS, or the TLS handshake failed
    (a certificate not trusted, for one): we never log in in clear."""


class ImapProtocolError(MailboxError):
    """The server refused a command (NO, BAD) or answered what we cannot read."""


class ReachError(MirrorError):
    """The OONI API gave no usable answer (down, slow, 5xx, malformed, too large): the
    verdict is "error", and nothing is blocked or unblocked on its account."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.reason,))


class VerifyError(MirrorError):
    """A copy of the edition is not the outlet's own, or is stale."""


class SignatureError(VerifyError):
    """A signature is garbled or truncated, made by another key, or does not match."""


class KeyCertificateError(VerifyError):
    """keys.json is not signed by the root, has expired, or revokes the signing key."""


class ExpiredError(VerifyError):
    """The manifest is past its expiry: someone may be freezing the mirror."""


class RollbackError(VerifyError):
    """The version is older than one already seen for this key."""


class StaleKeysError(RollbackError):
    """The copy's keys.json has a lower serial than another mirror serves, or than the
    reader was told (--min-serial): it may certify a key the root has since revoked."""


class ManifestError(VerifyError):
    """A manifest is malformed: bad or duplicate paths, wrong types, too large."""


class TargetError(VerifyError):
    """The copy cannot be read: unreachable, or redirected to another host."""


class DeadlineError(TargetError):
    """Checking one copy (a folder or a mirror) took longer than its deadline."""


class TooSlowError(TargetError):
    """A transfer from the copy stayed under the minimum rate (a trickling server)."""


class PublishError(MirrorError):
    """One mirror could not be brought up to date."""

    def __init__(self, mirror: str, reason: str) -> None:
        super().__init__(f"{mirror}: {reason}")
        self.mirror = mirror
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.mirror, self.reason))


class MirrorUnreachableError(PublishError):
    """Refused, reset, timed out, 5xx after retries, or HTML error pages."""

    retryable = True


class ObjectTooLargeError(MirrorUnreachableError):
    """A stored object is larger than what we ever write there (a live manifest, a
    pointer): the store answers with something that is not ours."""

    retryable = False  # the object stays as large


class MirrorDeadlineError(MirrorUnreachableError):
    """The mirror's whole publish took longer than its `deadline_s`: abandoned where it
    was (the publishing order leaves a mirror that verifies), the others go on."""

    retryable = False  # the time it had is used up


class NotPublicError(PublishError):
    """The mirror answers its readers 403: the bucket is not public."""

    retryable = False


class MirrorAccessError(PublishError):
    """Credentials missing or refused, or no such bucket. `fix`: the hint the reason ends
    with, when it has one (so `mirror doctor` can print it once, as the fix)."""

    fix: str = ""


class ConflictError(PublishError):
    """A conditional write lost: another publish changed the mirror first."""


class ShrinkGuardError(PublishError):
    """The publish would delete more of the mirror than allowed (see --allow-shrink)."""


class DigestError(MirrorError):
    """The digest cannot be composed or sent at all."""


class SubscriberError(DigestError):
    """A bad address, or an unknown subscriber."""


class SmtpConnectionError(DigestError):
    """The SMTP server is down, refuses the connection or login, or times out."""

    retryable = True


class TlsRequiredError(DigestError):
    """smtp:// was given but the server offers no STARTTLS: we never send in clear."""


class DeliveryError(DigestError):
    """One recipient was refused: permanently (5xx) or for now (4xx)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retryable = not permanent

    def __reduce__(self) -> tuple[object, ...]:
        return (_delivery_error, (self.reason, self.permanent))


def _delivery_error(reason: str, permanent: bool) -> DeliveryError:
    return DeliveryError(reason, permanent=permanent)
