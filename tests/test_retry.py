"""The one retry helper: it reads the error, and never sleeps for real here."""

from __future__ import annotations

import inspect
import random

import pytest

from mirror import errors
from mirror.errors import (
    ConnectionFailedError,
    FetchTimeoutError,
    HTTPStatusError,
    MirrorError,
    ObjectTooLargeError,
    TargetError,
)
from mirror.retry import RetryPolicy, with_retries


class FakeClock:
    """A clock that moves only when slept on; every wait is recorded."""

    def __init__(self) -> None:
        self.now_s = 1000.0
        self.waits_s: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.waits_s.append(seconds)
        self.now_s += seconds


class Failing:
    """An attempt that raises the given errors in turn, then returns "done"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def busy(retry_after_s: float | None = None) -> HTTPStatusError:
    return HTTPStatusError("http://h.org/", 503, retry_after_s)


async def run(attempt: Failing, policy: RetryPolicy, clock: FakeClock) -> str:
    return await with_retries(attempt, policy, sleep=clock.sleep, clock=clock, draw=lambda: 0.0)


async def test_retryable_errors_are_tried_again_with_a_doubling_backoff() -> None:
    clock, attempt = FakeClock(), Failing(busy(), busy(), busy())
    assert await run(attempt, RetryPolicy(retries=3, backoff_s=0.5), clock) == "done"
    assert attempt.calls == 4 and clock.waits_s == [0.5, 1.0, 2.0]


async def test_attempts_are_bounded_and_the_last_error_raised() -> None:
    clock = FakeClock()
    last = busy()
    attempt = Failing(busy(), busy(), last, busy())
    with pytest.raises(HTTPStatusError) as caught:
        await run(attempt, RetryPolicy(retries=2, backoff_s=1), clock)
    assert caught.value is last and attempt.calls == 3 and clock.waits_s == [1, 2]


async def test_a_non_retryable_error_is_raised_at_once() -> None:
    clock, attempt = FakeClock(), Failing(HTTPStatusError("http://h.org/", 404))
    with pytest.raises(HTTPStatusError):
        await run(attempt, RetryPolicy(retries=5, backoff_s=1), clock)
    assert attempt.calls == 1 and clock.waits_s == []


async def test_other_exceptions_pass_through_at_once() -> None:
    clock, attempt = FakeClock(), Failing(KeyError("bug"))
    with pytest.raises(KeyError):
        await run(attempt, RetryPolicy(retries=5, backoff_s=1), clock)
    assert attempt.calls == 1


async def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    clock, attempt = FakeClock(), Failing(busy(retry_after_s=7), busy())
    assert await run(attempt, RetryPolicy(retries=2, backoff_s=0.5), clock) == "done"
    assert clock.waits_s == [7, 1.0]


async def test_a_retry_after_over_the_cap_fails_at_once() -> None:
    clock, attempt = FakeClock(), Failing(busy(retry_after_s=3600))
    with pytest.raises(HTTPStatusError):
        await run(attempt, RetryPolicy(retries=3, max_retry_after_s=60), clock)
    assert attempt.calls == 1 and clock.waits_s == []


async def test_no_wait_ends_past_max_elapsed_s() -> None:
    clock, attempt = FakeClock(), Failing(*[busy()] * 10)
    with pytest.raises(HTTPStatusError):
        await run(attempt, RetryPolicy(retries=10, backoff_s=1, max_elapsed_s=10), clock)
    assert clock.waits_s == [1, 2, 4]  # 8 more would end at 15 s


async def test_on_retry_hears_each_error_and_wait() -> None:
    clock, heard = FakeClock(), []
    first = FetchTimeoutError("http://h.org/", "time limit passed")
    await with_retries(
        Failing(first), RetryPolicy(retries=1, backoff_s=2), sleep=clock.sleep, clock=clock,
        on_retry=lambda error, wait_s: heard.append((error, wait_s)),
    )  # fmt: skip
    assert heard == [(first, 2)]


@pytest.mark.parametrize("seed", range(20))
def test_jitter_stays_within_its_bounds(seed: int) -> None:
    policy = RetryPolicy(retries=5, backoff_s=1, jitter=0.5)
    draw = random.Random(seed).random
    for retry in range(5):
        wait_s = policy.delay_s(busy(), retry, draw)
        assert wait_s is not None and 2**retry / 2 <= wait_s <= 2**retry
    assert policy.delay_s(busy(), 0, lambda: 0.0) == 1
    assert policy.delay_s(busy(), 0, lambda: 0.999) == pytest.approx(0.5005)


def test_the_computed_wait_is_capped() -> None:
    policy = RetryPolicy(retries=20, backoff_s=1, max_backoff_s=30)
    assert policy.delay_s(busy(), 19) == 30


@pytest.mark.parametrize(
    "changes", [{"retries": -1}, {"backoff_s": -0.1}, {"jitter": 1.5}, {"jitter": -0.1}]
)
def test_a_policy_out_of_range_is_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the rules on the errors

RETRYABLE_CLASSES = {
    "FetchTimeoutError",
    "ConnectionFailedError",
    "MirrorUnreachableError",
    "SmtpConnectionError",
    "ImapConnectionError",
}


def error_classes() -> list[type[MirrorError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, MirrorError) and cls.__module__ == errors.__name__
    ]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_each_error_class_says_whether_to_retry(cls: type[MirrorError]) -> None:
    """A new error class is not retryable unless it is listed here on purpose."""
    assert cls.retryable is (cls.__name__ in RETRYABLE_CLASSES)
    assert cls.retry_after_s is None


def test_errors_that_decide_retrying_per_instance() -> None:
    assert busy().retryable and HTTPStatusError("u", 429).retryable
    assert not HTTPStatusError("u", 404).retryable
    assert errors.DeliveryError("busy", permanent=False).retryable
    assert not errors.DeliveryError("no such user", permanent=True).retryable
    assert not ObjectTooLargeError("m", "pointer over 64 bytes").retryable
    assert not TargetError("u: redirected away").retryable
    assert ConnectionFailedError("u", "reset").retryable
