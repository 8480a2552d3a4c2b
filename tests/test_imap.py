"""mirror.mail.imap against a real Dovecot on 127.0.0.1 (tests/dovecot.py), and its pure
parts (URL rules, UID sets, batches, response parsing) alone."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl

import aioimaplib
import pytest

from mirror.errors import (
    ConfigError,
    ImapAuthError,
    ImapConnectionError,
    ImapProtocolError,
    ImapTlsError,
    MailboxError,
    MailInError,
)
from mirror.mail import imap
from mirror.mail.imap import ImapMailbox, ImapSettings, Waiting

from dovecot import Dovecot
from smtp_servers import free_port

REQUEST_EN = (
    b"From: Reader One <reader.one@example.net>\r\n"
    b"To: news@example.org\r\n"
    b"Subject: mirrors\r\n"
    b"Message-ID: <one@example.net>\r\n"
    b"\r\n"
    b"mirrors please\r\n"
)
REQUEST_RU = (
    "From: Читатель <reader.two@example.ru>\r\n"
    "To: news@example.org\r\n"
    "Subject: =?utf-8?b?0LfQtdGA0LrQsNC70LA=?=\r\n"
    "Message-ID: <two@example.ru>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Пришлите, пожалуйста, зеркала.\r\n"
).encode()


def request(number: int) -> bytes:
    return (
        f"From: reader{number}@example.net\r\nSubject: latest\r\n"
        f"Message-ID: <{number}@example.net>\r\n\r\nlatest {number}\r\n"
    ).encode()


def settings_for(server: Dovecot, **overrides: object) -> ImapSettings:
    base = ImapSettings(
        url=server.url(), username=server.username, password=server.password, timeout_s=10
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


async def fetch_all(mailbox: ImapMailbox, uids: list[int]) -> dict[int, bytes]:
    return {uid: raw async for uid, raw in mailbox.fetch(uids)}


# --- against Dovecot ---------------------------------------------------------------------


async def test_waiting_lists_uids_and_sizes_and_fetch_returns_the_exact_bytes(
    dovecot: Dovecot,
) -> None:
    dovecot.append("INBOX", REQUEST_EN)
    dovecot.append("INBOX", REQUEST_RU)
    async with ImapMailbox(settings_for(dovecot)) as mailbox:
        waiting = await mailbox.waiting()
        assert waiting == [
            Waiting(1, len(REQUEST_EN), too_large=False),
            Waiting(2, len(REQUEST_RU), too_large=False),
        ]
        fetched = await fetch_all(mailbox, [1, 2])
    assert fetched == {1: REQUEST_EN, 2: REQUEST_RU}
    assert dovecot.uids("INBOX") == [1, 2]  # fetching neither moves nor deletes


async def test_fetch_goes_in_batches_of_uid_ranges_not_one_round_trip_each(
    dovecot: Dovecot,
) -> None:
    for number in range(25):
        dovecot.append("INBOX", request(number))
    mark = dovecot.mark()
    async with ImapMailbox(settings_for(dovecot, batch=10)) as mailbox:
        uids = [w.uid for w in await mailbox.waiting()]
        fetched = await fetch_all(mailbox, uids)
    assert sorted(fetched) == list(range(1, 26))
    assert fetched[7] == request(6)
    commands = dovecot.commands_since(mark)
    body_fetches = [c for c in commands if c.startswith("UID FETCH") and "BODY.PEEK" in c]
    assert [c.split()[2] for c in body_fetches] == ["1:10", "11:20", "21:25"]
    assert len([c for c in commands if "RFC822.SIZE" in c]) == 1  # sizes: one FETCH for all


async def test_batches_are_also_cut_by_bytes(dovecot: Dovecot) -> None:
    for number in range(4):
        dovecot.append("INBOX", request(number) + b"x" * 1000 + b"\r\n")
    mark = dovecot.mark()
    async with ImapMailbox(settings_for(dovecot, batch_bytes=2500)) as mailbox:
        fetched = await fetch_all(mailbox, [w.uid for w in await mailbox.waiting()])
    assert len(fetched) == 4
    body_fetches = [c for c in dovecot.commands_since(mark) if "BODY.PEEK" in c]
    assert [c.split()[2] for c in body_fetches] == ["1:2", "3:4"]


async def test_a_second_once_with_nothing_new_makes_three_round_trips(dovecot: Dovecot) -> None:
    dovecot.append("INBOX", REQUEST_EN)
    async with ImapMailbox(settings_for(dovecot)) as mailbox:  # the first run handles it
        waiting = await mailbox.waiting()
        assert [uid async for uid, _ in mailbox.fetch([w.uid for w in waiting])] == [1]
        await mailbox.finish([1])
    mark = dovecot.mark()
    async with ImapMailbox(settings_for(dovecot)) as mailbox:
        assert await mailbox.waiting() == []
    assert mailbox.round_trips == 3
    assert dovecot.commands_since(mark) == ['SELECT "INBOX"', "UID SEARCH UNDELETED", "LOGOUT"]


async def test_finish_moves_to_the_done_mailbox_and_creates_it(dovecot: Dovecot) -> None:
    for message in (REQUEST_EN, REQUEST_RU, request(3)):
        dovecot.append("INBOX", message)
    async with ImapMailbox(settings_for(dovecot, done_mailbox="Handled")) as mailbox:
        await mailbox.finish([1, 3])
        assert [w.uid for w in await mailbox.waiting()] == [2]
        await mailbox.finish([2])
        assert await mailbox.waiting() == []
    assert dovecot.uids("INBOX") == []
    assert dovecot.uids("Handled") == [1, 2, 3]


async def test_finish_copies_and_expunges_when_the_server_has_no_move(dovecot: Dovecot) -> None:
    dovecot.append("INBOX", REQUEST_EN)
    dovecot.append("INBOX", REQUEST_RU)
    mark = dovecot.mark()
    async with ImapMailbox(settings_for(dovecot)) as mailbox:
        mailbox._client.protocol.capabilities.discard("MOVE")  # as an older server would
        await mailbox.finish([2])
    assert dovecot.uids("INBOX") == [1]
    assert dovecot.uids("Handled") == [1]  # the Handled mailbox numbers from 1
    commands = dovecot.commands_since(mark)
    assert not any(c.startswith("UID MOVE") for c in commands)
    assert 'UID COPY 2 "Handled"' in commands
    assert "UID EXPUNGE 2" in commands


async def test_finish_deletes_when_keep_is_false(dovecot: Dovecot) -> None:
    dovecot.append("INBOX", REQUEST_EN)
    dovecot.append("INBOX", REQUEST_RU)
    async with ImapMailbox(settings_for(dovecot, keep=False)) as mailbox:
        await mailbox.finish([1])
    assert dovecot.uids("INBOX") == [2]
    assert dovecot.uids("Handled") == []


async def test_a_message_over_the_limit_is_listed_too_large_and_never_downloaded(
    dovecot: Dovecot,
) -> None:
    big = REQUEST_EN + b"y" * 3000 + b"\r\n"
    dovecot.append("INBOX", REQUEST_RU)
    dovecot.append("INBOX", big)
    mark = dovecot.mark()
    async with ImapMailbox(settings_for(dovecot, max_message_bytes=2000)) as mailbox:
        waiting = await mailbox.waiting()
        assert waiting == [
            Waiting(1, len(REQUEST_RU), too_large=False),
            Waiting(2, len(big), too_large=True),
        ]
        fetched = await fetch_all(mailbox, [1, 2])
    assert fetched == {1: REQUEST_RU}
    body_fetches = [c for c in dovecot.commands_since(mark) if "BODY.PEEK" in c]
    assert body_fetches == ["UID FETCH 1 (UID BODY.PEEK[]<0.2001>)"]


async def test_fetch_without_sizes_still_reads_no_more_than_the_limit(dovecot: Dovecot) -> None:
    big = REQUEST_EN + b"z" * 5000 + b"\r\n"
    dovecot.append("INBOX", big)
    async with ImapMailbox(settings_for(dovecot, max_message_bytes=2000)) as mailbox:
        assert await fetch_all(mailbox, [1]) == {}  # the server sent 2001 bytes: too many


async def test_idle_wakes_when_another_connection_appends(dovecot: Dovecot) -> None:
    async with ImapMailbox(settings_for(dovecot)) as mailbox:
        assert await mailbox.waiting() == []
        loop = asyncio.get_running_loop()
        started = loop.time()
        idle = asyncio.create_task(mailbox.idle(timeout_s=20))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(dovecot.append, "INBOX", REQUEST_RU)
        assert await idle is True
        assert loop.time() - started < 10
        assert [w.uid for w in await mailbox.waiting()] == [1]  # same session, no re-SELECT


async def test_idle_returns_false_at_its_timeout_and_the_session_goes_on(
    dovecot: Dovecot,
) -> None:
    async with ImapMailbox(settings_for(dovecot)) as mailbox:
        assert await mailbox.idle(timeout_s=0.5) is False
        dovecot.append("INBOX", REQUEST_EN)
        assert [w.uid for w in await mailbox.waiting()] == [1]


async def test_a_wrong_password_is_a_named_error_that_does_not_show_it(dovecot: Dovecot) -> None:
    wrong = "not-the-password-41"
    with pytest.raises(ImapAuthError) as failed:
        async with ImapMailbox(settings_for(dovecot, password=wrong)):
            pass
    assert wrong not in str(failed.value)
    assert not failed.value.retryable
    assert wrong not in repr(settings_for(dovecot, password=wrong))


async def test_a_closed_port_is_a_retryable_connection_error() -> None:
    settings = ImapSettings(
        url=f"imap+insecure://127.0.0.1:{free_port()}", username="u", password="p", timeout_s=5
    )
    with pytest.raises(ImapConnectionError) as failed:
        await ImapMailbox(settings).open()
    assert failed.value.retryable


async def test_a_missing_mailbox_is_a_protocol_error(dovecot: Dovecot) -> None:
    with pytest.raises(ImapProtocolError, match="SELECT refused"):
        async with ImapMailbox(settings_for(dovecot, mailbox="Nowhere")):
            pass


async def test_the_mailbox_refuses_use_after_close(dovecot: Dovecot) -> None:
    mailbox = ImapMailbox(settings_for(dovecot))
    async with mailbox:
        pass
    with pytest.raises(RuntimeError):
        await mailbox.waiting()
    with pytest.raises(RuntimeError):
        await mailbox.open()


async def test_a_dropped_connection_is_named_at_once(dovecot: Dovecot) -> None:
    async with ImapMailbox(settings_for(dovecot, timeout_s=30)) as mailbox:
        mailbox._client.protocol.transport.close()  # as a server going away would
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ImapConnectionError):
            await mailbox.waiting()
        assert asyncio.get_running_loop().time() - started < 5


# --- TLS -------------------------------------------------------------------------------


async def test_imaps_with_a_trusted_certificate(dovecot_tls: Dovecot) -> None:
    assert dovecot_tls.certificate is not None
    dovecot_tls.append("INBOX", REQUEST_RU)
    settings = settings_for(dovecot_tls, url=dovecot_tls.url("imaps"))
    context = dovecot_tls.certificate.client_context()
    async with ImapMailbox(settings, tls_context=context) as mailbox:
        assert await fetch_all(mailbox, [1]) == {1: REQUEST_RU}


async def test_imap_upgrades_with_starttls(dovecot_tls: Dovecot) -> None:
    assert dovecot_tls.certificate is not None
    dovecot_tls.append("INBOX", REQUEST_EN)
    settings = settings_for(dovecot_tls, url=dovecot_tls.url("imap"))
    context = dovecot_tls.certificate.client_context()
    async with ImapMailbox(settings, tls_context=context) as mailbox:
        assert mailbox._client.protocol.transport.get_extra_info("ssl_object") is not None
        assert await fetch_all(mailbox, [1]) == {1: REQUEST_EN}
    assert "TLS" in dovecot_tls.log()  # Dovecot logs the login as over TLS


async def test_an_untrusted_certificate_is_a_tls_error(dovecot_tls: Dovecot) -> None:
    for scheme in ("imaps", "imap"):
        settings = settings_for(dovecot_tls, url=dovecot_tls.url(scheme))
        with pytest.raises(ImapTlsError, match="TLS failed"):
            await ImapMailbox(settings, tls_context=ssl.create_default_context()).open()


async def test_imap_without_starttls_offered_never_logs_in(dovecot: Dovecot) -> None:
    mark = dovecot.mark()
    settings = settings_for(dovecot, url=dovecot.url("imap"))
    with pytest.raises(ImapTlsError, match="STARTTLS"):
        await ImapMailbox(settings).open()
    await asyncio.sleep(0.3)
    assert "Login:" not in dovecot.log_since(mark)


# --- settings and pure parts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("imaps://mail.example.org", ("imaps", "mail.example.org", 993)),
        ("imap://mail.example.org", ("imap", "mail.example.org", 143)),
        ("imap+insecure://127.0.0.1:1143", ("imap+insecure", "127.0.0.1", 1143)),
        ("imap+insecure://localhost", ("imap+insecure", "localhost", 143)),
        ("IMAP+INSECURE://[::1]:143", ("imap+insecure", "::1", 143)),
    ],
)
def test_parse_imap_url(url: str, endpoint: tuple[str, str, int]) -> None:
    assert imap.parse_imap_url(url) == imap.ImapEndpoint(*endpoint)


@pytest.mark.parametrize(
    "url",
    [
        "imap+insecure://mail.example.org:143",  # clear text off the host: refused
        "imap+insecure://10.0.0.5",
        "http://mail.example.org",
        "imaps://user:secret@mail.example.org",
        "imaps://",
        "imaps://mail.example.org:99999",
    ],
)
def test_parse_imap_url_refuses(url: str) -> None:
    with pytest.raises(ConfigError) as failed:
        imap.parse_imap_url(url)
    assert failed.value.key == "imap_url"
    assert "secret" not in str(failed.value)


def test_settings_refuse_what_cannot_work() -> None:
    good = {"url": "imaps://mail.example.org", "username": "u", "password": "p"}
    ImapSettings(**good)  # type: ignore[arg-type]
    for bad in (
        {"url": "imap+insecure://mail.example.org"},
        {"mailbox": ""},
        {"mailbox": "Входящие"},
        {"done_mailbox": "INBOX"},
        {"done_mailbox": ""},
        {"batch": 0},
        {"max_message_bytes": 0},
        {"timeout_s": 0},
    ):
        with pytest.raises(ConfigError):
            ImapSettings(**{**good, **bad})  # type: ignore[arg-type]
    ImapSettings(**good, done_mailbox="", keep=False)  # type: ignore[arg-type]


def test_imap_errors_are_mailbox_errors() -> None:
    for error in (ImapConnectionError, ImapAuthError, ImapTlsError, ImapProtocolError):
        assert issubclass(error, MailboxError)
        assert not issubclass(error, MailInError)  # not one message: the whole mailbox


@pytest.mark.parametrize(
    ("uids", "text"),
    [([1], "1"), ([1, 2, 3, 7, 9, 10], "1:3,7,9:10"), ([4, 6, 8], "4,6,8"), ([5, 6], "5:6")],
)
def test_uid_set(uids: list[int], text: str) -> None:
    assert imap.uid_set(uids) == text


def test_batches_by_count_and_bytes() -> None:
    sizes = {1: 10, 2: 10, 3: 100, 4: 10, 5: 10}
    assert list(imap.batches([1, 2, 3, 4, 5], sizes, 2, 1000)) == [[1, 2], [3, 4], [5]]
    assert list(imap.batches([1, 2, 3, 4, 5], sizes, 10, 50)) == [[1, 2], [3], [4, 5]]
    assert list(imap.batches([], sizes, 10, 50)) == []


def test_fetched_bodies_skips_responses_without_a_body() -> None:
    lines = [
        b"1 FETCH (UID 4 BODY[]<0> {5}",
        bytearray(b"hello"),
        b")",
        b"2 FETCH (FLAGS (\\Seen))",  # another session changed a flag meanwhile
        b"3 FETCH (BODY[]<0> {3}",
        bytearray(b"abc"),
        b" UID 9)",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    assert list(imap.fetched_bodies(lines)) == [(4, b"hello"), (9, b"abc")]


def test_search_uids_ignores_the_status_line() -> None:
    assert imap.search_uids([b"3 5 8", b"Search completed (0.001 + 0.000 secs)."]) == [3, 5, 8]
    assert imap.search_uids([b"", b"Search completed (1 + 0 secs)."]) == []


def test_translate_imap_error_names_every_kind() -> None:
    cases = [
        (TimeoutError(), ImapConnectionError),
        (ConnectionResetError(104, "reset"), ImapConnectionError),
        (ssl.SSLCertVerificationError("bad cert"), ImapTlsError),
        (aioimaplib.Abort("illegal in state"), ImapProtocolError),
        (ValueError("CR in argument"), ImapProtocolError),
        (KeyError("x"), ImapProtocolError),
    ]
    for exc, named in cases:
        assert type(imap.translate_imap_error(exc)) is named, exc
    assert "<address>" in str(imap.translate_imap_error(aioimaplib.Error("a@b.example")))


def test_imap_mailbox_is_a_mailbox() -> None:
    mailbox: imap.Mailbox = ImapMailbox(
        ImapSettings(url="imaps://mail.example.org", username="u", password="p")
    )
    assert isinstance(mailbox, ImapMailbox)
