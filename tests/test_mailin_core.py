"""Mail-in's pure core: parsing, commands, authentication, loop protection, bounces. Every
message here is of our own writing."""

from __future__ import annotations

import base64
import hashlib
import quopri
from datetime import UTC, datetime

import pytest

from mirror.errors import MailInError, MalformedMailError, MessageTooLargeError
from mirror.mailin import message as message_module
from mirror.mailin.auth import aligned, authenticated, parse_one
from mirror.mailin.bounces import bounce_of, verp_addresses
from mirror.mailin.commands import confirm_tag, read_request, strip_reply_prefixes
from mirror.mailin.loops import AUTO_HEADER, refusal
from mirror.mailin.message import parse_inbound
from mirror.mailin.model import Command, Inbound
from mirror.mailin.replies import LOOP_HEADER
from mirror.mailin.tokens import (
    confirmation,
    confirmation_token,
    verp_address,
    verp_subscriber,
    verp_token_in,
)

MAX = 1_000_000
TRUSTED = ("mx.example.org",)
OWN = ("mirror@example.org", "bounces@example.org")

UNSUB = "42.AbCdEfGhIjKlMnOpQrStUv"  # an unsubscribe token's shape


def raw(text: str, *, charset: str = "utf-8") -> bytes:
    """A message from a readable text: headers, blank line, body; CRLF line ends."""
    return text.lstrip("\n").replace("\n", "\r\n").encode(charset)


def parse(text: str, *, charset: str = "utf-8") -> Inbound:
    return parse_inbound(raw(text, charset=charset), max_bytes=MAX)


def simple(subject: str = "", body: str = "", *, headers: str = "") -> Inbound:
    head = "From: Reader <Reader@Mail.Example.net>\nTo: mirror@example.org\n"
    return parse(f"{head}{headers}Subject: {subject}\n\n{body}")


# --- parsing ---------------------------------------------------------------------------


def test_plain_message_fields() -> None:
    text = """
Return-Path: <Reader@Mail.Example.NET>
Delivered-To: Mirror@Example.org
X-Original-To: mirror@example.org
From: "Reader, A." <Reader@Mail.Example.NET>
To: Mirror <mirror@example.org>, other@example.com
Cc: third@example.com
Subject:  mirrors
  please
Message-ID: <abc.123@mail.example.net>
In-Reply-To: <x1@example.org>
References: <x0@example.org> <x1@example.org>

mirrors
"""
    inbound = parse(text)
    assert inbound.sender == "reader@mail.example.net"
    assert inbound.sender_domain == "mail.example.net"
    assert inbound.envelope_sender == "reader@mail.example.net"
    assert inbound.recipients == (
        "mirror@example.org",
        "other@example.com",
        "third@example.com",
    )
    assert inbound.subject == "mirrors please"
    assert inbound.first_line == "mirrors"
    assert inbound.message_id == "<abc.123@mail.example.net>"
    assert inbound.references == ("<x1@example.org>", "<x0@example.org>")
    assert inbound.size == len(raw(text))
    assert inbound.sha256 == hashlib.sha256(raw(text)).hexdigest()
    assert inbound.headers["x-original-to"] == ("mirror@example.org",)


def test_encoded_word_subjects_in_utf8_and_koi8r() -> None:
    b64 = base64.b64encode("Зеркала, пожалуйста".encode()).decode()
    assert simple(f"=?UTF-8?B?{b64}?=").subject == "Зеркала, пожалуйста"
    qp = quopri.encodestring("Новости".encode("koi8-r"), header=True).decode()
    assert simple(f"Re: =?koi8-r?Q?{qp}?=").subject == "Re: Новости"
    assert simple("=?x-no-such-charset?B?aGVsbG8=?= world").subject == "hello world"


