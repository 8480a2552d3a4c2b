"""Running many awaitables with a bound, and one within a time limit, without importing
anything heavy (publish, verify and fetch use it; `mirror publish` should not pay for
aiohttp's import)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def map_bounded(
    func: Callable[[T], Awaitable[R]], items: Sequence[T], *, limit: int
) -> list[R]:
    """`func` over `items`, at most `limit` at once; the first error cancels the rest."""
    results: dict[int, R] = {}
    pending = iter(enumerate(items))

    async def worker() -> None:
        for index, item in pending:
            results[index] = await func(item)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(limit, len(items))):
                group.create_task(worker())
    except BaseExceptionGroup as failure:
        raise _first_error(failure) from None
    return [results[index] for index in range(len(items))]


@contextlib.asynccontextmanager
async def time_limit(seconds: float | None, error: Callable[[], Exception]) -> AsyncIterator[None]:
    """The body, cancelled once `seconds` have passed (None: no limit) and `error()` raised
    in its place; a TimeoutError of the body's own passes as it is."""
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            yield
    except TimeoutError as exc:
        if not scope.expired():
            raise
        raise error() from exc


def _first_error(failure: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf exception of a task group's failure."""
    first = failure.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first
