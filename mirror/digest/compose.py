"""One subscriber's digest message, composed from plain data: no store, no socket, no clock.

`compose` takes the `DigestContext` (the same for every recipient of one digest), one
`Recipient` and the articles new to them, and returns a text/plain UTF-8 message ready
for SMTP. The same inputs always give the same bytes, so a resent message is the one
sent before (same Message-ID: mail clients fold the two).

The message, top to bottom:

    a heading line (the outlet's name and the date; neutral mode: the neutral subject)
    the list of articles, then each article: title, byline, date (in the article's own
    language), the full text (or the lead), its mirror links and its original URL as text
    a footer: the mirrors, the signing public key, the live manifest version and its
    sha256 with how to check them (the verify page, minisign); with a root key, the root
    key, keys.json's serial (for `mirror verify --min-serial`) and the two minisign
    commands (keys.json with the root key, then a page with the signing key); how to
    unsubscribe

Full text by default; past `max_message_bytes` the rest of the articles go as summaries
(lead and links). Links go straight to the mirrors: no redirect, no query string, no
pixel. Each subscriber sees `links_per_article` mirrors chosen by `choose_mirrors`: at
most a couple of unlisted mirrors per subscriber, ever, so one subscription reveals
little of the unlisted set, while the choice rotates from digest to digest.

Wording lives in `MESSAGES` (English msgids; translations in the catalogue,
`mirror.build.catalogue`) and the jinja2 text templates in
`templates/digest/`; dates, bylines and plural forms come from `mirror.build.locale`
(as on the pages), the text layout from `digest.text`, tokens and Message-IDs from
`digest.tokens`, the MIME encoding from `mirror.mail.wire`. No transport is imported.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import quote

import jinja2

from mirror.build import catalogue, render
from mirror.build.catalogue import N_, NC_, NP_, InContext, Plural
from mirror.build.locale import (
    aware,
    base_language,
    byline,
    date_words,
)
from mirror.build.render import worded_notes
from mirror.build.standfirst import repeats_opening
from mirror.build.templating import TemplateLoader
from mirror.digest.text import (
    CONTROLS,
    SPACES,
    WIDTH,
    heading,
    html_to_text,
    one_line,
    tidy,
    wrap,
)
from mirror.digest.tokens import (
    check_secret,
    digest_message_id,
    mac,
    unsubscribe_link,
    unsubscribe_token,
)
from mirror.errors import DigestError, SubscriberError
from mirror.mail.wire import (
    CTE_HEADER,
    SMTP_POLICY,
    SharedBody,
    ascii_address,
    ascii_domain,
    data_payload,
    dot_stuffed,
    encode_body,
    encoded_body,
    end_of_data,
    header_bytes,
    policy_for,
    sender_domain,
    shared_body,
    wire_bytes,
)

TEMPLATE_FOLDER = "digest"  # in mirror.templates, beside the edition's
UNLISTED_PER_SUBSCRIBER = 2  # unlisted mirrors one subscriber ever sees (more only if
#                              too few mirrors are listed to fill links_per_article)
SUMMARY_MAX_CHARS = 400  # a summary made from the body when an article has no lead
_BAD_IN_URI = frozenset('<>,"')  # would end the <...> of a List-Unsubscribe URI early


@dataclass(frozen=True)
class DigestArticle:
    """One article as the digest shows it."""

    path: str  # edition path "articles/2026/11/x.html": mirror link = mirror url + path
    title: str
    authors: tuple[str, ...]
    published: datetime | None
    language: str
    lead: str  # plain text
    body_html: str  # sanitised HTML
    canonical_url: str  # the original (blocked) URL, shown as text; "" for none


@dataclass(frozen=True)
class DigestMirror:
    """A mirror: its name, the public URL of the edition's folder, whether it is listed."""

    name: str
    url: str  # ends with "/"
    listed: bool


@dataclass(frozen=True)
class Recipient:
    """One subscriber."""

    id: int
    email: str
    lang: str  # "en" | "ru" | ... | "any" (the publication's language)
    welcome: bool = False  # added by ops: this digest is their first message, a welcome