def test_raw_8bit_headers_utf8_and_windows_1251() -> None:
    utf8 = parse("From: Иван <ivan@example.ru>\nSubject: Зеркала\n\nтекст\n")
    assert utf8.subject == "Зеркала"
    assert utf8.sender == "ivan@example.ru"
    cp1251 = parse(
        "From: Иван <ivan@example.ru>\nSubject: Новости\n"
        "Content-Type: text/plain; charset=windows-1251\n\nпривет\n",
        charset="windows-1251",
    )
    assert cp1251.subject == "Новости"
    assert cp1251.body_text.strip() == "привет"


@pytest.mark.parametrize(
    ("charset", "encoding"),
    [("koi8-r", "quoted-printable"), ("windows-1251", "base64"), ("utf-8", "base64")],
)
def test_bodies_in_any_charset_and_transfer_encoding(charset: str, encoding: str) -> None:
    text = "отписаться\n\nСпасибо за рассылку.\n"
    data = text.encode(charset)
    body = (
        base64.encodebytes(data).decode()
        if encoding == "base64"
        else quopri.encodestring(data).decode()
    )
    inbound = parse(
        "From: a@example.ru\nSubject: x\nMIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset={charset}\n"
        f"Content-Transfer-Encoding: {encoding}\n\n{body}"
    )
    assert inbound.first_line == "отписаться"
    assert "Спасибо за рассылку." in inbound.body_text


def test_unknown_or_missing_charset_falls_back() -> None:
    unknown = parse(
        "From: a@example.ru\nSubject: x\nContent-Type: text/plain; charset=x-martian\n\nзеркала\n"
    )
    assert unknown.first_line == "зеркала"
    missing = parse("From: a@example.ru\nSubject: x\n\nновости\n", charset="windows-1251")
    assert missing.first_line == "новости"


def test_html_only_mail_gives_text_without_quotes_or_scripts() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<div>Subscribe <b>ru</b></div><img src='http://tracker.example.com/p.gif'>"
        "<script>alert(1)</script>"
        "<blockquote><p>Digest of today</p><p>confirm line</p></blockquote>"
        "<p>Thanks</p></body></html>"
    )
    inbound = parse(
        f"From: a@example.net\nSubject: hi\nContent-Type: text/html; charset=utf-8\n\n{html}\n"
    )
    assert inbound.first_line == "Subscribe ru"
    assert "alert" not in inbound.body_text
    assert "color" not in inbound.body_text
    assert "> Digest of today" in inbound.body_text
    assert inbound.body_text.splitlines()[-1] == "Thanks"


def test_alternative_prefers_plain_and_attachments_are_ignored() -> None:
    inbound = parse(
        """
From: a@example.net
Subject: hi
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment; filename="notes.txt"

unsubscribe
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

latest
--inner
Content-Type: text/html; charset=utf-8

<p>help</p>
--inner--
--outer
Content-Type: application/pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer
Content-Type: message/rfc822

From: someone@example.com
Subject: forwarded

mirrors
--outer--
"""
    )
    assert inbound.first_line == "latest"
    assert "unsubscribe" not in inbound.body_text
    assert "mirrors" not in inbound.body_text


def test_quoted_reply_first_line_skips_quotes_and_attributions() -> None:
    english = simple(
        "Re: digest",
        "On Mon, 1 Jan 2024 at 10:00, The Example Times <\n"
        "digest@example.org> wrote:\n> Today's news\n>\n\nunsubscribe\n",
    )
    assert english.first_line == "unsubscribe"
    russian = simple(
        "Re: дайджест",
        "\n\nВт, 2 янв. 2024 г. в 10:00, Дайджест <digest@example.org>:\n> новости\n\nзеркала\n",
    )
    assert russian.first_line == "зеркала"
    old_style = simple("Re: x", "Иван Петров писал(а):\n> текст\nпомощь\n")
    assert old_style.first_line == "помощь"
    assert simple("x", "\n-- \nReader's signature\n").first_line == ""
    forwarded = simple("Fwd: x", "---------- Forwarded message ---------\nFrom: x\n\nmirrors\n")
    assert forwarded.first_line == ""


