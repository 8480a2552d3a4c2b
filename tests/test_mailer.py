"""The sending layer against real aiosmtpd servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import hashlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import aiosmtplib
import aiosmtplib.errors
import pytest

from mirror.config import DigestConfig
from mirror.errors import DeliveryError, DigestError, SmtpConnectionError, TlsRequiredError
from mirror.mail import delivery as delivery_module
from mirror.mail.delivery import Delivery, deliver, transport_for
from mirror.mail.outbox import OutboxTransport, outbox_name
from mirror.mail.smtp import SmtpTransport, translate_smtp_error
from mirror.mail.wire import Outgoing, data_payload

from servers import closed_port
from smtp_servers import Certificate, Recorder, make_certificate, smtp_server

SENDER = "digest@example.org"
PASSWORD = "s3cret-Pa55word"


def message(n: int, *, to: str = "", body_bytes: int = 2_000) -> bytes:
    """A small RFC 5322 message with CRLF endings, and a line starting with a dot."""
    head = (
        f"From: Digest <{SENDER}>\r\nTo: {to or f'reader{n}@example.net'}\r\n"
        f"Subject: Digest {n}\r\nMessage-ID: <{n}@example.org>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    line = "Новости дня, line of text.\r\n"
    body = line * (body_bytes // len(line.encode())) + ".a line starting with a dot\r\n"
    return (head + body).encode()


def outgoing(n: int, address: str = "") -> Outgoing:
    address = address or f"reader{n}@example.net"
    return Outgoing(n, address, message(n, to=address), f"<{n}@example.org>")


def smtp(port: int, scheme: str = "smtp+insecure", **options: object) -> SmtpTransport:
    options.setdefault("timeout_s", 5)
    return SmtpTransport(f"{scheme}://127.0.0.1:{port}", sender=SENDER, **options)  # type: ignore[arg-type]


async def send_all(
    transport: SmtpTransport, items: list[Outgoing], **options: object
) -> list[Delivery]:
    settings: dict[str, object] = {
        "rate_per_s": 0, "per_domain_rate_per_s": 0, "concurrency": 4, "retries": 2,
        "backoff_s": 0.01,
    }  # fmt: skip
    settings.update(options)
    async with transport:
        return await deliver(items, transport, **settings)  # type: ignore[arg-type]


class Waits(list[float]):
    """A sleep that returns at once and records how long it was asked to wait."""

    async def sleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def cert(tmp_path: Path) -> Certificate:
    return make_certificate(tmp_path)


# --- the connection: schemes, TLS, AUTH ---------------------------------------------


async def test_plain_to_loopback_delivers_the_exact_bytes() -> None:
    with smtp_server() as server:
        async with smtp(server.port) as transport:
            await transport.send(outgoing(1))
    (got,) = server.handler.received
    assert got.content == message(1, to="reader1@example.net")
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ("reader1@example.net",)
    parsed = email.message_from_bytes(got.content)
    assert parsed["Subject"] == "Digest 1"


@pytest.mark.parametrize(
    "url",
    [
        "smtp+insecure://192.0.2.1:25",
        "smtp+insecure://mail.example.org",
        "smtp+insecure://10.0.0.1",
    ],
)
def test_plain_text_to_a_remote_host_is_refused_before_connecting(url: str) -> None:
    with pytest.raises(TlsRequiredError, match="loopback"):
        SmtpTransport(url, sender=SENDER)


@pytest.mark.parametrize("url", ["smtp+insecure://localhost:2525", "smtp+insecure://[::1]:25"])
def test_plain_text_to_loopback_names_is_allowed(url: str) -> None:
    assert "SmtpTransport" in repr(SmtpTransport(url, sender=SENDER))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1", "smtp://user:pw@127.0.0.1", "smtp://", "smtp://127.0.0.1:99999"]
)
def test_bad_smtp_urls_are_named_errors_without_their_credentials(url: str) -> None:
    with pytest.raises(DigestError) as caught:
        SmtpTransport(url, sender=SENDER)
    assert "pw" not in str(caught.value)


async def test_starttls_with_auth_delivers(cert: Certificate) -> None:
    with smtp_server(starttls=cert.server_context(), logins={"mirror": PASSWORD}) as server:
        transport = smtp(
            server.port, "smtp", username="mirror", password=PASSWORD,
            tls_context=cert.client_context(),
        )  # fmt: skip
        assert PASSWORD not in repr(transport)
        async with transport:
            await transport.send(outgoing(1))
    assert [r.rcpt_tos for r in server.handler.received] == [("reader1@example.net",)]


async def test_smtp_without_starttls_is_refused_and_nothing_is_sent() -> None:
    with smtp_server() as server:
        async with smtp(server.port, "smtp") as transport:
            with pytest.raises(TlsRequiredError, match="STARTTLS"):
                await transport.send(outgoing(1))
        deliveries = await send_all(smtp(server.port, "smtp"), [outgoing(n) for n in range(5)])
    assert server.handler.attempts == 0 and not server.handler.received
    assert all(not d.ok and not d.permanent and "STARTTLS" in d.reason for d in deliveries)


async def test_implicit_tls_delivers(cert: Certificate) -> None:
    with smtp_server(implicit_tls=cert.server_context()) as server:
        async with smtp(server.port, "smtps", tls_context=cert.client_context()) as transport:
            await transport.send(outgoing(1))
    assert len(server.handler.received) == 1


async def test_an_untrusted_certificate_is_refused(cert: Certificate) -> None:
    with smtp_server(starttls=cert.server_context()) as server:
        async with smtp(server.port, "smtp") as transport:  # the system's CAs only
            with pytest.raises(SmtpConnectionError, match="TLS failed") as caught:
                await transport.send(outgoing(1))
    assert not caught.value.retryable
    assert not server.handler.received


async def test_a_wrong_password_is_a_clear_error_without_the_password(cert: Certificate) -> None:
    with smtp_server(starttls=cert.server_context(), logins={"mirror": "right"}) as server:
        options = {"username": "mirror", "password": PASSWORD, "tls_context": cert.client_context()}
        async with smtp(server.port, "smtp", **options) as transport:
            with pytest.raises(SmtpConnectionError, match="login refused: 535") as caught:
                await transport.send(outgoing(1))
        sessions_before = len(server.handler.ehlo_names)
        waits = Waits()
        deliveries = await send_all(
            smtp(server.port, "smtp", **options), [outgoing(n) for n in range(20)],
            sleep=waits.sleep,
        )  # fmt: skip
        # two EHLOs a session: before and after STARTTLS
        sessions = (len(server.handler.ehlo_names) - sessions_before) // 2
    assert not caught.value.retryable
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)
    assert all(
        not d.ok and "login refused" in d.reason and PASSWORD not in d.reason for d in deliveries
    )
    # the rest fail at once: no wait to try again, one login at most per worker (4)
    assert waits == [] and 0 < sessions <= 4
    assert not server.handler.received


def test_a_username_without_a_password_names_the_env_var() -> None:
    config = DigestConfig(smtp_url="smtp://127.0.0.1:587", smtp_username="mirror")
    with pytest.raises(DigestError, match="MIRROR_SMTP_PASSWORD"):
        transport_for(config, password=None, sender_address=SENDER)
    assert isinstance(transport_for(config, password="x", sender_address=SENDER), SmtpTransport)


@pytest.mark.parametrize(
    ("sender", "ehlo_name", "expected"),
    [
        (SENDER, "", "example.org"),
        ("digest@почта.example", "", "xn--80a1acny.example"),
        (SENDER, "relay-client.example.net", "relay-client.example.net"),
    ],
)
async def test_ehlo_names_the_sender_domain_never_this_host(
    sender: str, ehlo_name: str, expected: str
) -> None:
    """Relays write the EHLO name into every message's Received header."""
    with smtp_server() as server:
        transport = SmtpTransport(
            f"smtp+insecure://127.0.0.1:{server.port}", sender=sender, ehlo_name=ehlo_name
        )
        async with transport:
            await transport.send(outgoing(1))
    assert set(server.handler.ehlo_names) == {expected}
    assert socket.getfqdn() not in server.handler.ehlo_names or socket.getfqdn() == expected