@dataclass(frozen=True)
class DigestContext:
    """What every recipient of one digest shares."""

    digest_id: int
    date: datetime  # UTC, the digest's creation time (Date header; resends are identical)
    publication: str
    sender: str  # From, "Name <addr>"
    language: str  # the publication's
    mirrors: tuple[DigestMirror, ...]
    links_per_article: int
    public_key_line: str  # minisign's base64 line "RW..."
    manifest_version: int
    manifest_sha256: str
    unsubscribe_url: str  # https://...; the token is added as ?token=
    unsubscribe_mailto: str  # an address, or "" for none
    list_id: str  # "digest.example.org"
    full_text: bool
    max_message_bytes: int
    neutral: bool
    neutral_sender: str
    neutral_subject: str
    secret: bytes = field(repr=False)  # HMAC key: tokens, Message-IDs, mirror choice
    timezone: str = "UTC"  # IANA name: the dates shown
    # origin URL -> edition path of every article the edition holds: a body's link to
    # one of the outlet's own articles points to that article on a mirror, not to the
    # blocked site
    internal_links: Mapping[str, str] = field(default_factory=dict)
    root_key_line: str = ""  # the offline root's "RW..." when it certifies the signing key
    keys_serial: int = 0  # the edition's keys.json serial (0: none known)
    unsubscribe: bool = True  # False: a reply to one who is no subscriber (mail-in's
    #                           `latest`): no List-Unsubscribe, no unsubscribe lines
    # mirrors blocked since the previous digest (`previous_digest_id`): a recipient whose
    # links then included one is told it stopped working and which links replace it
    blocked: tuple[DigestMirror, ...] = ()
    previous_digest_id: int = 0
    # language -> edition path of the newest daily single-file edition in it
    # ("editions/YYYY-MM-DD-<lang>.html"): linked on the recipient's mirrors
    editions: Mapping[str, str] = field(default_factory=dict)
    attach_edition: bool = False  # attach that file when the message stays within the cap
    # languages with their own index-<lang>.html, verify-<lang>.html and mirrors-<lang>.html
    # on the edition (`render.Site.page_languages`): a reader of one of them is sent there
    page_languages: tuple[str, ...] = ()
    # edition path -> the file's bytes, for the files that may be attached, and
    # path + ".minisig" -> its signature (the caller leaves out any file over
    # max_message_bytes: those are only linked; a file goes only with its signature)
    edition_files: Mapping[str, bytes] = field(default_factory=dict, repr=False)


# --- ids, mirror choice --------------------------------------------------------


def message_id(context: DigestContext, recipient: Recipient) -> str:
    """The Message-ID of this digest for this recipient: the same on every resend."""
    domain = sender_domain(context.sender)
    return digest_message_id(context.secret, context.digest_id, recipient.id, domain)


def choose_mirrors(context: DigestContext, recipient: Recipient) -> tuple[DigestMirror, ...]:
    """The `links_per_article` mirrors this recipient sees in this digest, best first.

    Each subscriber has a fixed pool of at most `UNLISTED_PER_SUBSCRIBER` unlisted
    mirrors (rendezvous hashing: adding a mirror moves few pools); each digest leads
    with one of them, then fills up from the listed mirrors and the rest of the pool,
    in an order that changes from digest to digest.
    """
    count = max(context.links_per_article, 0)
    listed = [mirror for mirror in context.mirrors if mirror.listed]
    unlisted = [mirror for mirror in context.mirrors if not mirror.listed]
    pool_size = min(len(unlisted), max(UNLISTED_PER_SUBSCRIBER, count - len(listed)))
    pool = sorted(unlisted, key=lambda m: mac(context.secret, "pool", recipient.id, m.name))

    def rotation(mirror: DigestMirror) -> bytes:
        return mac(context.secret, "digest", recipient.id, context.digest_id, mirror.name)

    first = sorted(pool[:pool_size], key=rotation)[:1]
    rest = sorted((m for m in [*listed, *pool[:pool_size]] if m not in first), key=rotation)
    return tuple([*first, *rest][:count])