def test_several_from_addresses_leave_no_sender() -> None:
    inbound = parse("From: a@example.net, b@example.com\nSubject: x\n\nmirrors\n")
    assert inbound.sender == ""
    assert inbound.sender_domain == ""
    assert parse("From: not an address\nSubject: x\n\nhi\n").sender == ""


def test_null_return_path() -> None:
    inbound = parse("Return-Path: <>\nFrom: MAILER-DAEMON@example.net\nSubject: x\n\nhi\n")
    assert inbound.envelope_sender == ""
    assert inbound.sender == "mailer-daemon@example.net"


def test_body_text_is_bounded() -> None:
    body = "mirrors\n" + "a" * (message_module.MAX_BODY_CHARS * 2)
    inbound = simple("x", body)
    assert len(inbound.body_text) == message_module.MAX_BODY_CHARS
    assert inbound.first_line == "mirrors"


def test_long_header_is_cut() -> None:
    inbound = simple("x" * 20_000, "hi")
    assert len(inbound.subject) <= 998
    assert len(inbound.headers["subject"][0]) <= message_module.MAX_HEADER_CHARS


def test_huge_message_is_refused_unread() -> None:
    data = raw("From: a@example.net\nSubject: x\n\n" + "a" * 2000)
    with pytest.raises(MessageTooLargeError) as caught:
        parse_inbound(data, max_bytes=1000)
    assert caught.value.reason == "too_large"


def test_deep_mime_nesting_is_malformed() -> None:
    body = "hi"
    for level in range(3000):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\n\n'
            f"--b{level}\n{body}\n--b{level}--\n"
        )
    with pytest.raises(MalformedMailError) as caught:
        parse(f"From: a@example.net\nMIME-Version: 1.0\n{body}")
    assert caught.value.reason == "malformed"


def test_moderate_nesting_past_the_depth_limit_is_malformed() -> None:
    body = "hi"
    for level in range(message_module.MAX_MIME_DEPTH + 3):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{level}"\n\n'
            f"--b{level}\n{body}\n--b{level}--\n"
        )
    with pytest.raises(MalformedMailError, match="nesting"):
        parse(f"From: a@example.net\nMIME-Version: 1.0\n{body}")


def test_too_many_parts_is_malformed() -> None:
    parts = "".join("--B\nContent-Type: text/plain\n\nx\n" for _ in range(1000))
    with pytest.raises(MalformedMailError, match="parts"):
        parse(f"From: a@example.net\nContent-Type: multipart/mixed; boundary=B\n\n{parts}--B--\n")
    few = "".join("--B\n\nx\n" for _ in range(message_module.MAX_MIME_PARTS + 5))
    with pytest.raises(MalformedMailError, match="parts"):
        parse(f"From: a@example.net\nContent-Type: multipart/mixed; boundary=B\n\n{few}--B--\n")


def test_too_many_headers_is_malformed() -> None:
    headers = "".join(f"X-Filler-{i}: {i}\n" for i in range(message_module.MAX_HEADERS + 1))
    with pytest.raises(MalformedMailError, match="headers"):
        parse(f"From: a@example.net\n{headers}\nhi\n")


@pytest.mark.parametrize(
    "data",
    [b"", b"\r\n\r\njust a body", b"\x00\x01\x02\xff" * 100],
    ids=["empty", "no-headers", "binary"],
)
def test_not_a_message_is_malformed(data: bytes) -> None:
    with pytest.raises(MailInError):
        parse_inbound(data, max_bytes=MAX)


def test_broken_mime_is_parsed_as_far_as_it_goes() -> None:
    unterminated = parse(
        "From: a@example.net\nSubject: x\nContent-Type: multipart/mixed; boundary=B\n\n"
        "--B\nContent-Type: text/plain\n\nlatest\n"
    )
    assert unterminated.first_line == "latest"
    no_boundary = parse(
        "From: a@example.net\nSubject: x\nContent-Type: multipart/mixed\n\nmirrors\n"
    )
    assert no_boundary.sender == "a@example.net"
    bad_base64 = parse(
        "From: a@example.net\nSubject: x\nContent-Type: text/plain\n"
        "Content-Transfer-Encoding: base64\n\nbWlycm9ycw=!!*\n"
    )
    assert bad_base64.sender == "a@example.net"
    bad_type = parse("From: a@example.net\nSubject: x\nContent-Type: ;;;/\n\nhelp\n")
    assert bad_type.first_line == "help"


