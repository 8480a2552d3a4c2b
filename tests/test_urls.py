from __future__ import annotations

import re

import pytest

from mirror.errors import BadURLError
from mirror.fetch.urls import (
    AllowedHosts,
    canonical_host,
    host_of,
    is_allowed_host,
    normalise_url,
    parse_allowed_host,
    with_slash,
    without_trackers,
)

BASE = "https://www.example.org/news/2024/story.html"


def norm(url: str, base: str | None = None, max_length: int = 2000) -> str:
    return normalise_url(url, base, max_length=max_length)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://WWW.Example.ORG/a", "http://www.example.org/a"),
        ("http://www.example.org:80/a", "http://www.example.org/a"),
        ("https://www.example.org:443", "https://www.example.org/"),
        ("https://www.example.org:8443/a", "https://www.example.org:8443/a"),
        ("http://www.example.org/a#section", "http://www.example.org/a"),
        ("http://www.example.org/a?b=1&c=2#x", "http://www.example.org/a?b=1&c=2"),
        ("http://www.example.org./a", "http://www.example.org/a"),
        ("  http://www.example.org/a\n", "http://www.example.org/a"),
        ("http:\\\\www.example.org\\a", "http://www.example.org/a"),
    ],
)
def test_canonical_form(url: str, expected: str) -> None:
    assert norm(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("other.html", "https://www.example.org/news/2024/other.html"),
        ("../index.html", "https://www.example.org/news/index.html"),
        ("/about", "https://www.example.org/about"),
        ("//static.example.org/x.png", "https://static.example.org/x.png"),
        ("?page=2", "https://www.example.org/news/2024/story.html?page=2"),
        ("#top", "https://www.example.org/news/2024/story.html"),
    ],
)
def test_relative_links_resolve_against_base(url: str, expected: str) -> None:
    assert norm(url, BASE) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h.org/a/b/../c", "http://h.org/a/c"),
        ("http://h.org/a/./b/.", "http://h.org/a/b/"),
        ("http://h.org/a/b/..", "http://h.org/a/"),
        ("http://h.org/../../../etc/passwd", "http://h.org/etc/passwd"),
        ("http://h.org/%2e%2e/%2E%2E/etc/passwd", "http://h.org/etc/passwd"),
        ("http://h.org/a/%2e%2e/%2e/b", "http://h.org/b"),
        ("http://h.org/a/.%2e/.%2E/b", "http://h.org/b"),
        # an escaped slash is no segment separator: a literal segment, kept escaped
        ("http://h.org/a/..%2f..%2fb", "http://h.org/a/..%2F..%2Fb"),
    ],
)
def test_dot_segments_never_climb_above_root(url: str, expected: str) -> None:
    assert norm(url) == expected


def test_relative_dot_dot_cannot_leave_root() -> None:
    assert norm("../../../../../../x", BASE) == "https://www.example.org/x"
    assert norm("%2e%2e/%2e%2e/%2e%2e/%2e%2e/x", BASE) == "https://www.example.org/x"


def test_unicode_host_and_path_are_encoded() -> None:
    url = norm("http://пример.рф/новости/статья?q=тест")
    assert url == (
        "http://xn--e1afmkfd.xn--p1ai/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8/"
        "%D1%81%D1%82%D0%B0%D1%82%D1%8C%D1%8F?q=%D1%82%D0%B5%D1%81%D1%82"
    )
    assert url.isascii()


def test_escapes_are_normalised_not_double_encoded() -> None:
    assert norm("http://h.org/a%2fb%7e?q=%2f") == "http://h.org/a%2Fb~?q=%2F"
    assert norm("http://h.org/a b%zz") == "http://h.org/a%20b%25zz"


def test_numeric_ipv4_forms_become_dotted() -> None:
    assert norm("http://0x7f.1/") == "http://127.0.0.1/"
    assert norm("http://2130706433/") == "http://127.0.0.1/"
    assert norm("http://[0:0::1]:8080/") == "http://[::1]:8080/"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://www.example.org/file",
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,<script>",
        "mailto:editor@example.org",
        "gopher://h.org/",
        "www.example.org/no-scheme",
    ],
)
def test_refused_schemes(url: str) -> None:
    with pytest.raises(BadURLError):
        norm(url)


def test_refused_schemes_even_relative_to_base() -> None:
    with pytest.raises(BadURLError):
        norm("javascript:alert(1)", BASE)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@www.example.org/",
        "http://user@www.example.org/",
        "http://www.example.org:99999/",
        "http://www.example.org:port/",
        "http:///path-only",
        "http://exa mple.org/",
        "http://[fe80::1%25eth0]/",
        "http://[::1/",
        "http://999.1.1.1/",
        "http://-bad-.org/",
    ],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(BadURLError):
        norm(url)


def test_over_long_urls_are_refused() -> None:
    long_url = "http://www.example.org/" + "a" * 2_000
    with pytest.raises(BadURLError):
        norm(long_url)
    assert norm(long_url, max_length=3000) == long_url