def stopped_mirrors(context: DigestContext, recipient: Recipient) -> tuple[DigestMirror, ...]:
    """The blocked mirrors among this recipient's links in the previous digest (as chosen
    from today's mirrors plus the blocked ones: a spare promoted since may shift a pick)."""
    if not context.blocked or not context.previous_digest_id:
        return ()
    before = replace(
        context,
        mirrors=context.mirrors + context.blocked,
        digest_id=context.previous_digest_id,
        blocked=(),
    )
    return tuple(m for m in choose_mirrors(before, recipient) if m in context.blocked)


# --- the message ---------------------------------------------------------------------


def compose(
    context: DigestContext, recipient: Recipient, articles: Sequence[DigestArticle]
) -> EmailMessage:
    """The digest message for `recipient`: `articles` in the order given.

    Full text (when `context.full_text`) for as many articles from the first as fit in
    `max_message_bytes`; the rest as summaries with links.
    """
    check_secret(context.secret)
    chrome = _chrome_language(context, recipient)
    attached = _with_edition(context, recipient, articles, chrome)
    if attached is not None:
        return attached
    note = EDITION_DOWNLOAD if context.attach_edition else ""
    view = _digest_view(context, recipient, articles, chrome, edition_note=note)
    message = _headers(context, recipient, chrome, len(articles))
    room = context.max_message_bytes - header_bytes(message) - len(CTE_HEADER)
    encoding, payload = encoded_body(_fitted_text(view, room))
    message["Content-Transfer-Encoding"] = encoding
    message.set_payload(payload)
    return message


EDITION_ATTACHED = "attached"
EDITION_DOWNLOAD = "download"  # asked for, but over the cap (or missing): a link instead
_ATTACHMENT_MARGIN = 1_000  # bytes: part headers and the boundaries
SIGNATURE_SUFFIX = ".minisig"  # the file's signature, attached beside it
_SIGNATURE_TYPE = ("application", "octet-stream")  # as minisign wrote it: no CRLF rewrite


def site_pages(context: DigestContext, chrome: str) -> dict[str, str]:
    """The index, verify and mirrors pages for a reader of `chrome`: the language's own
    (index-ru.html ...) where the edition has them, as its pages link them; else the
    unsuffixed ones."""
    own = chrome in context.page_languages and chrome != base_language(context.language)
    return render.site_paths(chrome if own else None)


def edition_path(context: DigestContext, chrome: str) -> str:
    """The newest daily file for a reader of `chrome`: in that language, else the
    publication's, else none ("")."""
    editions = context.editions
    return editions.get(chrome) or editions.get(base_language(context.language)) or ""


def _with_edition(
    context: DigestContext, recipient: Recipient, articles: Sequence[DigestArticle], chrome: str
) -> EmailMessage | None:
    """The message with the day's file attached, or None when it is not asked for, not
    at hand, or the whole message would pass `max_message_bytes`."""
    path = edition_path(context, chrome) if context.attach_edition else ""
    data = context.edition_files.get(path) if path else None
    signature = context.edition_files.get(path + SIGNATURE_SUFFIX) if path else None
    if data is None or signature is None:
        return None
    view = _digest_view(context, recipient, articles, chrome, edition_note=EDITION_ATTACHED)
    message = _headers(context, recipient, chrome, len(articles))
    attachments = [
        _attachment_part(message, path, data, ("text", "html")),
        _attachment_part(message, path + SIGNATURE_SUFFIX, signature, _SIGNATURE_TYPE),
    ]
    room = context.max_message_bytes - header_bytes(message) - _ATTACHMENT_MARGIN
    room -= sum(len(part.as_bytes()) for part in attachments)
    if room <= 0:
        return None
    text = _text_part(message, _fitted_text(view, room))
    del message["Content-Type"]
    boundary = "mirror-" + hashlib.sha256(text.as_bytes() + data).hexdigest()[:32]
    message["Content-Type"] = f'multipart/mixed; boundary="{boundary}"'
    message.set_payload([text, *attachments])
    if len(message.as_bytes()) > context.max_message_bytes:
        return None
    return message