# --- commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "body", "command", "language", "argument"),
    [
        ("mirrors", "", Command.MIRRORS, "en", ""),
        ("MIRRORS!", "", Command.MIRRORS, "en", ""),
        ("[Зеркала]", "", Command.MIRRORS, "ru", ""),
        ("", "latest\n", Command.LATEST, "en", ""),
        ("Новости", "", Command.LATEST, "ru", ""),
        ("subscribe ru", "", Command.SUBSCRIBE, "en", "ru"),
        ("Subscribe", "", Command.SUBSCRIBE, "en", ""),
        ("", "Подписаться en", Command.SUBSCRIBE, "ru", "en"),
        ("Unsubscribe", "", Command.UNSUBSCRIBE, "en", ""),
        ("", "ОТПИСАТЬСЯ.", Command.UNSUBSCRIBE, "ru", ""),
        ("help?", "", Command.HELP, "en", ""),
        ("помощь", "", Command.HELP, "ru", ""),
        ("Re: Fwd: RE: Fw: AW: mirrors", "", Command.MIRRORS, "en", ""),
        ("Ответ: Пересл: зеркала", "", Command.MIRRORS, "ru", ""),
        ("Re[2]: help", "", Command.HELP, "en", ""),
        ("confirm AbCdEf0123456789", "", Command.CONFIRM, "en", "AbCdEf0123456789"),
        # the digest's mailto List-Unsubscribe: "unsubscribe <id>.<mac>" in the subject
        (f"unsubscribe {UNSUB}", "", Command.UNSUBSCRIBE, "en", UNSUB),
        ("", f"Отписаться: {UNSUB}", Command.UNSUBSCRIBE, "ru", UNSUB),
        (f"unsubscribe {UNSUB}x", "", Command.UNSUBSCRIBE, "en", ""),  # not that shape
    ],
)
def test_commands(subject: str, body: str, command: Command, language: str, argument: str) -> None:
    request = read_request(simple(subject, body))
    assert (request.command, request.language, request.argument) == (command, language, argument)
    assert request.understood


def test_anything_else_is_mirrors_not_understood() -> None:
    for subject, body, language in [
        ("", "", "en"),
        ("Hello", "How do I read the news?", "en"),
        ("Привет", "Как читать новости?", "ru"),
        ("I do not want to unsubscribe", "", "en"),
    ]:
        request = read_request(simple(subject, body))
        assert request.command is Command.MIRRORS
        assert not request.understood
        assert request.language == language


def test_a_replys_body_comes_before_its_subject() -> None:
    request = read_request(simple("Re: News of the day", "unsubscribe\n\n> news\n"))
    assert request.command is Command.UNSUBSCRIBE
    thanks = read_request(simple("Re: mirrors", "thanks!\n"))
    assert thanks.command is Command.MIRRORS
    assert thanks.understood


def test_unsubscribe_wins_over_another_command() -> None:
    request = read_request(simple("latest", "unsubscribe\n"))
    assert request.command is Command.UNSUBSCRIBE


def test_reply_to_confirmation_confirms_with_the_subject_tag() -> None:
    token = "v1.AbC-dEf_0123456789"
    inbound = simple(f"Re: Подтвердите подписку {confirm_tag(token)}", "да\n")
    request = read_request(inbound)
    assert request.command is Command.CONFIRM
    assert request.argument == token
    assert request.language == "ru"


