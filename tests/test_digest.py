"""Digest composition: messages parsed back with the standard parser, header by header."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from mirror.digest.compose import (
    UNLISTED_PER_SUBSCRIBER,
    DigestArticle,
    DigestContext,
    DigestMirror,
    Recipient,
    choose_mirrors,
    compose,
    message_id,
    stopped_mirrors,
    verification_text,
)
from mirror.digest.text import html_to_text
from mirror.digest.tokens import TOKEN_MAX_CHARS, token_subscriber, unsubscribe_token
from mirror.errors import DigestError, SubscriberError
from mirror.mail.wire import data_payload

SECRET = b"digest-test-secret-0123456789abcdef"
KEY = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
MIRRORS = (
    DigestMirror("aws", "https://s3.eu-central-1.amazonaws.com/example-mirror-1/", True),
    DigestMirror("own", "https://mirror.example.net/", True),
    *(DigestMirror(f"hidden-{n}", f"https://h{n}.example.com/m/", False) for n in range(6)),
)
BODY = """<p>The council met on <a href="https://www.example.org/council">Tuesday</a>
and voted to close the bridge.</p>
<h2>What happens next</h2>
<ul><li>First point</li><li>Second <a href="https://other.example.net/source">source</a></li></ul>
<blockquote><p>We will not close it, said the mayor.</p></blockquote>
<figure><img src="https://static.example.org/a.jpg" alt="The bridge"><figcaption>Dawn</figcaption>
</figure>
<table><tr><th>Year</th><th>Cars</th></tr><tr><td>2025</td><td>1200</td></tr></table>"""
BODY_LINKS = {"https://www.example.org/council", "https://other.example.net/source"}
RU_BODY = "<p>Совет собрался во вторник и проголосовал за закрытие моста.</p>"


def article(n: int = 1, **changes: object) -> DigestArticle:
    base = DigestArticle(
        path=f"articles/2026/11/bridge-{n}.html",
        title=f"Council votes to close bridge {n}",
        authors=("Jane Roe", "John Doe"),
        published=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        language="en",
        lead="The council voted to close the bridge.",
        body_html=BODY,
        canonical_url=f"https://www.example.org/2026/11/bridge-{n}",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def russian(n: int = 1) -> DigestArticle:
    return article(
        n,
        title="Совет проголосовал за закрытие моста",
        authors=("Анна Иванова",),
        language="ru",
        lead="Совет проголосовал.",
        body_html=RU_BODY,
        canonical_url=f"https://www.example.org/ru/most-{n}",
    )


def context(**changes: object) -> DigestContext:
    base = DigestContext(
        digest_id=7,
        date=datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        publication="The Example Times",
        sender="The Example Times <digest@example.org>",
        language="en",
        mirrors=MIRRORS,
        links_per_article=3,
        public_key_line=KEY,
        manifest_version=42,
        manifest_sha256=SHA,
        unsubscribe_url="https://www.example.org/unsubscribe",
        unsubscribe_mailto="unsubscribe@example.org",
        list_id="digest.example.org",
        full_text=True,
        max_message_bytes=200_000,
        neutral=False,
        neutral_sender="Newsletter",
        neutral_subject="Weekly notes",
        secret=SECRET,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


READER = Recipient(12, "reader@example.com", "en")


def parsed(message: EmailMessage) -> EmailMessage:
    raw = message.as_bytes()
    result = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    return result


def text_of(message: EmailMessage) -> str:
    content = parsed(message).get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")  # lines end in CRLF on the wire


# --- headers ---------------------------------------------------------------------------


def test_headers_one_by_one() -> None:
    ctx = context()
    message = parsed(compose(ctx, READER, [article(1), article(2), article(3)]))
    token = unsubscribe_token(SECRET, READER.id)
    assert message["From"] == "The Example Times <digest@example.org>"
    assert message["To"] == "reader@example.com"
    assert message["Subject"] == "The Example Times: 3 new articles, November 25, 2026"
    assert parsedate_to_datetime(message["Date"]) == ctx.date
    assert message["Message-ID"] == message_id(ctx, READER)
    assert re.fullmatch(r"<[0-9a-f]{32}\.7@example\.org>", message["Message-ID"])
    assert message["List-Id"] == "The Example Times <digest.example.org>"
    assert message["List-Unsubscribe"] == (
        f"<https://www.example.org/unsubscribe?token={token}>, "
        f"<mailto:unsubscribe@example.org?subject=unsubscribe%20{token}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message["Content-Transfer-Encoding"] in ("quoted-printable", "base64")


def test_raw_message_is_seven_bit_with_short_lines() -> None:
    raw = compose(context(), READER, [article(), russian()]).as_bytes()
    assert raw.isascii()  # no SMTPUTF8 or 8BITMIME needed
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_message_id_is_stable_and_distinct() -> None:
    ctx = context()
    first = compose(ctx, READER, [article()])
    again = compose(ctx, READER, [article()])
    assert first["Message-ID"] == again["Message-ID"]
    assert first.as_bytes() == again.as_bytes()  # a resend is the same message
    other = Recipient(13, "other@example.com", "en")
    assert message_id(ctx, other) != message_id(ctx, READER)
    assert message_id(context(digest_id=8), READER) != message_id(ctx, READER)


def test_mailto_only_when_configured_and_post_only_with_https() -> None:
    message = parsed(compose(context(unsubscribe_mailto=""), READER, [article()]))
    assert message["List-Unsubscribe"].count("<") == 1
    assert message["List-Unsubscribe"].startswith("<https://")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mail_only = parsed(compose(context(unsubscribe_url=""), READER, [article()]))
    assert mail_only["List-Unsubscribe"].startswith("<mailto:")
    assert mail_only["List-Unsubscribe-Post"] is None
    with pytest.raises(DigestError):
        compose(context(unsubscribe_url="", unsubscribe_mailto=""), READER, [article()])


def test_long_unsubscribe_uris_are_folded_not_encoded() -> None:
    url = "https://www.example.org/" + "long-path/" * 10 + "unsubscribe"
    raw = compose(context(unsubscribe_url=url), READER, [article()]).as_bytes()
    header = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "=?" not in header.split("List-Unsubscribe:", 1)[1].split("List-Unsubscribe-Post")[0]
    assert parsed(compose(context(unsubscribe_url=url), READER, [article()]))[
        "List-Unsubscribe"
    ].startswith(f"<{url}?token=")


def test_cyrillic_subject_names_and_body_round_trip() -> None:
    ctx = context(
        publication="Новая газета",
        sender="Новая газета <digest@example.org>",
        language="ru",
    )
    reader = Recipient(5, "chitatel@example.com", "ru")
    message = parsed(compose(ctx, reader, [russian(1), russian(2), article(3)]))
    assert message["Subject"] == "Новая газета: 3 новые статьи, 25 ноября 2026 г."
    assert message["From"].addresses[0].display_name == "Новая газета"
    assert message["List-Id"] == "Новая газета <digest.example.org>"
    body = text_of(message)
    assert "Совет собрался во вторник" in body
    assert "Автор: Анна Иванова" in body
    assert "24 ноября 2026\u202fг." in body  # babel keeps "г." with the year
    assert "By Jane Roe and John Doe" in body  # an English article's byline stays English
    assert "Читать на зеркале:" in body


@pytest.mark.parametrize(("count", "words"), [(1, "1 новая статья"), (5, "5 новых статей")])
def test_russian_plurals(count: int, words: str) -> None:
    reader = Recipient(5, "r@example.com", "ru")
    message = compose(context(), reader, [russian(n) for n in range(count)])
    assert words in message["Subject"]


def test_any_language_takes_the_publications() -> None:
    reader = Recipient(5, "r@example.com", "any")
    message = compose(context(language="ru"), reader, [article()])
    assert "1 новая статья" in message["Subject"]


def test_idn_domain_and_utf8_local_part() -> None:
    idn = parsed(compose(context(), Recipient(3, "reader@пример.рф", "en"), [article()]))
    assert idn["To"] == "reader@xn--e1afmkfd.xn--p1ai"
    utf8 = compose(context(), Recipient(4, "читатель@example.com", "en"), [article()])
    assert parsed(utf8)["To"] == "читатель@example.com"  # needs SMTPUTF8 from the server


@pytest.mark.parametrize("address", ["a@b.org\r\nBcc: x@evil.org", "a@b.org, c@d.org", "nope"])
def test_bad_recipient_address_is_refused(address: str) -> None:
    with pytest.raises(SubscriberError):
        compose(context(), Recipient(3, address, "en"), [article()])


# --- body ------------------------------------------------------------------------------


def test_a_reader_of_a_language_with_its_own_pages_is_sent_to_them() -> None:
    """index-ru.html, verify-ru.html for a Russian reader where the edition has them;
    the unsuffixed pages for the main language, and where it has none."""
    both = context(page_languages=("en", "ru"))
    russian_text = text_of(compose(both, Recipient(3, "r@example.com", "ru"), [russian()]))
    assert re.search(r"\S+/index-ru\.html\n", russian_text)
    assert re.search(r"\S+/verify-ru\.html\b", russian_text)
    assert not re.search(r"/(index|verify)\.html", russian_text)
    english_text = text_of(compose(both, READER, [article()]))
    assert "/index.html" in english_text and "/verify.html" in english_text
    assert "-ru.html" not in english_text and "-en.html" not in english_text
    alone = text_of(compose(context(), Recipient(3, "r@example.com", "ru"), [russian()]))
    assert "/index.html" in alone and "-ru.html" not in alone
    footer = verification_text(both, MIRRORS[:2], "ru")  # mail-in's replies
    assert "index-ru.html" in footer and "verify-ru.html" in footer


def test_body_has_article_parts_and_footer() -> None:
    ctx = context()
    body = text_of(compose(ctx, READER, [article()]))
    assert "Council votes to close bridge 1" in body
    assert "By Jane Roe and John Doe" in body
    assert "November 24, 2026" in body
    assert "The council met on Tuesday [1]" in body
    assert "- First point" in body
    assert "> We will not close it" in body
    assert "[image: The bridge]" in body
    assert "Year | Cars" in body
    for mirror in choose_mirrors(ctx, READER):
        assert f"  {mirror.url}articles/2026/11/bridge-1.html\n" in body
        assert f"  {mirror.url}index.html\n" in body
    assert "https://www.example.org/2026/11/bridge-1" in body
    assert KEY in body and SHA in body
    assert "manifest version 42" in body
    assert f"minisign -Vm 42.json -P {KEY}" in body
    assert "verify.html" in body
    token = unsubscribe_token(SECRET, READER.id)
    assert f"https://www.example.org/unsubscribe?token={token}" in body
    assert f'unsubscribe@example.org with the subject\n"unsubscribe {token}"' in body
    assert "\n-- \n" in body  # the signature delimiter


def test_the_footer_gives_the_root_key_the_serial_and_two_minisign_commands() -> None:
    root = "RWROOTKEY" + "A" * 47
    plain = text_of(compose(context(), READER, [article()]))
    assert "keys.json" not in plain and "--min-serial" not in plain
    body = text_of(compose(context(root_key_line=root, keys_serial=7), READER, [article()]))
    assert f"\n  {root}\n" in body
    assert "The current keys.json has serial 7" in body
    assert f"  mirror verify MIRROR-URL --key {root} --min-serial 7\n" in body
    assert f"  minisign -Vm keys.json -P {root}\n  minisign -Vm PAGE.html -P {KEY}\n" in body
    ru_reader = Recipient(5, "r@example.com", "ru")
    russian = text_of(compose(context(root_key_line=root, keys_serial=7), ru_reader, [article()]))
    assert "Текущий keys.json имеет номер 7" in russian
    unknown = text_of(compose(context(root_key_line=root), READER, [article()]))
    assert "--min-serial" not in unknown and f"minisign -Vm keys.json -P {root}" in unknown


def test_no_markup_and_no_links_but_mirrors_originals_and_unsubscribe() -> None:
    ctx = context()
    articles = [article(1), russian(2)]
    body = text_of(compose(ctx, READER, articles))
    assert not re.search(r"<[a-zA-Z/!]", body)
    allowed = {f"{m.url}articles/2026/11/bridge-{n}.html" for m in MIRRORS for n in (1, 2)}
    allowed |= {f"{m.url}{page}" for m in MIRRORS for page in ("index.html", "verify.html")}
    allowed |= {a.canonical_url for a in articles} | BODY_LINKS
    allowed.add(f"https://www.example.org/unsubscribe?token={unsubscribe_token(SECRET, 12)}")
    found = set(re.findall(r"https?://[^\s,]+", body))
    assert found - allowed == set()
    assert not any("?" in url for url in found if "unsubscribe" not in url)
    assert "static.example.org" not in body  # no image URL, no pixel


def test_lines_are_wrapped_but_urls_never_broken() -> None:
    long_url = "https://other.example.net/" + "a-very-long-path-segment/" * 5 + "end.html"
    body_html = f"<p>{'word ' * 200}<a href='{long_url}'>link</a> {long_url} tail</p>"
    body = text_of(compose(context(), READER, [article(body_html=body_html)]))
    for line in body.split("\n"):
        if len(line) > 72:
            assert re.search(r"https?://|RW|minisign", line), line
    assert long_url in body.split()
    assert f"[1] {long_url}" in body


def test_title_with_newlines_cannot_inject_headers() -> None:
    title = "Bad\r\nBcc: victim@example.com\r\n\r\nInjected body"
    message = parsed(compose(context(), READER, [article(title=title)]))
    assert message["Bcc"] is None
    assert list(message.keys()).count("Subject") == 1
    body = text_of(message)
    assert "Bad Bcc: victim@example.com Injected body" in body
    assert "\nBcc:" not in body


def test_500_character_title_end_to_end() -> None:
    title = "Long " + "x" * 495
    message = parsed(compose(context(), READER, [article(title=title), article(2)]))
    assert message["Subject"] == "The Example Times: 2 new articles, November 25, 2026"
    body = text_of(message)
    assert f"Long\n{'x' * 495}\n====" in body  # wrapped at the space, the word kept whole
    assert message["From"] == "The Example Times <digest@example.org>"


def test_size_cap_turns_later_articles_into_summaries() -> None:
    big = "<p>" + "Lorem ipsum dolor sit amet. " * 600 + "</p>"  # ~17 KB each
    articles = [article(n, body_html=big, lead=f"Lead number {n}.") for n in range(6)]
    everything = compose(context(), READER, articles).as_bytes()
    cap = 50_000
    capped = compose(context(max_message_bytes=cap), READER, articles)
    raw = capped.as_bytes()
    assert len(raw) <= cap < len(everything)
    body = text_of(capped)
    sections = re.split(r"\nCouncil votes to close bridge \d\n=+\n", body)[1:]
    assert len(sections) == len(articles)
    full = [("Lorem ipsum" in section) for section in sections]
    assert full == sorted(full, reverse=True)  # full text first, then summaries
    assert 0 < sum(full) < len(articles)
    assert "the full text of the articles below is on" in body
    first_summary = body.index("the full text of the articles below is on")
    assert "Lorem ipsum" not in body[first_summary:]  # the rest: summaries only
    for n in range(6):
        assert f"Lead number {n}." in body  # every article still there, with its links
        assert f"https://mirror.example.net/articles/2026/11/bridge-{n}.html" in body or any(
            f"{m.url}articles/2026/11/bridge-{n}.html" in body for m in MIRRORS
        )


def test_summary_mode_sends_leads_and_links() -> None:
    body = text_of(compose(context(full_text=False), READER, [article(1), article(2)]))
    assert "The council voted to close the bridge." in body
    assert "The council met on Tuesday" not in body
    assert "grown long" not in body
    summary = text_of(compose(context(full_text=False), READER, [article(lead="")]))
    assert "The council met on Tuesday" in summary  # no lead: the body's first paragraph


def test_neutral_mode_names_the_outlet_nowhere() -> None:
    ctx = context(neutral=True)
    message = parsed(compose(ctx, READER, [article(1), article(2)]))
    for name, value in message.items():
        assert "Example Times" not in str(value), name
    assert message["From"] == "Newsletter <digest@example.org>"
    assert message["Subject"] == "Weekly notes, November 25, 2026"
    assert message["List-Id"] == "<digest.example.org>"
    body = text_of(message)
    assert body.startswith("Weekly notes — November 25, 2026\n")
    assert "Example Times" not in body


# --- mirrors ---------------------------------------------------------------------------


def test_choose_mirrors_is_deterministic_and_sized() -> None:
    ctx = context()
    chosen = choose_mirrors(ctx, READER)
    assert chosen == choose_mirrors(ctx, READER)
    assert len(chosen) == 3 and len(set(chosen)) == 3
    assert not chosen[0].listed  # leads with an unlisted mirror
    assert choose_mirrors(context(links_per_article=20), READER)  # no more than there are
    assert len(choose_mirrors(context(links_per_article=20), READER)) == len(MIRRORS)


def test_only_listed_mirrors() -> None:
    listed = tuple(m for m in MIRRORS if m.listed)
    assert set(choose_mirrors(context(mirrors=listed), READER)) == set(listed)
    assert choose_mirrors(context(mirrors=()), READER) == ()


def test_each_unlisted_mirror_reaches_only_a_fraction_of_subscribers() -> None:
    ctx = context()
    readers = [Recipient(n, f"r{n}@example.com", "en") for n in range(1, 201)]
    reach = {m.name: 0 for m in MIRRORS if not m.listed}
    subsets = set()
    for reader in readers:
        chosen = choose_mirrors(ctx, reader)
        subsets.add(chosen)
        for mirror in chosen:
            if not mirror.listed:
                reach[mirror.name] += 1
    assert len(subsets) > 10  # different subscribers, different subsets
    assert all(0 < count <= 200 * 0.5 for count in reach.values()), reach


def test_choice_rotates_across_digests_within_a_small_pool() -> None:
    seen = [choose_mirrors(context(digest_id=n), READER) for n in range(1, 51)]
    assert len(set(seen)) > 1  # rotates
    unlisted = {m.name for chosen in seen for m in chosen if not m.listed}
    assert len(unlisted) <= UNLISTED_PER_SUBSCRIBER  # one subscription reveals few
    assert {m.name for chosen in seen for m in chosen if m.listed} == {"aws", "own"}


def test_a_different_secret_chooses_differently() -> None:
    readers = [Recipient(n, f"r{n}@example.com", "en") for n in range(1, 30)]
    other = context(secret=b"another-secret-0123456789abcdef")
    assert [choose_mirrors(context(), r) for r in readers] != [
        choose_mirrors(other, r) for r in readers
    ]


def test_links_to_the_outlets_own_articles_point_to_a_mirror() -> None:
    linking = article(
        body_html='<p>As <a href="https://www.example.org/2026/11/bridge-2#vote">we wrote</a>'
        ' and <a href="https://other.example.net/x">they said</a>.</p>'
    )
    shared = context(
        internal_links={"https://www.example.org/2026/11/bridge-2": "articles/b-2.html"}
    )
    text = text_of(parsed(compose(shared, READER, [linking])))
    first = choose_mirrors(shared, READER)[0].url
    assert f"] {first}articles/b-2.html#vote" in text
    assert "] https://other.example.net/x" in text  # not ours: as it was
    assert "https://www.example.org/2026/11/bridge-2" not in text.split("Original:")[0]


def test_body_links_lose_tracking_parameters() -> None:
    tracked = article(
        body_html='<p>See <a href="https://other.example/r?id=3&utm_source=x">this</a>.</p>'
    )
    text = text_of(parsed(compose(context(), READER, [tracked])))
    assert "https://other.example/r?id=3" in text and "utm_source" not in text


def test_mirror_links_have_no_query_strings() -> None:
    for mirror in choose_mirrors(context(), READER):
        assert "?" not in mirror.url


# --- tokens ----------------------------------------------------------------------------


def test_token_round_trip() -> None:
    for subscriber_id in (1, 12, 10**12):
        token = unsubscribe_token(SECRET, subscriber_id)
        assert len(token) <= TOKEN_MAX_CHARS
        assert re.fullmatch(r"[0-9A-Za-z._-]+", token)
        assert token_subscriber(SECRET, token) == subscriber_id


def test_tampered_tokens_are_refused() -> None:
    token = unsubscribe_token(SECRET, 12)
    number, mac = token.split(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for bad in (
        f"13.{mac}",
        f"{number}.{flipped}",
        f"{number}.{mac}=",
        f"0{number}.{mac}",
        token + " ",
        "",
        "12",
        "x" * 1000,
        f"{'9' * 60}.{mac}",
    ):
        assert token_subscriber(SECRET, bad) is None, bad
    assert token_subscriber(b"another-secret-0123456789abcdef", token) is None
    assert token_subscriber(b"", token) is None


def test_short_secret_is_refused() -> None:
    with pytest.raises(DigestError):
        unsubscribe_token(b"short", 1)
    with pytest.raises(DigestError):
        compose(context(secret=b"short"), READER, [article()])


# --- HTML to text ----------------------------------------------------------------------


def test_html_to_text_leaves_out_alt_text_the_caption_says() -> None:
    html = (
        "<figure><img src='a.jpg' alt='The bridge at dawn'><figcaption>The bridge at dawn."
        "</figcaption></figure><figure><img src='b.jpg' alt='A crowd'><figcaption>Dawn"
        "</figcaption></figure>"
    )
    text = html_to_text(html)
    assert text.count("bridge at dawn") == 1 and "[image]" in text
    assert "[image: A crowd]" in text


def test_html_to_text_shapes() -> None:
    html = (
        "<h2>Heading</h2><p>One <b>bold</b> and <a href='https://a.example/x'>a link</a>"
        " and <a href='https://a.example/x'>again</a>, <a href='javascript:alert(1)'>js</a>,"
        " <a href='https://b.example/'>https://b.example/</a>.<br>New line.</p>"
        "<ol><li>one</li><li>two<ul><li>inner</li></ul></li></ol>"
        "<blockquote><p>quoted</p><p>more</p></blockquote>"
        "<p><img src='x.jpg'> <img src='y.jpg' alt='Alt text'></p>"
        "<script>alert(1)</script><style>p{}</style><pre>  code\n    indented</pre>"
        "<table><caption>Cap</caption><tr><td>a</td><td>b</td></tr></table><hr><p>end</p>"
    )
    text = html_to_text(html)
    assert text == (
        "Heading\n-------\n\n"
        "One bold and a link [1] and again [1], js, https://b.example/.\n"
        "New line.\n\n"
        "1. one\n2. two\n   - inner\n\n"
        "> quoted\n>\n> more\n\n"
        "[image] [image: Alt text]\n\n"
        "  code\n    indented\n\n"
        "Cap\na | b\n\n"
        "* * *\n\n"
        "end\n\n"
        "[1] https://a.example/x"
    )


def test_html_to_text_wraps_and_handles_junk() -> None:
    text = html_to_text("<p>" + "word " * 100 + "</p>", width=40)
    assert all(len(line) <= 40 for line in text.split("\n"))
    assert html_to_text("") == ""
    assert html_to_text("<p>\x00\x07 odd\r\ncontrols</p>") == "odd controls"
    assert "<" not in html_to_text("<div><p>unclosed <i>tags</div>")
    assert html_to_text("<p>a&nbsp;b &lt;c&gt;</p>") == "a\xa0b <c>"


def test_unsubscribe_url_that_would_break_the_header_is_refused() -> None:
    with pytest.raises(DigestError):
        compose(context(unsubscribe_url="https://x.example/u,<evil>"), READER, [article()])


def test_readable_preview_decodes_the_body() -> None:
    from mirror.digest.compose import readable

    reader = Recipient(5, "r@example.com", "ru")
    text = readable(compose(context(), reader, [russian()]))
    assert "Subject: The Example Times: 1 новая статья" in text
    assert "Совет собрался во вторник" in text
    assert "\r" not in text


def test_the_fast_composer_makes_exactly_the_bytes_compose_makes() -> None:
    from mirror.digest.compose import Composer

    shared = context(
        max_message_bytes=10_000_000,
        internal_links={"https://www.example.org/council": "articles/council.html"},
    )
    composer = Composer(shared)
    people = [
        Recipient(7, "reader@example.com", "en"),
        Recipient(12345, "chitatel@example.ru", "ru"),
        Recipient(3, "all@xn--e1afmkfd.xn--p1ai", "any"),
        Recipient(88, "other@example.com", "en"),
    ]
    dotted = article(4, body_html="<p>.NET first</p><p>x</p><p>.</p><p>..two</p>" + BODY)
    articles = [article(1), russian(2), article(3), dotted]
    for recipient in people:
        chosen = [a for a in articles if recipient.lang in ("any", a.language[:2])]
        expected = compose(shared, recipient, chosen).as_bytes()
        message, payload = composer.wire(recipient, chosen)
        assert message == expected, recipient
        assert payload == data_payload(expected), recipient  # stuffed in pieces, the same
    assert b"\r\n..NET first" in composer.wire(people[0], [dotted])[1]


def test_the_fast_composer_keeps_to_the_size_cap() -> None:
    from mirror.digest.compose import Composer

    capped = context(max_message_bytes=12_000)
    many = [article(n, body_html="<p>" + "word " * 800 + "</p>") for n in range(1, 8)]
    data = Composer(capped).message_bytes(Recipient(5, "a@example.com", "en"), many)
    assert len(data) <= 12_000
    body = parsed_bytes(data).get_content()
    assert "word word" in body and "Read on a mirror" in body


def parsed_bytes(data: bytes) -> EmailMessage:
    import email
    import email.policy

    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_composer_imports_no_transport() -> None:
    """The pure core needs no SMTP library and no event loop: wire encoding is in mail."""
    probe = (
        "import sys, mirror.digest.compose; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiosmtplib', 'asyncio', 'ssl', 'aiohttp') "
        "or m in ('mirror.mail.smtp', 'mirror.mail.delivery', 'mirror.mail.outbox')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"


def test_a_reader_whose_link_was_blocked_is_told_its_replacement() -> None:
    gone = DigestMirror("gone", "https://gone.example.net/", True)
    before = context(mirrors=(*MIRRORS, gone), digest_id=6, links_per_article=len(MIRRORS) + 1)
    assert gone in choose_mirrors(before, READER)  # the reader had it last time
    now = context(blocked=(gone,), previous_digest_id=6, links_per_article=len(MIRRORS) + 1)
    assert stopped_mirrors(now, READER) == (gone,)
    text = text_of(compose(now, READER, [article()]))
    stopped = text.index("This link stopped working:")
    assert text.index("https://gone.example.net/index.html") > stopped
    use = text.index("Use these instead:", stopped)
    assert all(text.index(m.url + "index.html", use) for m in choose_mirrors(now, READER))
    assert "gone.example.net/20" not in text  # no article links to it
    quiet = text_of(compose(context(), READER, [article()]))
    assert "stopped working" not in quiet


def test_a_reader_who_never_had_the_blocked_link_hears_nothing_of_it() -> None:
    gone = DigestMirror("gone", "https://gone.example.net/", False)
    now = context(blocked=(gone,), previous_digest_id=6, links_per_article=1)
    readers = [Recipient(n, f"r{n}@example.com", "en") for n in range(1, 41)]
    told = [r for r in readers if stopped_mirrors(now, r)]
    assert 0 < len(told) < len(readers)
    for reader in readers:
        text = text_of(compose(now, reader, [article()]))
        assert ("stopped working" in text) == (reader in told)