async def test_idn_domains_go_as_idna_and_only_a_utf8_local_part_needs_smtputf8() -> None:
    """The server here offers no SMTPUTF8: an internationalised domain still goes (as
    IDNA, in the envelope), a non-ASCII local part cannot and fails alone, for good."""
    with smtp_server(smtputf8=False) as server:
        transport = SmtpTransport(
            f"smtp+insecure://127.0.0.1:{server.port}", sender="digest@почта.example"
        )
        deliveries = await send_all(
            transport, [outgoing(1, "reader@почта.example"), outgoing(2, "читатель@example.net")]
        )
    assert deliveries[0].ok
    assert not deliveries[1].ok and deliveries[1].permanent
    assert "SMTPUTF8" in deliveries[1].reason
    (received,) = server.handler.received
    assert received.mail_from == "digest@xn--80a1acny.example"
    assert received.rcpt_tos == ("reader@xn--80a1acny.example",)


async def test_a_closed_transport_refuses_to_send() -> None:
    with smtp_server() as server:
        transport = smtp(server.port)
        await transport.close()
        with pytest.raises(DigestError, match="closed"):
            await transport.send(outgoing(1))


# --- refusals, retries, a dead server -----------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_refused_recipient_fails_permanently_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture, pipelining: bool
) -> None:
    caplog.set_level(logging.DEBUG, logger="mirror")
    bad = "gone@example.net"
    refusal = f"550 5.1.1 <{bad}>: Recipient address rejected"
    handler = Recorder(refuse={bad: refusal}, pipelining=pipelining)
    items = [outgoing(n) for n in range(10)] + [outgoing(99, bad)]
    with smtp_server(handler) as server:
        deliveries = await send_all(smtp(server.port), items)
    by_id = {d.recipient_id: d for d in deliveries}
    assert by_id[99].permanent and not by_id[99].ok
    assert by_id[99].reason.startswith("recipient refused: 550")
    assert bad not in by_id[99].reason and "gone" not in by_id[99].reason
    assert all(by_id[n].ok for n in range(10))
    assert len(server.handler.received) == 10
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("mirror")]
    assert not any(bad in line for line in ours)


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_451_is_retried_and_delivered_once(pipelining: bool) -> None:
    handler = Recorder(defer={"reader1@example.net": 2}, pipelining=pipelining)
    events: list[str] = []
    with smtp_server(handler) as server:
        deliveries = await send_all(
            smtp(server.port), [outgoing(1)],
            after_send=lambda out, result: events.append(f"after ok={result.ok}"),
        )  # fmt: skip
    assert deliveries == [Delivery(1, ok=True, permanent=False, reason="")]
    assert server.handler.count("reader1@example.net") == 1
    assert server.handler.attempts == 3
    assert events == ["after ok=True"]