def _text_part(message: EmailMessage, text: str) -> MIMEPart:
    part = MIMEPart(policy=message.policy)
    part["Content-Type"] = 'text/plain; charset="utf-8"'
    encoding, payload = encoded_body(text)
    part["Content-Transfer-Encoding"] = encoding
    part.set_payload(payload)
    return part


def _attachment_part(
    message: EmailMessage, path: str, data: bytes, content_type: tuple[str, str]
) -> MIMEPart:
    """`data` as an attachment named as the file; base64, so no byte changes on the way."""
    part = MIMEPart(policy=message.policy)
    name = path.rsplit("/", 1)[-1]
    maintype, subtype = content_type
    part.set_content(data, maintype, subtype, disposition="attachment", filename=name, cte="base64")
    return part


def readable(message: EmailMessage) -> str:
    """The message as a person reads it: decoded headers, a blank line, the text (the
    plain part of a message with attachments, then a line naming each attachment)."""
    headers = "".join(f"{name}: {value}\n" for name, value in message.items())
    text = message.get_body(("plain",)) if message.get_payload() else None
    body = str(text.get_content()) if text is not None else ""
    attached = "".join(
        f"[attached: {part.get_filename()}, {len(part.get_content())} bytes]\n"
        for part in message.iter_attachments()
    )
    return f"{headers}\n{body.replace(chr(13), '')}{attached}"


class Composer:
    """The messages of one digest, fast: each distinct body (language, articles, mirror
    choice, token length) is rendered once with a stand-in token; a recipient's message
    is that text with their token, encoded, under headers built from shared parts.
    `message_bytes(r, a)` equals `compose(context, r, a).as_bytes()` whenever the size
    cap cuts nowhere near the boundary (the cap is then applied with a little margin)."""

    def __init__(self, context: DigestContext) -> None:
        check_secret(context.secret)
        self.context = context
        self._bodies: dict[tuple[object, ...], SharedBody] = {}
        self._headers: dict[tuple[str, int, bool], list[tuple[str, bytes | None]]] = {}

    def message_bytes(self, recipient: Recipient, articles: Sequence[DigestArticle]) -> bytes:
        return self.wire(recipient, articles)[0]

    def wire(self, recipient: Recipient, articles: Sequence[DigestArticle]) -> tuple[bytes, bytes]:
        """The message, and the same as SMTP DATA carries it (`mirror.mail.wire.data_payload`):
        the shared body is dot-stuffed once, only the recipient's own parts each time."""
        if not recipient.email.rpartition("@")[0].isascii() or self.context.attach_edition:
            # SMTPUTF8 (rare), or a file to attach: the message is composed whole
            message = compose(self.context, recipient, articles).as_bytes()
            return message, data_payload(message)
        chrome = _chrome_language(self.context, recipient)
        token = unsubscribe_token(self.context.secret, recipient.id)
        body = self._body(recipient, articles, chrome, len(token))
        stand_in = (_STAND_IN * len(token)).encode("utf-8")
        tail = encode_body(body.encoding, body.tail.replace(stand_in, token.encode("ascii")))
        tail = tail.replace(b"\n", b"\r\n")
        headers = self._header_block(recipient, chrome, len(articles), body.encoding)
        message = headers + b"\r\n" + body.head + tail
        payload = end_of_data(headers + b"\r\n" + body.stuffed_head + dot_stuffed(tail))
        return message, payload

    def _body(
        self, recipient: Recipient, articles: Sequence[DigestArticle], chrome: str, size: int
    ) -> SharedBody:
        mirrors = choose_mirrors(self.context, recipient)
        stopped = stopped_mirrors(self.context, recipient)
        key = (chrome, tuple(articles), mirrors, stopped, size, recipient.welcome)
        if key not in self._bodies:
            stand_in = _STAND_IN * size
            view = _digest_view(self.context, recipient, articles, chrome, token=stand_in)
            text = self._fitted(view, recipient, chrome, len(articles))
            self._bodies[key] = shared_body(text, stand_in)
        return self._bodies[key]

    def _fitted(self, view: _DigestView, recipient: Recipient, chrome: str, count: int) -> str:
        """The body text with as many articles in full as fit the size cap."""
        headers = header_bytes(_headers(self.context, recipient, chrome, count))
        room = self.context.max_message_bytes - headers - len(CTE_HEADER) - _HEADER_MARGIN
        return _fitted_text(view, room)

    def _header_block(self, recipient: Recipient, chrome: str, count: int, encoding: str) -> bytes:
        """The folded header lines: shared ones from a template, the recipient's own."""
        lines = []
        for name, folded in self._template(chrome, count, recipient.welcome):
            lines.append(folded if folded is not None else self._own(name, recipient))
        lines.append(f"Content-Transfer-Encoding: {encoding}\r\n".encode("ascii"))
        return b"".join(lines)

    def _own(self, name: str, recipient: Recipient) -> bytes:
        if name == "To":
            value = str(_recipient_address(recipient.email))
        elif name == "Message-ID":
            value = message_id(self.context, recipient)
        else:
            uris = _unsubscribe_uris(self.context, recipient)
            value = ", ".join(f"<{uri}>" for uri in uris)
        return SMTP_POLICY.fold_binary(name, value)

    def _template(self, chrome: str, count: int, welcome: bool) -> list[tuple[str, bytes | None]]:
        """The header lines in order; None where each recipient has their own."""
        key = (chrome, count, welcome)
        if key not in self._headers:
            recipient = replace(_SAMPLE_RECIPIENT, welcome=welcome)
            sample = _headers(self.context, recipient, chrome, count)
            self._headers[key] = [
                (name, None if name in _OWN_HEADERS else SMTP_POLICY.fold_binary(name, value))
                for name, value in sample.items()
            ]
        return self._headers[key]