def test_confirmation_token_quoted_in_the_body() -> None:
    token = "Zx9-abcdef.ghij"
    body = f"yes please\n\n> To confirm, reply to this message.\n> confirm {token}\n"
    request = read_request(simple("Re: your subscription", body))
    assert (request.command, request.argument) == (Command.CONFIRM, token)
    # "confirm subscription" is words, not a token
    plain = read_request(simple("Re: x", "ok\n> Please confirm subscription by replying\n"))
    assert plain.command is Command.MIRRORS
    assert not plain.understood


def test_confirm_without_a_token_is_not_understood() -> None:
    request = read_request(simple("confirm", ""))
    assert request.command is Command.MIRRORS
    assert not request.understood


def test_strip_reply_prefixes() -> None:
    assert strip_reply_prefixes("Re: RE:Fwd: x") == ("x", True)
    assert strip_reply_prefixes("[ext] Re: x") == ("x", True)
    assert strip_reply_prefixes("Regarding x") == ("Regarding x", False)


# --- authentication ------------------------------------------------------------------------


def with_auth(*results: str, sender: str = "reader@mail.example.net") -> Inbound:
    headers = "".join(f"Authentication-Results: {value}\n" for value in results)
    return parse(f"From: {sender}\nTo: mirror@example.org\n{headers}Subject: x\n\nmirrors\n")


def verdict(inbound: Inbound, require: str = "dmarc") -> tuple[bool, str]:
    result = authenticated(inbound, trusted_authserv_ids=TRUSTED, require=require)
    return result.passed, result.reason


def test_dmarc_pass_from_a_trusted_server() -> None:
    inbound = with_auth(
        "MX.Example.ORG; dkim=pass (2048-bit key) header.d=mail.example.net header.s=s1; "
        "spf=pass (sender ok) smtp.mailfrom=reader@mail.example.net; "
        "dmarc=pass (p=reject) header.from=mail.example.net"
    )
    assert verdict(inbound) == (True, "dmarc")


def test_forged_results_from_an_untrusted_id_are_ignored() -> None:
    inbound = with_auth(
        "mx.attacker.example; dmarc=pass header.from=mail.example.net; "
        "dkim=pass header.d=mail.example.net"
    )
    assert verdict(inbound) == (False, "no_trusted_results")
    assert inbound.auth_results[0].authserv_id == "mx.attacker.example"


def test_dkim_aligned_relaxed_and_unaligned() -> None:
    assert verdict(with_auth("mx.example.org; dkim=pass header.d=example.net")) == (True, "dkim")
    assert verdict(with_auth("mx.example.org; dkim=pass header.i=@mail.example.net")) == (
        True,
        "dkim",
    )
    unaligned = with_auth("mx.example.org; dkim=pass header.d=bulkmailer.example.com")
    assert verdict(unaligned) == (False, "not_aligned")
    failed = with_auth("mx.example.org; dkim=fail header.d=mail.example.net")
    assert verdict(failed) == (False, "not_aligned")


def test_spf_aligned_and_unaligned() -> None:
    ok = with_auth("mx.example.org; spf=pass smtp.mailfrom=bounce@mail.example.net")
    assert verdict(ok) == (True, "spf")
    other = with_auth("mx.example.org; spf=pass smtp.mailfrom=relay.example.com")
    assert verdict(other) == (False, "not_aligned")


def test_trusted_dmarc_fail_vetoes() -> None:
    inbound = with_auth(
        "mx.example.org; dmarc=fail header.from=mail.example.net; "
        "spf=pass smtp.mailfrom=mail.example.net"
    )
    assert verdict(inbound) == (False, "dmarc_fail")


def test_dmarc_pass_for_another_domain_does_not_count() -> None:
    inbound = with_auth("mx.example.org; dmarc=pass header.from=example.com")
    assert verdict(inbound) == (False, "not_aligned")


def test_require_none_and_no_sender() -> None:
    assert verdict(with_auth(), require="none") == (True, "not_required")
    assert verdict(with_auth("mx.example.org; dmarc=pass header.from=x.org", sender="nobody")) == (
        False,
        "no_sender",
    )