async def test_a_4xx_past_the_retries_fails_for_now() -> None:
    handler = Recorder(defer={"reader1@example.net": 10})
    with smtp_server(handler) as server:
        (delivery,) = await send_all(smtp(server.port), [outgoing(1)], retries=1)
    assert not delivery.ok and not delivery.permanent
    assert delivery.reason.startswith("message deferred: 451")
    assert server.handler.attempts == 2


async def test_a_dead_server_fails_every_message_quickly_and_not_permanently() -> None:
    port = closed_port()
    tries = 0

    async def counted() -> AsyncIterator[Outgoing]:
        nonlocal tries
        for n in range(200):
            tries += 1
            yield outgoing(n)

    waits = Waits()
    transport = smtp(port)
    async with transport:
        deliveries = await deliver(
            counted(), transport, rate_per_s=0, per_domain_rate_per_s=0, concurrency=4,
            retries=3, backoff_s=0.05, sleep=waits.sleep,
        )  # fmt: skip
    # only the first message of each worker (4) is tried again, 3 times: the rest fail at once
    assert len(waits) <= 4 * 3 and set(waits) <= {0.05, 0.1, 0.2}
    assert len(deliveries) == 200 and tries == 200
    assert all(not d.ok and not d.permanent for d in deliveries)
    assert all(d.reason.startswith("server unreachable: cannot connect") for d in deliveries)


