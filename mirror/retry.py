"""Trying again: one rule for every loop that retries (origin, mirrors, mail).

Whether to retry is read from the error, never from its text: a `MirrorError` with
`retryable` set is tried again, after its `retry_after_s` when it has one (a longer one
than `max_retry_after_s` fails at once), else after an exponential backoff with jitter.
Attempts are bounded (`retries`), and so is the time spent retrying (`max_elapsed_s`).

`RetryPolicy.delay_s` is the pure rule; `with_retries` runs it, with the sleep, the
clock and the random draw as parameters so that tests never sleep for real. A loop that
does more between attempts (the mailer's pacing) can call `delay_s` itself.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from mirror.errors import MirrorError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[object]]
Clock = Callable[[], float]  # seconds, monotonic
Draw = Callable[[], float]  # uniform in [0, 1)
OnRetry = Callable[[MirrorError, float], object]  # the error and the wait before retrying


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and after how long, a retryable error is tried again."""

    retries: int = 0  # attempts after the first
    backoff_s: float = 0.0  # the first wait; doubled after each retry
    jitter: float = 0.0  # share of each wait drawn at random: in [wait × (1 - jitter), wait]
    max_backoff_s: float = math.inf  # one computed wait at most
    max_retry_after_s: float = 60.0  # a longer Retry-After fails at once instead
    max_elapsed_s: float = math.inf  # no wait that would end later than this after the start

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"retries and backoff_s must be >= 0, jitter in [0, 1]: {self}")

    def delay_s(self, error: MirrorError, retry: int, draw: Draw = random.random) -> float | None:
        """Seconds to wait before retry number `retry` (0 for the first) after `error`;
        None when not to retry: not retryable, out of retries, or too long a Retry-After."""
        if not error.retryable or retry >= self.retries:
            return None
        if error.retry_after_s is not None:
            return error.retry_after_s if error.retry_after_s <= self.max_retry_after_s else None
        wait_s = min(self.backoff_s * 2.0**retry, self.max_backoff_s)
        return wait_s * (1 - self.jitter * draw())


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    draw: Draw = random.random,
    on_retry: OnRetry | None = None,
) -> T:
    """`attempt()`, tried again while its MirrorError says so and `policy` allows; the
    last error is raised as it is. Other exceptions pass through at once."""
    started_s = clock()
    retry = 0
    while True:
        try:
            return await attempt()
        except MirrorError as error:
            wait_s = policy.delay_s(error, retry, draw)
            if wait_s is None or clock() + wait_s - started_s > policy.max_elapsed_s:
                raise
            if on_retry is not None:
                on_retry(error, wait_s)
        await sleep(wait_s)
        retry += 1
