"""The OONI API client: the only module here that opens sockets.

`OoniClient(reach)` is an `async with` object; `measurements(url, country, since, until)`
follows /api/v1/measurements page by page (newest first, at most `max_pages`, each
answer at most `max_response_bytes`, each request within `timeout_s`) and gives the
measurements. Every failure, aiohttp's included, is a ReachError, translated here once.
"""

from __future__ import annotations

import json
from datetime import datetime
from types import TracebackType
from urllib.parse import urlencode, urlsplit

import aiohttp

from mirror.config import ReachConfig
from mirror.errors import ReachError
from mirror.http_errors import TimeLimits, translate_error
from mirror.reach.model import Measurement, Page, parse_page

MEASUREMENTS_PATH = "/api/v1/measurements"
TIMEOUT_KEY = "reach.timeout_s"  # named in a timeout's message
TEST_NAME = "web_connectivity"  # the test that OONI Run descriptors ask volunteers to run


class OoniClient:
    """Bounded requests to one OONI API; refuses use outside `async with`."""

    def __init__(self, reach: ReachConfig) -> None:
        self._reach = reach
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0  # made so far: the cache test counts them

    async def __aenter__(self) -> OoniClient:
        timeout = aiohttp.ClientTimeout(total=self._reach.timeout_s)
        self._session = aiohttp.ClientSession(
            timeout=timeout, headers={"Accept": "application/json"}
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def measurements(
        self, url: str, country: str, since: datetime, until: datetime
    ) -> list[Measurement]:
        """The window's web_connectivity measurements of `url` from `country`."""
        query = {
            "input": url,
            "probe_cc": country,
            "test_name": TEST_NAME,
            "since": since.strftime("%Y-%m-%dT%H:%M:%S"),
            "until": until.strftime("%Y-%m-%dT%H:%M:%S"),
            "limit": str(self._reach.page_size),
            "order_by": "measurement_start_time",
            "order": "desc",
        }
        page_url: str | None = self._reach.ooni_api.rstrip("/") + MEASUREMENTS_PATH
        page_url = f"{page_url}?{urlencode(query)}"
        found: list[Measurement] = []
        for _ in range(self._reach.max_pages):
            if page_url is None:
                break
            page = await self._page(page_url)
            found += page.measurements
            page_url = self._next(page)
        return found

    def _next(self, page: Page) -> str | None:
        """The next page's URL, only on the API's own origin (never elsewhere)."""
        if page.next_url is None or not page.measurements:
            return None
        api, following = urlsplit(self._reach.ooni_api), urlsplit(page.next_url)
        if (following.scheme, following.netloc) != (api.scheme, api.netloc):
            raise ReachError(f"next_url leaves the API ({following.scheme}://{following.netloc})")
        return page.next_url

    async def _page(self, url: str) -> Page:
        body = await self._get(url)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReachError(f"answer is not JSON ({exc})") from None
        return parse_page(document)

    async def _get(self, url: str) -> bytes:
        if self._session is None:
            raise RuntimeError("OoniClient used outside `async with`")
        self.requests += 1
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise ReachError(f"HTTP {response.status} from the OONI API")
                return await self._body(response)
        except ReachError:
            raise
        except Exception as exc:
            error = translate_error(exc, url, TimeLimits.single(self._reach.timeout_s, TIMEOUT_KEY))
            if error is None:
                raise
            raise ReachError(f"OONI API: {error.reason}") from exc

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._reach.max_response_bytes
        if (response.content_length or 0) > limit:
            raise ReachError(f"answer larger than {limit} bytes")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(65_536):
            size += len(chunk)
            if size > limit:
                raise ReachError(f"answer larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
