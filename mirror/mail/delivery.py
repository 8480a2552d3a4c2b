"""Delivering many messages through one small seam, `Transport`: pacing, retries, the
stop when the server is gone, and one `Delivery` per message.

`transport_for` picks the transport from the config: SMTP (`mirror.mail.smtp`) when
`smtp_url` is set, else the outbox folder (`mirror.mail.outbox`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from mirror.config import DigestConfig
from mirror.errors import DeliveryError, DigestError
from mirror.mail.outbox import OutboxTransport
from mirror.mail.smtp import SmtpTransport
from mirror.mail.wire import Outgoing
from mirror.retry import RetryPolicy, Sleep

log = logging.getLogger("mirror.mailer")


@dataclass(frozen=True)
class Delivery:
    """What became of one Outgoing."""

    recipient_id: int
    ok: bool
    permanent: bool  # a 5xx for this recipient: sending again will not help
    reason: str  # "" when ok; never contains the address


class Transport(Protocol):
    """Where messages go: one message per call.

    `send` returns once the message is taken; it raises `DeliveryError` (`permanent`
    or not) when this recipient or message is refused, `SmtpConnectionError` or
    `TlsRequiredError` when the server itself cannot be used (`retryable` says whether
    trying again may help).
    """

    async def send(self, outgoing: Outgoing) -> None:
        """Hand over one message."""
        ...

    async def close(self) -> None:
        """Release connections; sending afterwards is an error."""
        ...


def transport_for(
    config: DigestConfig,
    *,
    password: str | None,
    sender_address: str,
    tls_context: ssl.SSLContext | None = None,
) -> Transport:
    """SMTP when `smtp_url` is set, else the outbox folder."""
    if not config.smtp_url:
        return OutboxTransport(config.outbox_dir)
    if config.smtp_username and password is None:
        raise DigestError(
            f"smtp_username is set but ${config.smtp_password_env} is not: "
            "set it to the SMTP password"
        )
    return SmtpTransport(
        config.smtp_url,
        sender=sender_address,
        username=config.smtp_username,
        password=password,
        connections=config.connections,
        timeout_s=config.timeout_s,
        tls_context=tls_context,
        ehlo_name=config.ehlo_name,
    )


async def deliver(
    outgoing: AsyncIterable[Outgoing] | Iterable[Outgoing],
    transport: Transport,
    *,
    rate_per_s: float,
    per_domain_rate_per_s: float,
    concurrency: int,
    retries: int,
    backoff_s: float = 1.0,
    after_send: Callable[[Outgoing, Delivery], None] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> list[Delivery]:
    """Send every message; one Delivery each, in the order given.

    Messages are read as they are needed (a few at a time, never all at once) and sent
    `concurrency` at a time, at most `rate_per_s` overall and `per_domain_rate_per_s`
    per recipient domain (0 or infinity: no limit). A refusal for now (4xx) or a lost
    connection is tried again up to `retries` more times, waiting `backoff_s`, then
    twice as long each time; a 5xx fails that recipient only. When the server cannot
    be reached through a message's every attempt (and nothing got through meanwhile),
    or refuses us outright (TLS, login), the rest fail at once, not permanently.
    `after_send` runs once per message with its outcome, as soon as it is known (the
    digest records a send there). An exception in it (or in the iterator) stops
    everything and is raised as it is. Waits between attempts follow `mirror.retry`'s
    rule (read from the error) and go through `sleep`, which tests replace.
    """
    sender = _Sender(
        transport,
        _Limits(rate_per_s, per_domain_rate_per_s),
        RetryPolicy(retries=max(0, retries), backoff_s=backoff_s),
        after_send=after_send,
        sleep=sleep,
    )
    workers = max(1, concurrency)
    queue: asyncio.Queue[tuple[int, Outgoing] | None] = asyncio.Queue(maxsize=2 * workers)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_feed(outgoing, queue, workers))
            for _ in range(workers):
                group.create_task(_work(queue, sender))
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the caller's own error, not a group
    return [delivery for _, delivery in sorted(sender.results, key=lambda pair: pair[0])]


async def _feed(
    outgoing: AsyncIterable[Outgoing] | Iterable[Outgoing],
    queue: asyncio.Queue[tuple[int, Outgoing] | None],
    workers: int,
) -> None:
    """Number the messages into the bounded queue, then one stop mark per worker."""
    index = 0
    async for item in _aiter(outgoing):
        await queue.put((index, item))
        index += 1
    for _ in range(workers):
        await queue.put(None)


async def _aiter(items: AsyncIterable[Outgoing] | Iterable[Outgoing]) -> AsyncIterator[Outgoing]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _work(queue: asyncio.Queue[tuple[int, Outgoing] | None], sender: _Sender) -> None:
    while (item := await queue.get()) is not None:
        index, out = item
        sender.results.append((index, await sender.deliver_one(out)))


class _Sender:
    """One message at a time per worker: pacing, retries, the dead-server stop."""

    def __init__(
        self,
        transport: Transport,
        limits: _Limits,
        policy: RetryPolicy,
        *,
        after_send: Callable[[Outgoing, Delivery], None] | None,
        sleep: Sleep,
    ) -> None:
        self.transport = transport
        self.limits = limits
        self.policy = policy
        self.after_send = after_send
        self.sleep = sleep
        self.results: list[tuple[int, Delivery]] = []
        self.stopped = ""  # why every remaining message fails at once
        self.successes = 0

    async def deliver_one(self, out: Outgoing) -> Delivery:
        """Attempts until sent, refused for good, out of retries or stopped."""
        delivery = await self._attempts(out)
        if self.after_send is not None:
            self.after_send(out, delivery)
        return delivery

    async def _attempts(self, out: Outgoing) -> Delivery:
        successes_before = self.successes
        server_failures = 0
        failure: DigestError
        for retry in itertools.count():
            if self.stopped:
                return _failed(out, self.stopped)
            await self.limits.wait(_domain(out.address))
            try:
                await self.transport.send(out)
            except DeliveryError as exc:
                if exc.permanent:
                    return _failed(out, exc.reason, permanent=True)
                failure, reason = exc, exc.reason
            except DigestError as exc:
                failure, reason = exc, f"server unreachable: {exc}"
                server_failures += 1
                if not exc.retryable:
                    return _failed(out, self._stop(str(exc)))
            else:
                self.successes += 1
                return Delivery(out.recipient_id, ok=True, permanent=False, reason="")
            wait_s = self.policy.delay_s(failure, retry)
            if wait_s is None:
                break
            await self.sleep(wait_s)
        if server_failures > self.policy.retries and self.successes == successes_before:
            self._stop(reason)
        return _failed(out, reason)

    def _stop(self, reason: str) -> str:
        """Fail every message not yet sent, with this reason."""
        if not self.stopped:
            log.warning("SMTP server unusable, not trying the remaining messages: %s", reason)
            self.stopped = reason
        return self.stopped


def _failed(out: Outgoing, reason: str, *, permanent: bool = False) -> Delivery:
    return Delivery(out.recipient_id, ok=False, permanent=permanent, reason=reason)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


class _Pace:
    """Evenly spaced slots, `rate_per_s` a second, no burst (0 or inf: no limit)."""

    def __init__(self, rate_per_s: float) -> None:
        limited = 0 < rate_per_s < math.inf
        self.interval_s = 1 / rate_per_s if limited else 0.0
        self.next_at = 0.0

    async def wait(self) -> None:
        """Take the next free slot and sleep until it comes."""
        if not self.interval_s:
            return
        now = asyncio.get_running_loop().time()
        at = max(now, self.next_at)
        self.next_at = at + self.interval_s
        if at > now:
            await asyncio.sleep(at - now)


class _Limits:
    """The overall rate and one per recipient domain."""

    def __init__(self, rate_per_s: float, per_domain_rate_per_s: float) -> None:
        self.overall = _Pace(rate_per_s)
        self.per_domain_rate_per_s = per_domain_rate_per_s
        self.domains: dict[str, _Pace] = {}

    async def wait(self, domain: str) -> None:
        """The domain's slot first, so a busy domain never holds overall slots."""
        pace = self.domains.get(domain)
        if pace is None:
            pace = self.domains[domain] = _Pace(self.per_domain_rate_per_s)
        await pace.wait()
        await self.overall.wait()