async def test_waits_between_attempts_follow_the_retry_rule_without_real_sleep() -> None:
    """A 4xx is tried again after backoff_s, then twice as long (mirror.retry's rule),
    through the injected sleep; a 5xx is not tried again at all."""
    waits = Waits()

    class Refusing:
        def __init__(self, permanent: bool) -> None:
            self.permanent, self.calls = permanent, 0

        async def send(self, out: Outgoing) -> None:
            self.calls += 1
            raise DeliveryError("451 try later", permanent=self.permanent)

    for permanent, expected in ((False, [2.0, 4.0, 8.0]), (True, [])):
        waits.clear()
        transport = Refusing(permanent)
        deliveries = await deliver(
            [outgoing(1)], transport, rate_per_s=0, per_domain_rate_per_s=0, concurrency=1,
            retries=3, backoff_s=2.0, sleep=waits.sleep,
        )  # fmt: skip
        assert waits == expected and transport.calls == len(expected) + 1
        assert not deliveries[0].ok and deliveries[0].permanent is permanent


async def test_a_connection_dropped_while_idle_is_reopened() -> None:
    with smtp_server() as server:
        async with smtp(server.port, connections=1) as transport:
            await transport.send(outgoing(1))
            server.handler.received.clear()
            # the server ends the session under the client's feet
            transport._slots[0].session._transport.close()  # type: ignore[union-attr]
            await transport.send(outgoing(2))
    assert [r.rcpt_tos for r in server.handler.received] == [("reader2@example.net",)]


async def test_an_address_that_could_inject_commands_is_refused_alone() -> None:
    sneaky = "a@example.net>\r\nRCPT TO:<victim@example.net"
    with smtp_server() as server:
        deliveries = await send_all(
            smtp(server.port, connections=1), [outgoing(1, sneaky), outgoing(2)]
        )
    assert deliveries[0].permanent and "victim" not in deliveries[0].reason
    assert deliveries[1].ok
    assert [r.rcpt_tos for r in server.handler.received] == [("reader2@example.net",)]


def test_the_data_payload_is_crlf_and_dot_stuffed() -> None:
    assert data_payload(b"A: b\r\n\r\nok\r\n") == b"A: b\r\n\r\nok\r\n.\r\n"
    assert data_payload(b".x\n.y\rz") == b"..x\r\n..y\r\nz\r\n.\r\n"


# --- pacing, hooks, concurrency, memory -----------------------------------------------