_STAND_IN = "\ue000"  # private use: never in a body; one per token character
_HEADER_MARGIN = 200  # bytes: recipients' own headers differ in length a little
_OWN_HEADERS = frozenset({"To", "Message-ID", "List-Unsubscribe"})
_SAMPLE_RECIPIENT = Recipient(1, "sample@example.org", "any")


def _fitted_text(view: _DigestView, room: int) -> str:
    """The body text with as many articles in full (from the first) as fit in `room`
    bytes once encoded; the rest as summaries."""
    full_text = view.context.full_text

    @functools.cache
    def body(full: int) -> str:
        return _render_body(view, full, full_text)

    def fits(full: int) -> bool:
        return wire_bytes(encoded_body(body(full))[1]) <= room

    full = len(view.articles) if full_text else 0
    if full and not fits(full):
        full = _largest(fits, full - 1)
    return body(full)


def _largest(fits: Callable[[int], bool], upper: int) -> int:
    """The largest count in [0, upper] that fits (0 when none does): a binary search."""
    low, high = 0, upper
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _headers(context: DigestContext, recipient: Recipient, chrome: str, count: int) -> EmailMessage:
    message = EmailMessage(policy=policy_for(recipient.email))
    message["From"] = _from_address(context)
    message["To"] = _recipient_address(recipient.email)
    message["Subject"] = _subject(context, chrome, count, welcome=recipient.welcome)
    message["Date"] = format_datetime(aware(context.date).astimezone(UTC))
    message["Message-ID"] = message_id(context, recipient)
    message["List-Id"] = _list_id(context)
    if context.unsubscribe:
        message["List-Unsubscribe"] = ", ".join(
            f"<{uri}>" for uri in _unsubscribe_uris(context, recipient)
        )
    if context.unsubscribe and context.unsubscribe_url.startswith("https://"):
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = 'text/plain; charset="utf-8"'
    return message


def _unsubscribe_uris(context: DigestContext, recipient: Recipient) -> list[str]:
    token = unsubscribe_token(context.secret, recipient.id)
    uris = []
    if context.unsubscribe_url:
        uris.append(unsubscribe_link(context.unsubscribe_url, token))
    if context.unsubscribe_mailto:
        uris.append(f"mailto:{ascii_address(context.unsubscribe_mailto)}"
                    f"?subject=unsubscribe%20{token}")  # fmt: skip
    if not uris:
        raise DigestError("no way to unsubscribe: set unsubscribe_url or unsubscribe_mailto")
    for uri in uris:
        if (
            not uri.isascii()
            or SPACES.search(uri)
            or CONTROLS.search(uri)
            or _BAD_IN_URI & set(uri)
        ):
            raise DigestError(f"unsubscribe address unusable in a header: {uri!r}")
    return uris


