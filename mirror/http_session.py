"""One aiohttp session per client: opened by `async with`, closed for good after (as
httpx's clients do: anything holding connections refuses use after close). The origin
client and the mirror reader share this lifecycle; each says how its session is made."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiohttp


class OneSession:
    """The session lifecycle; subclasses make the session in `_new_session`."""

    _session: aiohttp.ClientSession | None = None
    _closed: bool = False

    def _new_session(self) -> aiohttp.ClientSession:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        """Open the session (once: a closed client cannot be reopened)."""
        if self._closed or self._session is not None:
            raise RuntimeError(f"a {type(self).__name__} can be opened only once")
        self._session = self._new_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the session and every connection."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session; later requests raise RuntimeError."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open_session(self) -> aiohttp.ClientSession:
        """The session, or RuntimeError when the client is not open."""
        if self._session is None:
            state = "closed" if self._closed else "not opened (use `async with`)"
            raise RuntimeError(f"{type(self).__name__} is {state}")
        return self._session
