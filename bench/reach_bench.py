"""Reach benchmark (issue 12): `python bench/reach_bench.py [--quick]`.

Untimed setup: the OONI stand-in of the tests (tests/ooni_server.py) on 127.0.0.1 in a
thread of this process, answering each request after --latency-ms; --mirrors listed
directory mirrors (and 5 unlisted ones, which must never be asked about), each with
--measurements measurements in each of RU and IR inside the window, a third of them
anomalies, so each pair takes ceil(measurements / page_size) pages.

Timed: `mirror -c CONFIG reach --json --refresh` as a subprocess from launch to exit
(every verdict asked of the API), then `mirror reach --json` again (every verdict from
the cache: no request). Every figure is printed with its target and PASS/FAIL; exit
status 1 if any failed.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchkit import Results, note_launcher, print_load, print_machine, run_mirror, write_config

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from ooni_server import OoniStandIn, result, running_in_thread

COUNTRIES = ("RU", "IR")
TARGET_S = 5.0


def stand_in(mirrors: int, measurements: int, latency_ms: float) -> OoniStandIn:
    ooni = OoniStandIn(delay_s=latency_ms / 1000)
    now = datetime.now(UTC)
    for index in range(mirrors):
        url = f"https://s3.example-cloud.net/news-{index:04d}/"
        for country in COUNTRIES:
            items = [
                result(url, country, now - timedelta(minutes=10 * n + 1), anomaly=n % 3 == 0, n=n,
                       asn=f"AS{1000 + n % 7}")
                for n in range(measurements)
            ]  # fmt: skip
            ooni.add(url, country, items)
    return ooni


def config(folder: Path, api: str, mirrors: int, page_size: int) -> Path:
    path = write_config(folder, "http://127.0.0.1:9/", 10)
    tables = ""
    for index in range(mirrors + 5):
        listed = index < mirrors
        tables += (
            f'\n[[mirrors]]\nname = "m{index:04d}"\ntype = "directory"\n'
            f'path = "mirrors/m{index:04d}"\nlisted = {str(listed).lower()}\n'
            f'public_url = "https://s3.example-cloud.net/news-{index:04d}/"\n'
        )
    reach = (
        f'\n[reach]\nooni_api = "{api}"\ncountries = {list(COUNTRIES)!r}\n'
        f"page_size = {page_size}\nmax_pages = 10\nconcurrency = 8\n"
    ).replace("'", '"')
    path.write_text(path.read_text() + tables + reach)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 mirrors")
    parser.add_argument("--mirrors", type=int, default=50)
    parser.add_argument("--measurements", type=int, default=150, help="per mirror and country")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="per API answer")
    args = parser.parse_args()
    mirrors = 5 if args.quick else args.mirrors
    print_machine()
    note_launcher()
    results = Results()
    ooni = stand_in(mirrors, args.measurements, args.latency_ms)
    pages = math.ceil(args.measurements / args.page_size)
    with tempfile.TemporaryDirectory() as folder, running_in_thread(ooni) as api:
        path = config(Path(folder), api, mirrors, args.page_size)
        print_load("before")
        cold = run_mirror(["-c", str(path), "reach", "--json", "--refresh"])
        report = cold.report()
        asked = ooni.requests
        warm = run_mirror(["-c", str(path), "reach", "--json"])
        warm.report()
        print_load("after")
        names = {entry["name"] for entry in report["mirrors"]}
        verdicts = sum(len(entry["countries"]) for entry in report["mirrors"])
    label = f"`mirror reach`, {mirrors} mirrors x {len(COUNTRIES)} countries"
    results.add(
        f"{label}, {args.latency_ms:g} ms per answer",
        f"{cold.wall_s:.2f} s (CPU {cold.cpu_s:.2f} s), exit {cold.status}",
        f"< {TARGET_S:g} s",
        cold.wall_s < TARGET_S and cold.status == 0,
    )
    expected = mirrors * len(COUNTRIES) * pages
    results.add("API requests", f"{asked} ({pages} page(s) per pair)", str(expected),
                asked == expected)  # fmt: skip
    results.add("verdicts", str(verdicts), str(mirrors * len(COUNTRIES)),
                verdicts == mirrors * len(COUNTRIES))  # fmt: skip
    results.add("unlisted mirrors in the report", str(len(names - {f"m{i:04d}" for i in
                range(mirrors)})), "0", names == {f"m{i:04d}" for i in range(mirrors)})  # fmt: skip
    results.add(
        "second `mirror reach` (cached)",
        f"{warm.wall_s:.2f} s, {ooni.requests - asked} requests",
        "0 requests",
        ooni.requests == asked and warm.status == 0,
    )
    return results.exit_status()


if __name__ == "__main__":
    sys.exit(main())
