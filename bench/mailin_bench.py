"""Mail-in benchmark (issue 11): `python bench/mailin_bench.py [--quick]`.

Untimed setup: the sample newsroom in its own process (bench/counted_newsroom.py, 10
articles), `mirror fetch`, `mirror keygen`, `mirror build`; --bounced subscribers (the
ones the bounces name); Debian's Dovecot on 127.0.0.1 (bench/dovecot_tools.py) with
--messages requests APPENDed to INBOX: mixed commands in English and Russian (mirrors,
latest, help, subscribe, unsubscribe, anything else), each from its own sender with the
receiving server's Authentication-Results, 10% of them failing DMARC (unauthenticated:
no reply) and 5% delivery status notifications to a subscriber's VERP address.

Timed: `mirror -c CONFIG mail-in once --json` as a subprocess from launch to exit, its
replies going to Postfix's `smtp-sink -c` (bench/postfix_tools.py) on 127.0.0.1, its
peak RSS polled from /proc. Then a second `once` with nothing new: its IMAP round trips
are the commands Dovecot logged for that session (SELECT, UID SEARCH, LOGOUT).
Every figure is printed with its target and PASS/FAIL; exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from benchkit import (
    MB,
    Results,
    TreeSampler,
    fetch,
    keygen,
    mirror_launcher,
    newsroom,
    note_launcher,
    print_load,
    print_machine,
    run_mirror,
    write_config,
)
from dovecot_tools import PASSWORD, USERNAME, Dovecot, dovecot_server
from postfix_tools import find_postfix, smtp_sink

from mirror.mailin.tokens import verp_address
from mirror.store import Store

WALL_TARGET_S = 20.0
PEAK_RSS_TARGET = 200 * MB
ROUND_TRIPS_TARGET = 3
ADDRESS = "news@courier.example.org"
AUTHSERV = "mx.courier.example.org"
RETURN_PATH = "bounces@courier.example.org"
UNSUBSCRIBE_SECRET = "mailin-bench-unsubscribe-secret-0123456789"
MAILIN_SECRET = "mailin-bench-sender-secret-0123456789"
SUBJECTS = ("mirrors", "зеркала", "latest", "новости", "help", "помощь", "subscribe",
            "подписаться", "unsubscribe", "where are you?")  # fmt: skip


def config_text(base: str, sink_port: int, dovecot: Dovecot) -> str:
    digest = (
        '[digest]\nfrom = "The Zarechensk Courier <digest@courier.example.org>"\n'
        f'smtp_url = "smtp+insecure://127.0.0.1:{sink_port}"\n'
        'unsubscribe_url = "https://news.example.org/unsubscribe"\n'
        f'unsubscribe_mailto = "leave@courier.example.org"\nreturn_path = "{RETURN_PATH}"\n'
    )
    mailin = (
        f'\n[mailin]\naddress = "{ADDRESS}"\nimap_url = "{dovecot.url}"\n'
        f'username = "{USERNAME}"\ntrusted_authserv_ids = ["{AUTHSERV}"]\n'
        "global_per_hour = 1_000_000\nlatest_articles = 10\n"
    )
    mirrors = "".join(
        f'\n[[mirrors]]\nname = "{name}"\ntype = "directory"\npath = "mirrors/{name}"\n'
        f'public_url = "https://{name}.example.net/m/"\n'
        for name in ("alpha", "beta", "gamma", "delta")
    )
    return base.replace("[digest]\n", digest, 1) + mirrors + mailin


def request(number: int, *, authenticated: bool) -> bytes:
    domain = f"d{number}.example.net"
    message = EmailMessage()
    dmarc = "pass" if authenticated else "fail"
    message["Authentication-Results"] = (
        f"{AUTHSERV}; dkim={dmarc} header.d={domain}; dmarc={dmarc} header.from={domain}"
    )
    message["From"] = f"Reader {number} <reader{number}@{domain}>"
    message["To"] = ADDRESS
    message["Subject"] = SUBJECTS[number % len(SUBJECTS)]
    message["Message-ID"] = f"<request{number}@{domain}>"
    message.set_content(f"Message number {number}.\n")
    return message.as_bytes()


def dsn(number: int, verp: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        f"To: {verp}\r\nDelivered-To: {verp}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn{number}@mx.example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe digest could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--B--\r\n"
    ).encode()


def messages(count: int, subscribers: list[int]) -> list[bytes]:
    """Every 20th a bounce, every 10th (of the rest) unauthenticated."""
    made = []
    for number in range(count):
        if number % 20 == 19:
            subscriber = subscribers[number % len(subscribers)]
            secret = UNSUBSCRIBE_SECRET.encode()
            made.append(dsn(number, verp_address(RETURN_PATH, secret, subscriber)))
        else:
            made.append(request(number, authenticated=number % 10 != 3))
    return made


def env() -> dict[str, str]:
    return {
        **os.environ, "MIRROR_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET,
        "MIRROR_MAILIN_SECRET": MAILIN_SECRET, "MIRROR_IMAP_PASSWORD": PASSWORD,
    }  # fmt: skip


def set_up(folder: Path, args: argparse.Namespace, sink_port: int, dovecot: Dovecot) -> Path:
    started = time.perf_counter()
    with newsroom(args.articles) as server:
        config = write_config(folder, server.base_url, args.articles)
        fetch(config)
        config.write_text(config_text(config.read_text(), sink_port, dovecot))
    keygen(config)
    built = run_mirror(["-c", str(config), "build", "--json"], env=env())
    if built.status != 0:
        raise RuntimeError(f"build exited {built.status}: {built.stderr[-2000:]}")
    with Store(folder / "state" / "mirror.db") as store:
        now = datetime.now(UTC)
        ids = [store.add_subscriber(f"s{n}@b{n}.example.org", "en", now)[0] for n in range(50)]
    dovecot.append_all("INBOX", messages(args.messages, ids))
    print(f"    setup done in {time.perf_counter() - started:.1f} s")
    return config


def timed_once(config: Path) -> tuple[float, int, dict[str, object], str]:
    """`mirror mail-in once --json`: wall seconds, peak RSS, its report, its stderr."""
    command = [*mirror_launcher(), "-c", str(config), "mail-in", "once", "--json"]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with TreeSampler(process.pid) as sampler:
        out, err = process.communicate()
    wall_s = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"mail-in once exited {process.returncode}: {err[-2000:]}")
    return wall_s, sampler.peak.tree_bytes, json.loads(out), err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="requests waiting")
    parser.add_argument("--articles", type=int, default=10)
    parser.add_argument("--postfix-root", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 messages")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages = 100
    print_machine()
    postfix = find_postfix(args.postfix_root)
    results = Results()
    with (
        tempfile.TemporaryDirectory(prefix="mailin-bench-") as tmp,
        smtp_sink(postfix, Path(tmp)) as sink,
        dovecot_server() as dovecot,
    ):
        print(f"\n[setup, untimed] {args.messages} messages APPENDed to Dovecot")
        config = set_up(Path(tmp), args, sink.port, dovecot)
        print_load("before the timed run")
        sent_before = sink.count()
        wall_s, peak, report, _ = timed_once(config)
        print(f"    report: {json.dumps(report, ensure_ascii=False)}")
        replied = int(str(report["replied"]))
        received = sink.settled_count(sent_before + replied) - sent_before
        results.add(
            f"`mail-in once`, {args.messages} waiting", f"{wall_s:.2f} s",
            f"< {WALL_TARGET_S:g} s", wall_s < WALL_TARGET_S,
        )  # fmt: skip
        results.add("messages handled", str(report["handled"]), str(args.messages),
                    report["handled"] == args.messages)  # fmt: skip
        results.add("replies at smtp-sink", f"{received} (report: {replied})", "= replied",
                    received == replied)  # fmt: skip
        results.add("peak RSS (process tree)", f"{peak / MB:.0f} MB",
                    f"< {PEAK_RSS_TARGET // MB} MB", peak < PEAK_RSS_TARGET)  # fmt: skip
        offset = dovecot.log_size()
        _, _, again, _ = timed_once(config)
        time.sleep(1)  # Dovecot's log process writes a session's lines shortly after
        commands = dovecot.commands_since(offset)
        names = ", ".join(" ".join(c.split()[:2]) for c in commands)
        ok = len(commands) <= ROUND_TRIPS_TARGET and again["handled"] == 0
        results.add("IMAP round trips of a second `once`", f"{len(commands)} ({names})",
                    f"<= {ROUND_TRIPS_TARGET}", ok)  # fmt: skip
    return results.exit_status()


if __name__ == "__main__":
    note_launcher()
    sys.exit(main())