def test_unparsable_results_give_nothing() -> None:
    assert parse_one("mx.example.org; ;;; =") == ()
    assert parse_one("mx.example.org; dkim=pass " + "(" * 5000) == ()
    assert verdict(with_auth("mx.example.org; garbage ;;")) == (False, "no_trusted_results")


def test_alignment() -> None:
    assert aligned("example.net", "mail.example.net")
    assert aligned("mail.example.net", "example.net")
    assert not aligned("badexample.net", "example.net")
    assert not aligned("", "example.net")


# --- loops ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ("Auto-Submitted: auto-replied\n", "reader@example.net", "auto_submitted"),
        ("Auto-Submitted: auto-generated; owner-email=x\n", "reader@example.net", "auto_submitted"),
        ("X-Autoreply: yes\n", "reader@example.net", "auto_submitted"),
        ("Precedence: bulk\n", "reader@example.net", "precedence"),
        ("Precedence: junk\n", "reader@example.net", "precedence"),
        ("List-Id: <news.lists.example.net>\n", "reader@example.net", "list_mail"),
        ("List-Unsubscribe: <mailto:u@example.net>\n", "reader@example.net", "list_mail"),
        ("Return-Path: <>\n", "reader@example.net", "null_sender"),
        ("", "MAILER-DAEMON@example.net", "robot_sender"),
        ("", "postmaster@example.net", "robot_sender"),
        ("", "noreply@example.net", "robot_sender"),
        ("", "no-reply-123@example.net", "robot_sender"),
        ("", "do-not-reply@example.net", "robot_sender"),
        ("", "bounces+x@example.net", "robot_sender"),
        ("Return-Path: <news-bounces@lists.example.net>\n", "reader@example.net", "robot_sender"),
        ("", "Mirror@Example.org", "own_address"),
        (f"{AUTO_HEADER}: 3f2a9c\n", "reader@example.net", "own_message"),
    ],
)
def test_refusals(headers: str, sender: str, reason: str) -> None:
    inbound = parse(f"From: {sender}\n{headers}Subject: mirrors\n\nmirrors\n")
    assert refusal(inbound, own_addresses=OWN) == reason


def test_ordinary_mail_is_answered() -> None:
    inbound = parse(
        "Return-Path: <reader@example.net>\nFrom: reader@example.net\n"
        "Auto-Submitted: no\nPrecedence: normal\nSubject: mirrors\n\nmirrors\n"
    )
    assert refusal(inbound, own_addresses=OWN) is None
    # no Return-Path at all (a pipe may not add one) is not the null sender
    assert refusal(simple("mirrors"), own_addresses=OWN) is None


# --- bounces ---------------------------------------------------------------------------------

VERP = {"bounces+Tok3n.ABC@example.org": 7, "bounces+tok-other@example.org": 8}


def subscriber_of(address: str) -> int | None:
    return VERP.get(address)


def dsn(action: str, status: str, *, to: str = "bounces+Tok3n.ABC@example.org") -> Inbound:
    return parse(
        f"""
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: {to}
Delivered-To: {to}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="R"

--R
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

--R
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; subscriber@example.net
Original-Recipient: rfc822;subscriber@example.net
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <subscriber@example.net>: Recipient address rejected

--R
Content-Type: text/rfc822-headers

From: digest@example.org
To: subscriber@example.net
Subject: The Example Times

--R--
"""
    )


def test_dsn_permanent() -> None:
    inbound = dsn("failed", "5.1.1")
    assert inbound.is_report
    assert inbound.delivery_status[0].action == "failed"
    bounce = bounce_of(inbound, subscriber_of=subscriber_of)
    assert bounce is not None
    assert (bounce.subscriber_id, bounce.permanent, bounce.status) == (7, True, "5.1.1")
    assert "@" not in bounce.reason
    assert "Recipient address rejected" in bounce.reason


def test_dsn_transient() -> None:
    delayed = bounce_of(dsn("delayed", "4.4.1"), subscriber_of=subscriber_of)
    assert delayed is not None
    assert (delayed.permanent, delayed.status) == (False, "4.4.1")
    failed_4xx = bounce_of(dsn("failed", "4.2.2"), subscriber_of=subscriber_of)
    assert failed_4xx is not None
    assert not failed_4xx.permanent


