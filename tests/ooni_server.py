"""A stand-in for OONI's API on 127.0.0.1: /api/v1/measurements and /api/v1/aggregation
in the documented shapes (fields as api.ooni.io answers; see tests/fixtures/ooni/),
with pagination (limit, offset, metadata.next_url) and knobs for bad answers."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from servers import serve

FIXTURES = Path(__file__).parent / "fixtures" / "ooni"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def result(
    url: str, country: str, when: datetime, *, asn: str = "AS12389", anomaly: bool = False,
    confirmed: bool = False, failure: bool = False, n: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """One measurement as /api/v1/measurements lists it."""
    stamp = when.strftime("%Y%m%d%H%M%S")
    uid = f"{stamp}.{n:06d}_{country}_webconnectivity_{abs(hash((url, n))):016x}"
    return {
        "anomaly": anomaly or confirmed,
        "confirmed": confirmed,
        "failure": failure,
        "input": url,
        "measurement_start_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "measurement_uid": uid,
        "measurement_url": f"https://api.ooni.io/api/v1/raw_measurement?measurement_uid={uid}",
        "probe_asn": asn,
        "probe_cc": country,
        "report_id": f"{stamp}_webconnectivity_{country}_{asn[2:]}_n1_x{n}",
        "test_name": "web_connectivity",
    }


@dataclass
class OoniStandIn:
    """Measurements by (input, probe_cc), and how to misbehave."""

    results: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    status: int = 200  # another: every answer is that status (an nginx error page)
    malformed: bool = False  # 200 with a body that is not JSON
    wrong_shape: bool = False  # 200 with JSON of another shape
    huge_bytes: int = 0  # pad each answer to this many bytes
    delay_s: float = 0.0  # before answering
    foreign_next: bool = False  # next_url on another host
    requests: int = 0

    def add(self, url: str, country: str, items: list[dict[str, Any]]) -> None:
        self.results.setdefault((url, country), []).extend(items)


def _since_until(query: Any) -> tuple[datetime, datetime]:
    def parsed(text: str | None, default: datetime) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else default

    far = datetime(1970, 1, 1, tzinfo=UTC)
    return parsed(query.get("since"), far), parsed(query.get("until"), far + timedelta(days=40_000))


def app(ooni: OoniStandIn) -> web.Application:
    async def measurements(request: web.Request) -> web.StreamResponse:
        ooni.requests += 1
        if ooni.delay_s:
            await asyncio.sleep(ooni.delay_s)
        if ooni.status != 200:
            body = (FIXTURES / "error_500.html").read_text()
            return web.Response(status=ooni.status, text=body, content_type="text/html")
        if ooni.malformed:
            return web.Response(
                text='{"metadata": {"count": 3, "resu', content_type="application/json"
            )
        if ooni.wrong_shape:
            return web.json_response({"error": "nope", "results": "not a list"})
        if ooni.huge_bytes:
            return await _huge(request, ooni.huge_bytes)
        return web.json_response(_page(ooni, request))

    async def aggregation(request: web.Request) -> web.Response:
        ooni.requests += 1
        items = ooni.results.get((request.query["input"], request.query["probe_cc"]), [])
        counts = {
            "anomaly_count": sum(i["anomaly"] and not i["confirmed"] for i in items),
            "confirmed_count": sum(i["confirmed"] for i in items),
            "failure_count": sum(i["failure"] for i in items),
            "measurement_count": len(items),
        }
        counts["ok_count"] = len(items) - sum(counts[k] for k in counts if k != "measurement_count")
        return web.json_response({"result": counts, "v": 0})

    application = web.Application()
    application.router.add_get("/api/v1/measurements", measurements)
    application.router.add_get("/api/v1/aggregation", aggregation)
    return application


def _page(ooni: OoniStandIn, request: web.Request) -> dict[str, Any]:
    query = request.query
    if "probe_cc" not in query or "input" not in query:
        return fixture("error_400.json")
    since, until = _since_until(query)
    items = [
        item
        for item in ooni.results.get((query["input"], query["probe_cc"]), [])
        if since <= datetime.fromisoformat(item["measurement_start_time"]) <= until
    ]
    items.sort(key=lambda item: item["measurement_start_time"], reverse=True)
    limit, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    host = "elsewhere.example:443" if ooni.foreign_next else request.host
    next_query = urlencode({**query, "offset": str(offset + limit)})
    return {
        "metadata": {
            "count": len(items),
            "current_page": offset // limit + 1,
            "limit": limit,
            "next_url": f"http://{host}/api/v1/measurements?{next_query}" if more else None,
            "offset": offset,
            "pages": math.ceil(len(items) / limit),
            "query_time": 0.01,
        },
        "results": page,
    }


async def _huge(request: web.Request, size: int) -> web.StreamResponse:
    """A JSON answer padded to `size` bytes, sent in chunks with no Content-Length."""
    response = web.StreamResponse()
    response.content_type = "application/json"
    await response.prepare(request)
    await response.write(b'{"metadata": {}, "results": [], "pad": "')
    chunk = b"x" * 65_536
    for _ in range(size // len(chunk)):
        await response.write(chunk)
    await response.write(b'"}')
    return response


@asynccontextmanager
async def running(ooni: OoniStandIn) -> AsyncIterator[str]:
    """The stand-in on 127.0.0.1; yields its base URL (for reach.ooni_api)."""
    async with serve(app(ooni)) as port:
        yield f"http://127.0.0.1:{port}"


@contextmanager
def running_in_thread(ooni: OoniStandIn) -> Iterator[str]:
    """The stand-in served from a thread of its own (the CLI runs its own loop)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    holder: list[str] = []

    async def main() -> None:
        async with running(ooni) as base:
            holder.append(base)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield holder[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