class VirtualClock:
    """The pacer's clock and sleep in mirror.mail.delivery: a sleep returns at once and moves
    the clock to when it would have ended (concurrent sleeps: to the latest end)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now_s = 0.0
        self.sleeps_s: list[float] = []
        clock = self

        class Loop:
            def __getattr__(self, name: str) -> object:
                return getattr(asyncio.get_running_loop(), name)

            def time(self) -> float:
                return clock.now_s

        shim = {"sleep": self.sleep, "get_running_loop": Loop}
        monkeypatch.setattr(
            delivery_module, "asyncio", SimpleNamespace(**{**vars(asyncio), **shim})
        )

    async def sleep(self, delay_s: float) -> None:
        self.sleeps_s.append(delay_s)
        until_s = self.now_s + delay_s
        await asyncio.sleep(0)
        self.now_s = max(self.now_s, until_s)


async def test_the_overall_rate_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = VirtualClock(monkeypatch)
    with smtp_server() as server:
        deliveries = await send_all(
            smtp(server.port), [outgoing(n) for n in range(20)], rate_per_s=10
        )
    assert all(d.ok for d in deliveries)
    assert len(clock.sleeps_s) == 19  # every message after the first waits for its slot
    assert clock.now_s == pytest.approx(1.9)  # 20 slots 0.1 s apart


async def test_the_per_domain_rate_holds_one_domain_back_not_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = VirtualClock(monkeypatch)
    slow = [outgoing(n, f"r{n}@slow.example") for n in range(6)]
    fast = [outgoing(100 + n, f"r{n}@d{n}.example") for n in range(6)]
    with smtp_server() as server:
        deliveries = await send_all(
            smtp(server.port), slow + fast, per_domain_rate_per_s=5, concurrency=8
        )
    assert all(d.ok for d in deliveries)
    assert len(clock.sleeps_s) == 5  # the slow domain's 2nd to 6th: no other one waits
    assert clock.now_s == pytest.approx(1.0)  # 6 at 5/s: the last at 1.0 s


async def test_after_send_comes_once_the_server_has_the_message() -> None:
    events: list[tuple[int, int]] = []
    with smtp_server() as server:
        seen = server.handler.received
        await send_all(
            smtp(server.port), [outgoing(n) for n in range(5)], concurrency=1,
            after_send=lambda out, _: events.append((out.recipient_id, len(seen))),
        )  # fmt: skip
    assert events == [(n, n + 1) for n in range(5)]


async def test_a_failing_after_send_stops_the_run_with_its_own_error() -> None:
    def broken(out: Outgoing, result: Delivery) -> None:
        raise OSError(28, "No space left on device")

    with smtp_server() as server, pytest.raises(OSError, match="No space"):
        await send_all(
            smtp(server.port), [outgoing(n) for n in range(10)], concurrency=1, after_send=broken
        )
    assert len(server.handler.received) == 1  # the first message, then nothing


async def test_several_connections_are_used_and_reused() -> None:
    with smtp_server() as server:
        deliveries = await send_all(
            smtp(server.port, connections=4), [outgoing(n) for n in range(40)], concurrency=4
        )
    assert all(d.ok for d in deliveries)
    assert [d.recipient_id for d in deliveries] == list(range(40))
    assert server.handler.sessions() == 4


async def test_messages_are_streamed_not_held_at_once() -> None:
    made = done = most_in_flight = 0

    async def stream() -> AsyncIterator[Outgoing]:
        nonlocal made, most_in_flight
        for n in range(300):
            made += 1
            most_in_flight = max(most_in_flight, made - done)
            yield outgoing(n)

    def finished(out: Outgoing, result: Delivery) -> None:
        nonlocal done
        done += 1

    with smtp_server() as server:
        transport = smtp(server.port)
        async with transport:
            deliveries = await deliver(
                stream(), transport, rate_per_s=0, per_domain_rate_per_s=0, concurrency=4,
                retries=0, after_send=finished,
            )  # fmt: skip
    assert len(deliveries) == 300 and all(d.ok for d in deliveries)
    assert most_in_flight <= 4 * 3 + 1  # the bounded queue and one per worker


# --- the outbox -----------------------------------------------------------------------


async def test_the_outbox_writes_one_file_per_message_id_atomically(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    config = DigestConfig(outbox_dir=outbox)
    transport = transport_for(config, password=None, sender_address=SENDER)
    assert isinstance(transport, OutboxTransport)
    first = outgoing(1)
    async with transport:
        await transport.send(first)
        await transport.send(replace(first, message=b"Subject: again\r\n\r\nsecond\r\n"))
        await transport.send(replace(outgoing(2), message_id="<../../etc/passwd>"))
    files = sorted(p.name for p in outbox.iterdir())
    assert files == sorted([outbox_name("<1@example.org>"), outbox_name("<../../etc/passwd>")])
    assert (outbox / outbox_name("<1@example.org>")).read_bytes().endswith(b"second\r\n")
    assert (
        outbox_name("<1@example.org>")
        == hashlib.sha256(b"<1@example.org>").hexdigest()[:32] + ".eml"
    )
    assert (outbox / files[0]).stat().st_mode & 0o077 == 0


async def test_deliver_to_the_outbox(tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path)
    deliveries = await deliver(
        (outgoing(n) for n in range(10)), transport, rate_per_s=0, per_domain_rate_per_s=0,
        concurrency=3, retries=0,
    )  # fmt: skip
    assert all(d.ok for d in deliveries)
    assert len(list(tmp_path.glob("*.eml"))) == 10  # noqa: ASYNC240


# --- translating aiosmtplib's exceptions ----------------------------------------------

EXPECTED = {
    "SMTPAuthenticationError": SmtpConnectionError,
    "SMTPConnectError": SmtpConnectionError,
    "SMTPConnectResponseError": SmtpConnectionError,
    "SMTPConnectTimeoutError": SmtpConnectionError,
    "SMTPDataError": DeliveryError,
    "SMTPException": SmtpConnectionError,
    "SMTPHeloError": SmtpConnectionError,
    "SMTPNotSupported": DeliveryError,
    "SMTPReadTimeoutError": SmtpConnectionError,
    "SMTPRecipientRefused": DeliveryError,
    "SMTPRecipientsRefused": DeliveryError,
    "SMTPResponseException": SmtpConnectionError,
    "SMTPSenderRefused": SmtpConnectionError,
    "SMTPServerDisconnected": SmtpConnectionError,
    "SMTPTimeoutError": SmtpConnectionError,
}


def example(name: str) -> BaseException:
    """An instance of one aiosmtplib exception, as the library would raise it."""
    cls = getattr(aiosmtplib.errors, name)
    address = "someone@example.net"
    if name == "SMTPRecipientsRefused":
        return cls([aiosmtplib.SMTPRecipientRefused(550, f"<{address}> unknown", address)])
    if name in ("SMTPRecipientRefused", "SMTPSenderRefused"):
        return cls(550, f"<{address}> refused", address)
    if issubclass(cls, aiosmtplib.SMTPResponseException):
        return cls(554, f"no thanks <{address}>")
    return cls("it failed")


def test_every_aiosmtplib_exception_is_translated() -> None:
    assert set(aiosmtplib.errors.__all__) == set(EXPECTED), "a new aiosmtplib exception: map it"
    for name, expected in EXPECTED.items():
        error = translate_smtp_error(example(name))
        assert type(error) is expected, name
        assert "unexpected" not in str(error), name
        assert "someone" not in str(error), name


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (aiosmtplib.SMTPServerDisconnected("gone"), True),
        (aiosmtplib.SMTPReadTimeoutError("slow"), True),
        (aiosmtplib.SMTPConnectError("refused"), True),
        (aiosmtplib.SMTPConnectResponseError(421, "busy"), True),
        (aiosmtplib.SMTPConnectResponseError(554, "go away"), False),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), False),
        (aiosmtplib.SMTPSenderRefused(553, "not yours", SENDER), False),
        (ConnectionResetError(104, "reset"), True),
    ],
)
def test_retrying_is_a_property_of_the_error(exc: BaseException, retryable: bool) -> None:
    assert translate_smtp_error(exc).retryable is retryable


def test_4xx_and_5xx_for_a_recipient() -> None:
    soft = translate_smtp_error(aiosmtplib.SMTPRecipientRefused(452, "full", "a@b.c"))
    hard = translate_smtp_error(aiosmtplib.SMTPDataError(552, "too big"))
    assert isinstance(soft, DeliveryError) and not soft.permanent
    assert isinstance(hard, DeliveryError) and hard.permanent


def test_reasons_are_bounded_and_clean() -> None:
    error = translate_smtp_error(aiosmtplib.SMTPDataError(554, "x\r\ny" * 1000))
    assert len(str(error)) < 400 and "\r" not in str(error) and "\n" not in str(error)


# --- pipelining and replies, against a scripted server on 127.0.0.1 -------------------

GREETING_AND_EHLO = 2  # replies before the first transaction


class Scripted:
    """A raw SMTP server on 127.0.0.1: reads commands and answers each with `answer`,
    but only once every command of a pipelined group (ending in DATA) has come in: a
    client that waits for MAIL's reply before sending RCPT would hang here."""

    def __init__(self, answer: dict[bytes, bytes], ehlo: bytes) -> None:
        self.answer = answer
        self.ehlo = ehlo
        self.reads: list[bytes] = []  # every chunk read, in order
        self.messages: list[bytes] = []
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 scripted ESMTP\r\n")
        pending: list[bytes] = []
        while line := await reader.readline():
            self.reads.append(line)
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper()
            if verb == b"EHLO":
                writer.write(self.ehlo)
            elif verb in (b"MAIL", b"RCPT"):
                pending.append(self.answer.get(verb, b"250 ok\r\n"))
            elif verb == b"DATA":
                data_reply = self.answer.get(b"DATA", b"354 go on\r\n")
                writer.write(b"".join(pending) + data_reply)
                pending = []
                if data_reply.startswith(b"354"):
                    body = []
                    while (part := await reader.readline()) not in (b".\r\n", b""):
                        body.append(part)
                    if part == b"":
                        break  # the client hung up: no message
                    self.messages.append(b"".join(body))
                    writer.write(self.answer.get(b".", b"250 queued\r\n"))
            elif verb in (b"RSET", b"NOOP"):
                writer.write(b"250 ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()


PIPELINING_EHLO = b"250-scripted\r\n250-SIZE 1000000\r\n250-PIPELINING\r\n250 HELP\r\n"


async def test_mail_rcpt_and_data_go_out_in_one_group_when_pipelining_is_offered() -> None:
    async with Scripted({}, PIPELINING_EHLO) as server:
        deliveries = await send_all(
            smtp(server.port, connections=1), [outgoing(n) for n in range(3)], concurrency=1
        )
    assert all(d.ok for d in deliveries)
    assert [m.count(b"Subject: Digest") for m in server.messages] == [1, 1, 1]
    verbs = [r[:4] for r in server.reads if r[:4] in (b"MAIL", b"RCPT", b"DATA")]
    assert verbs == [b"MAIL", b"RCPT", b"DATA"] * 3


async def test_a_multi_line_reply_is_one_reply() -> None:
    answer = {b"MAIL": b"250-first\r\n250-second\r\n250 ok\r\n"}
    async with Scripted(answer, PIPELINING_EHLO) as server:
        (delivery,) = await send_all(smtp(server.port), [outgoing(1)])
    assert delivery.ok and len(server.messages) == 1


async def test_a_recipient_refused_in_a_pipelined_group_ends_a_taken_data_with_a_dot() -> None:
    """A server that answers 354 to DATA after refusing the only recipient gets a lone
    dot (RFC 2920 3.1), never the message; the session goes on for the next one."""
    answer = {b"RCPT": b"550 no such user\r\n"}
    async with Scripted(answer, PIPELINING_EHLO) as server:
        deliveries = await send_all(
            smtp(server.port, connections=1), [outgoing(1), outgoing(2)], concurrency=1
        )
    assert [d.permanent for d in deliveries] == [True, True]
    assert all(d.reason.startswith("recipient refused: 550") for d in deliveries)
    assert server.messages == [b"", b""]  # the dot only: no message text went out
    assert b"RSET\r\n" in server.reads


@pytest.mark.parametrize(
    "bad_reply",
    [b"2x0 what\r\n", b"250-" + b"x" * 5000 + b"\r\n", b"250-more\r\n" * 200 + b"250 ok\r\n"],
    ids=["not-a-code", "overlong-line", "too-many-lines"],
)
async def test_a_malformed_reply_fails_the_message_clearly(bad_reply: bytes) -> None:
    async with Scripted({b"MAIL": bad_reply}, PIPELINING_EHLO) as server:
        (delivery,) = await send_all(smtp(server.port), [outgoing(1)], retries=0)
    assert not delivery.ok and not server.messages
    assert any(word in delivery.reason for word in ("malformed", "overlong", "too many lines"))


async def test_a_server_that_stops_answering_times_out() -> None:
    async with Scripted({b".": b""}, PIPELINING_EHLO) as server:
        (delivery,) = await send_all(smtp(server.port, timeout_s=0.5), [outgoing(1)], retries=0)
    assert not delivery.ok
    assert "no answer within 0.5 s (digest.timeout_s)" in delivery.reason  # not the default 5 s


async def test_an_unsolicited_reply_between_messages_is_not_taken_for_the_next_ones() -> None:
    """A server may say "421" unasked and keep the line open a while: the session is
    dropped and a new one carries the next message, never with replies out of step."""
    answer = {b".": b"250 queued\r\n421 4.3.2 going away soon\r\n"}
    async with Scripted(answer, PIPELINING_EHLO) as server:
        deliveries = await send_all(
            smtp(server.port, connections=1), [outgoing(1), outgoing(2)], concurrency=1
        )
    assert [d.ok for d in deliveries] == [True, True]
    assert len(server.messages) == 2
    mails = [line for line in server.reads if line.startswith(b"MAIL")]
    assert len(mails) == 2  # no attempt went out on the stale session