def test_length_limit_applies_after_encoding() -> None:
    url = "http://h.org/" + "ж" * 400  # 413 characters, 2,413 once percent-encoded
    with pytest.raises(BadURLError):
        norm(url, max_length=2000)


def test_host_of() -> None:
    assert host_of("https://www.example.org:8443/a") == "www.example.org"
    assert host_of("http://[::1]:80/") == "::1"
    assert host_of("not a url") == ""


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("www.example.org", ("www.example.org",), True),
        ("WWW.Example.ORG", ("www.example.org",), True),
        ("www.example.org.", ("www.example.org",), True),
        ("sub.www.example.org", ("www.example.org",), False),
        ("example.org", ("www.example.org",), False),
        ("evil-www.example.org", ("www.example.org",), False),
        ("localhost", ("127.0.0.1",), False),
        ("127.0.0.1", ("localhost",), False),
        ("127.0.0.1", ("127.0.0.1",), True),
        ("xn--e1afmkfd.xn--p1ai", ("пример.рф",), True),
        ("::1", ("[::1]",), True),
        ("", ("",), False),
    ],
)
def test_is_allowed_host(host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert is_allowed_host(host, allowed) is expected


def test_canonical_host_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        canonical_host("a..b")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.example/a?utm_source=n&id=5&fbclid=abc#f", "https://x.example/a?id=5#f"),
        ("https://x.example/a?utm_medium=a#top", "https://x.example/a#top"),
        ("https://x.example/a?b=1&yclid=2&c=%20x", "https://x.example/a?b=1&c=%20x"),
        ("https://x.example/a?gclid=1&mc_eid=2&lang=ru", "https://x.example/a?lang=ru"),
        ("https://x.example/a?id=5&page=2", "https://x.example/a?id=5&page=2"),  # untouched
        ("https://x.example/a#x?utm_source=1", "https://x.example/a#x?utm_source=1"),  # fragment
        ("https://x.example/watch?v=a%2Fb&t=10", "https://x.example/watch?v=a%2Fb&t=10"),
    ],
)
def test_without_trackers_drops_only_tracking_parameters(url: str, expected: str) -> None:
    assert without_trackers(url) == expected


# ---------------------------------------------------------------- allowed hosts and ports


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("www.example.org", ("www.example.org", None)),
        ("WWW.Example.ORG:8080", ("www.example.org", 8080)),
        ("127.0.0.1:443", ("127.0.0.1", 443)),
        ("[::1]:8443", ("::1", 8443)),
        ("[2001:DB8::1]", ("2001:db8::1", None)),
        ("2001:db8::1", ("2001:db8::1", None)),  # bare IPv6: no port
    ],
)
def test_allowed_host_entries(entry: str, expected: tuple[str, int | None]) -> None:
    assert parse_allowed_host(entry) == expected


@pytest.mark.parametrize(
    "entry",
    ["example.org:", "example.org:http", "example.org:0", "example.org:65536", ":8080",
     "[::1", "[::1]8080", "[::1]:x", "exa mple.org:80", "example.org:８０"],
)  # fmt: skip
def test_bad_allowed_host_entries(entry: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(entry))):  # the message names it
        parse_allowed_host(entry)


def test_a_host_without_a_port_allows_the_default_and_the_configured_ports() -> None:
    allowed = AllowedHosts.parse(
        ["news.example", "static.example"], ["http://news.example:8080/rss.xml"]
    )
    assert allowed.refusal("https://news.example/a") is None
    assert allowed.refusal("http://news.example/a") is None
    assert allowed.refusal("http://news.example:8080/a") is None
    assert allowed.refusal("http://static.example/i.png") is None
    assert allowed.refusal("http://news.example:6379/") == (
        "port 6379 of host news.example is not in allowed_hosts "
        "(list news.example:6379 to allow it)"
    )
    assert allowed.refusal("http://news.example:443/") is not None  # not http's default
    assert allowed.refusal("http://static.example:8080/") is not None  # the feed's host only
    assert allowed.refusal("http://other.example/") == "host other.example is not in allowed_hosts"


def test_a_host_with_ports_allows_only_those() -> None:
    allowed = AllowedHosts.parse(
        ["news.example:8080", "[::1]:8443"], ["http://news.example:9090/rss.xml"]
    )
    assert allowed.refusal("http://news.example:8080/") is None
    assert allowed.refusal("https://[::1]:8443/") is None
    assert allowed.refusal("http://news.example/") is not None
    assert allowed.refusal("http://news.example:9090/") is not None  # listed with a port
    assert allowed.refusal("https://[::1]/") == (
        "port 443 of host ::1 is not in allowed_hosts (list [::1]:443 to allow it)"
    )
    assert allowed.names == ("news.example", "::1")


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://m.example/news", "https://m.example/news/"),
        ("https://m.example/news/", "https://m.example/news/"),
        ("https://m.example", "https://m.example/"),
    ],
)
def test_with_slash_gives_a_folder_url_ending_in_one_slash(url: str, base: str) -> None:
    assert with_slash(url) == base