def _subject(context: DigestContext, chrome: str, count: int, *, welcome: bool = False) -> str:
    date = date_words(context.date, chrome, context.timezone)
    if context.neutral:
        return one_line(f"{context.neutral_subject}, {date}")
    if welcome:
        return one_line(
            _messages(chrome)["welcome_subject"].format(publication=context.publication)
        )
    return one_line(f"{context.publication}: {_count_words(count, chrome)}, {date}")


def _from_address(context: DigestContext) -> Address:
    name, address = parseaddr(context.sender)
    if not address or "@" not in address:
        raise DigestError(f"the digest's sender is not an address: {context.sender!r}")
    display = context.neutral_sender if context.neutral else name
    return Address(display_name=one_line(display), addr_spec=ascii_address(address))


def _recipient_address(email: str) -> Address:
    if SPACES.search(email) or CONTROLS.search(email) or email.count("@") != 1:
        raise SubscriberError("not a single email address")
    local, domain = email.rsplit("@", 1)
    try:
        return Address(username=local, domain=ascii_domain(domain))
    except (ValueError, IndexError) as exc:
        raise SubscriberError("not a valid email address") from exc


def _list_id(context: DigestContext) -> str:
    list_id = one_line(context.list_id).strip("<>") or f"digest.{sender_domain(context.sender)}"
    if context.neutral:
        return f"<{list_id}>"
    name = re.sub(r'[<>"\\]', "", one_line(context.publication))
    return f"{name} <{list_id}>" if name else f"<{list_id}>"


# --- the body ------------------------------------------------------------------------


@dataclass(frozen=True)
class _ArticleView:
    article: DigestArticle
    title: str  # one line
    byline: str
    date: str
    lead: str  # shown before the body (empty when the body opens with it)
    summary: str
    body: str  # the full text, wrapped
    links: tuple[str, ...]  # mirror URLs
    original: str


@dataclass(frozen=True)
class _DigestView:
    heading: str
    chrome: str
    articles: tuple[_ArticleView, ...]
    mirrors: tuple[DigestMirror, ...]
    context: DigestContext
    token: str
    unsubscribe_url: str
    stopped: tuple[DigestMirror, ...]  # blocked mirrors this recipient had: replaced
    unsubscribe_mailto: str
    verify_url: str
    edition_links: tuple[str, ...] = ()  # the day's single file on each of these mirrors
    edition_note: str = ""  # EDITION_ATTACHED | EDITION_DOWNLOAD | ""
    pages: Mapping[str, str] = field(default_factory=dict)  # `site_pages`: "index" -> path
    welcome: bool = False  # the first message to one added by ops: says why it comes


def _digest_view(
    context: DigestContext,
    recipient: Recipient,
    articles: Sequence[DigestArticle],
    chrome: str,
    token: str | None = None,
    edition_note: str = "",
) -> _DigestView:
    mirrors = choose_mirrors(context, recipient)
    edition = edition_path(context, chrome)
    pages = site_pages(context, chrome)
    if not context.unsubscribe:
        context = replace(context, unsubscribe_url="", unsubscribe_mailto="")
    token = token or (
        unsubscribe_token(context.secret, recipient.id) if context.unsubscribe else ""
    )
    date = date_words(context.date, chrome, context.timezone)
    name = context.neutral_subject if context.neutral else context.publication
    return _DigestView(
        heading=one_line(f"{name} — {date}"),
        chrome=chrome,
        articles=tuple(
            _on_mirrors(_article_view(a, chrome, context.timezone), mirrors, context)
            for a in articles
        ),
        mirrors=mirrors,
        context=context,
        token=token,
        unsubscribe_url=unsubscribe_link(context.unsubscribe_url, token)
        if context.unsubscribe_url
        else "",
        unsubscribe_mailto=ascii_address(context.unsubscribe_mailto)
        if context.unsubscribe_mailto
        else "",
        verify_url=(mirrors[0].url if mirrors else "") + pages["verify"],
        pages=pages,
        stopped=stopped_mirrors(context, recipient),
        edition_links=tuple(m.url + quote(edition, safe="/") for m in mirrors if edition),
        edition_note=edition_note if edition else "",
        welcome=recipient.welcome,
    )