def test_dsn_success_is_no_bounce() -> None:
    assert bounce_of(dsn("delivered", "2.0.0"), subscriber_of=subscriber_of) is None


def test_bounce_without_a_valid_token_is_none() -> None:
    assert (
        bounce_of(dsn("failed", "5.1.1", to="bounces@example.org"), subscriber_of=subscriber_of)
        is None
    )
    forged = dsn("failed", "5.1.1", to="bounces+forged-token@example.org")
    assert bounce_of(forged, subscriber_of=subscriber_of) is None
    assert verp_addresses(forged) == ["bounces+forged-token@example.org"]


def test_plain_exim_bounce() -> None:
    inbound = parse(
        """
Return-Path: <>
From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: bounces+tok-other@example.org
X-Failed-Recipients: subscriber@example.net
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  subscriber@example.net
    SMTP error from remote mail server after RCPT TO:<subscriber@example.net>:
    550 5.1.1 User unknown
"""
    )
    bounce = bounce_of(inbound, subscriber_of=subscriber_of)
    assert bounce is not None
    assert (bounce.subscriber_id, bounce.permanent, bounce.status) == (8, True, "5.1.1")
    assert "@" not in bounce.reason


def test_plain_russian_bounces_permanent_and_transient() -> None:
    head = "From: postmaster@mail.example.ru\nTo: bounces+tok-other@example.org\n"
    permanent = parse(
        f"{head}Subject: Сообщение не доставлено\n\n"
        "Ваше сообщение не доставлено: адрес получателя не существует.\n"
    )
    bounce = bounce_of(permanent, subscriber_of=subscriber_of)
    assert bounce is not None
    assert bounce.permanent
    transient = parse(
        f"{head}Subject: Доставка задерживается\n\n"
        "Доставка сообщения задерживается: ящик получателя переполнен. Повторим позже.\n"
    )
    late = bounce_of(transient, subscriber_of=subscriber_of)
    assert late is not None
    assert not late.permanent


def test_vacation_reply_to_the_return_path_is_no_bounce() -> None:
    inbound = parse(
        "From: subscriber@example.net\nTo: bounces+tok-other@example.org\n"
        "Auto-Submitted: auto-replied\nSubject: Out of office\n\n"
        "I am away until Monday.\n"
    )
    assert bounce_of(inbound, subscriber_of=subscriber_of) is None


def test_reader_mail_is_no_bounce() -> None:
    assert bounce_of(simple("mirrors", "mirrors"), subscriber_of=subscriber_of) is None


# --- with the real tokens and replies of mailin ------------------------------------------


SECRET = b"k" * 32


def test_a_real_long_confirmation_token_is_read_whole() -> None:
    address = "a.very.long.local.part." * 8 + "reader@mail.example.net"
    token = confirmation_token(SECRET, address, "ru", now=datetime.now(UTC))
    assert len(token) > 200
    request = read_request(simple(f"Re: Подтвердите подписку {confirm_tag(token)}", ""))
    assert (request.command, request.argument) == (Command.CONFIRM, token)
    carried = confirmation(SECRET, request.argument, now=datetime.now(UTC))
    assert carried is not None
    assert carried.address == address


def test_a_real_verp_address_finds_its_subscriber() -> None:
    return_path = "bounces@example.org"

    def subscriber(address: str) -> int | None:
        token = verp_token_in(return_path, address)
        return verp_subscriber(SECRET, token) if token else None

    bounce = bounce_of(
        dsn("failed", "5.2.1", to=verp_address(return_path, SECRET, 42)), subscriber_of=subscriber
    )
    assert bounce is not None
    assert (bounce.subscriber_id, bounce.permanent) == (42, True)


def test_the_loop_header_is_the_one_replies_set() -> None:
    assert AUTO_HEADER == LOOP_HEADER