def _on_mirrors(
    view: _ArticleView, mirrors: Sequence[DigestMirror], context: DigestContext
) -> _ArticleView:
    """The view with its mirror links, and its body's links to the outlet's own articles
    (the "[n] URL" list) pointing to the first of them."""
    links = _links(view.article, mirrors)
    if not mirrors or not context.internal_links or not view.body:
        return replace(view, links=links)

    def on_mirror(found: re.Match[str]) -> str:
        url = found[2]
        address, mark, fragment = url.partition("#")
        path = context.internal_links.get(url) or context.internal_links.get(address)
        if path is None:
            return found[0]
        return f"{found[1]}{mirrors[0].url}{quote(path, safe='/')}{mark}{fragment}"

    return replace(view, links=links, body=_FOOTNOTE_LINK.sub(on_mirror, view.body))


_FOOTNOTE_LINK = re.compile(r"(?m)^(\[\d+\] )(\S+)$")


def _links(article: DigestArticle, mirrors: Sequence[DigestMirror]) -> tuple[str, ...]:
    """The article's address on each mirror: straight links, no query string."""
    return tuple(mirror.url + quote(article.path, safe="/") for mirror in mirrors)


@functools.lru_cache(maxsize=256)
def _article_view(article: DigestArticle, chrome: str, zone: str) -> _ArticleView:
    """The article as every recipient with this language sees it (links left empty)."""
    words = _messages(chrome)
    body = html_to_text(worded_notes(article.body_html, words["video"]), image_label=words["image"])
    lead = one_line(article.lead)
    return _ArticleView(
        article=article,
        title=one_line(article.title) or "—",
        byline=_byline(article.authors, article.language),
        date=date_words(article.published, article.language, zone) if article.published else "",
        lead="" if repeats_opening(lead, body) else lead,
        summary=lead or _shortened(body),
        body=body,
        links=(),
        original=one_line(article.canonical_url).replace(" ", "%20"),
    )


def verification_text(
    context: DigestContext, mirrors: Sequence[DigestMirror], language: str
) -> str:
    """The digest's footer alone (these mirrors, the keys, the live manifest and the
    minisign commands; no unsubscribe lines), in `language`: mail-in's replies carry it."""
    chrome = base_language(language) if catalogue.has_catalogue(language) else "en"
    alone = replace(
        context, mirrors=tuple(mirrors), links_per_article=len(mirrors), unsubscribe=False
    )
    view = _digest_view(alone, _SAMPLE_RECIPIENT, (), chrome)
    text = (
        _environment()
        .get_template("footer.txt")
        .render(view=view, context=view.context, t=_messages(chrome))
    )
    return tidy(text)


def _render_body(view: _DigestView, full: int, full_text: bool) -> str:
    """The body text with the first `full` articles in full, the rest as summaries."""
    text = (
        _environment()
        .get_template("digest.txt")
        .render(
            view=view,
            context=view.context,
            t=_messages(view.chrome),
            full=full,
            cut=full_text and full < len(view.articles),
            count=_count_words(len(view.articles), view.chrome),
            rule="-" * WIDTH,
        )
    )
    return tidy(text)


def _shortened(body: str) -> str:
    first = " ".join(body.split("\n\n", 1)[0].split())
    if len(first) <= SUMMARY_MAX_CHARS:
        return first
    return first[:SUMMARY_MAX_CHARS].rsplit(" ", 1)[0] + " …"


# --- words -----------------------------------------------------------------------------


# The words of the digest, in English; the catalogue (`mirror.build.catalogue`) holds
# their translations. A new key: add it here with N_(), then to every .po (README).
MESSAGES: dict[str, str | InContext | Plural] = {
    "count": NP_("{n} new article", "{n} new articles"),
    "intro": N_(
        "This email brings the articles themselves, so you can read them even if no "
        "website opens for you. Each article also has links to copies on mirrors."
    ),
    "intro_summary": N_("The new articles, with links to their copies on mirrors."),
    "welcome_subject": N_("Welcome to {publication}"),  # as mail-in's welcome
    "welcome": N_(
        "Welcome! You get this email because your address was added to this mailing list. "
        "From now on the new articles will come to you by email, with links to copies on "
        "mirrors that open even where the website is blocked. Here are the newest articles "
        "and the mirrors; how to unsubscribe is at the end of this email."
    ),
    "contents": N_("In this issue:"),
    "by": N_("By {names}"),
    "by_one": NC_("one author", "By {names}"),
    "read_on": N_("Read on a mirror:"),
    "original": N_("Original (may be blocked):"),
    "cut": N_("This email has grown long: the full text of the articles below is on the mirrors."),
    "summary_only": N_("Full text on the mirrors."),
    "image": N_("image"),
    "video": N_("Video:"),
    "mirrors": N_("Mirrors (open whichever works for you):"),
    "stopped": N_("This link stopped working:"),
    "use_these": N_("Use these instead:"),
    "signed": N_("Every file on the mirrors is signed by {name}."),
    "signed_neutral": N_("Every file on the mirrors is signed by the publisher."),
    "key": N_("Signing public key (minisign):"),
    "manifest": N_("Live edition: manifest version {version}, SHA-256:"),
    "check": N_(
        "To check that a mirror has the genuine edition, open its verify page, "
        "e.g. {url}, or with minisign download manifests/{version}.json and "
        "manifests/{version}.json.minisig from a mirror and run:"
    ),
    "check_sum": N_("The file's SHA-256 (sha256sum {version}.json) should match the one above."),
    "root_key": N_(
        "Root public key (minisign), kept offline: it certifies the signing key in "
        "keys.json on every mirror:"
    ),
    "keys_serial": N_(
        "The current keys.json has serial {serial}; a copy with a lower one may use a "
        "revoked key. Check a whole mirror with:"
    ),
    "check_keys": N_(
        "Or with minisign alone: download keys.json and keys.json.minisig from a "
        "mirror and check them with the root key (the trusted comment shows the serial "
        "and the expiry), then check a page, with its .minisig beside it, with the "
        "signing key keys.json lists:"
    ),
    "unsubscribe": N_("To unsubscribe, open this link and press the button:"),
    "unsubscribe_mail": N_('or send an email to {address} with the subject "unsubscribe {token}".'),
    "unsubscribe_mail_only": N_(
        'To unsubscribe, send an email to {address} with the subject "unsubscribe {token}".'
    ),
    "edition": N_("All of the day's articles in one file, to save or forward:"),
    "edition_attached": N_(
        "The same file is attached to this email, with its signature (.minisig): save "
        "both in one folder and check the file as any page."
    ),
    "edition_download": N_(
        "The file is too large to attach to this email: download it from a mirror above."
    ),
}


def _messages(language: str) -> dict[str, Any]:
    return catalogue.wording(MESSAGES, language)


def _chrome_language(context: DigestContext, recipient: Recipient) -> str:
    """The recipient's language for the message's own words; "any": the publication's."""
    wanted = context.language if recipient.lang == "any" else recipient.lang
    return base_language(wanted) if catalogue.has_catalogue(wanted) else "en"


def _count_words(count: int, language: str) -> str:
    count_message = MESSAGES["count"]
    assert isinstance(count_message, Plural)
    return catalogue.count_words(count_message, count, language)


def _byline(authors: Sequence[str], language: str) -> str:
    return byline([one_line(name) for name in authors], language, _messages(language))


# --- templates -----------------------------------------------------------------------


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=TemplateLoader(TEMPLATE_FOLDER),
        autoescape=False,  # noqa: S701 -- plain text, never HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["wrap"] = wrap
    environment.filters["heading"] = heading
    return environment
