from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mirror import config as config_module
from mirror.config import find_config, load_config
from mirror.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config" / "mirror.example.toml"

MINIMAL = """
[source]
feeds = ["https://news.example.org/rss"]
allowed_hosts = ["news.example.org"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mirror.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_and_resolves_paths_against_its_folder() -> None:
    config = load_config(EXAMPLE)
    assert config.state.path == EXAMPLE.parent.resolve() / "state" / "mirror.db"
    assert config.mirrors[0].name == "aws-frankfurt"
    assert config.mirrors[1].path == EXAMPLE.parent.resolve() / "public"
    assert config.digest.sender.startswith("The Example Times")


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for section, cls in config_module.SECTIONS.items():
        for toml_key in config_module._toml_keys(section, cls):
            assert re.search(rf"^{toml_key} = ", text, re.M), f"{section}.{toml_key} undocumented"
    for field in dataclasses.fields(config_module.MirrorConfig):
        assert re.search(rf"^{field.name} = ", text, re.M), f"mirrors.{field.name} undocumented"


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.source.concurrency == 16
    assert config.source.feeds == ("https://news.example.org/rss",)
    assert config.state.path == tmp_path.resolve() / "state" / "mirror.db"
    assert config.edition.output_dir == tmp_path.resolve() / "edition"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[source]\nconcurency = 3\n", "source.concurency", "did you mean 'source.concurrency'"),
        ("[sorce]\n", "sorce", "did you mean 'source'"),
        ("[source]\nconcurrency = 'many'\n", "source.concurrency", "whole number"),
        ("[source]\nconcurrency = 0\n", "source.concurrency", "above 0"),
        ("[source]\nretries = -1\n", "source.retries", "0 or more"),
        ("[source]\nfeeds = ['ftp://x.org/rss']\n", "source.feeds", "not an http(s) URL"),
        (
            "[source]\nfeeds = ['https://x.org/rss']\n",
            "source.feeds",
            "not in source.allowed_hosts",
        ),
        ("[source]\nproxy = 'socks5://p:1'\n", "source.proxy", "proxy"),
        ("[edition]\ngone_articles = 'drop'\n", "edition.gone_articles", "one of"),
        ("[digest]\nehlo_name = 'my host'\n", "digest.ehlo_name", "host name"),
        (
            "[digest]\nunsubscribe_url = 'http://x.example/u'\n",
            "digest.unsubscribe_url",
            "https://",
        ),
        ("[digest]\nehlo_name = 'a\\r\\nMAIL'\n", "digest.ehlo_name", "host name"),
        ("[[mirrors]]\nname = 'a'\ntype = 's3'\n", "mirrors[0]", "missing 'public_url'"),
        (
            "[[mirrors]]\nname='a'\ntype='ftp'\npublic_url='https://m.org/'\n",
            "mirrors[0].type",
            "one of",
        ),
        (
            "[[mirrors]]\nname='a'\ntype='directory'\npublic_url='file:///x'\npath='p'\n",
            "mirrors[0].public_url",
            "http(s) URL",
        ),
        (
            "[[mirrors]]\nname='a'\ntype='directory'\npublic_url='https://m.org/'\npath='p'\n"
            "[[mirrors]]\nname='a'\ntype='directory'\npublic_url='https://n.org/'\npath='q'\n",
            "mirrors[1]",
            "duplicate mirror name",
        ),
        (
            "[[mirrors]]\nname='Bad Name'\ntype='directory'\npublic_url='https://m.org/'\n",
            "mirrors[0].name",
            "name must be",
        ),
        ("[state\npath = 1", "", "not valid TOML"),
        (
            "[[mirrors]]\nname='a'\ntype='s3'\nbucket='My_Bucket'\npublic_url='https://m.org/'\n",
            "mirrors[0].bucket",
            "not a valid bucket name",
        ),
        (
            "[[mirrors]]\nname='a'\ntype='s3'\nbucket='192.168.1.1'\npublic_url='https://m.org/'\n",
            "mirrors[0].bucket",
            "not a valid bucket name",
        ),
        (
            "[[mirrors]]\nname='a'\ntype='s3'\nbucket='ok-bucket'\nprefix='../x/'\n"
            "public_url='https://m.org/'\n",
            "mirrors[0].prefix",
            "not a valid prefix",
        ),
        (
            "[[mirrors]]\nname='a'\ntype='s3'\nbucket='ok-bucket'\nprefix='/abs/'\n"
            "public_url='https://m.org/'\n",
            "mirrors[0].prefix",
            "not a valid prefix",
        ),
    ],
)
def test_bad_config_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert key in message
    assert words in message


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def test_find_config_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIRROR_CONFIG", raising=False)
    assert find_config(None) == Path("mirror.toml")
    monkeypatch.setenv("MIRROR_CONFIG", "/etc/mirror/x.toml")
    assert find_config(None) == Path("/etc/mirror/x.toml")
    assert find_config("given.toml") == Path("given.toml")


def test_allowed_hosts_take_ports(tmp_path: Path) -> None:
    text = """
[source]
feeds = ["http://news.example.org:8080/rss"]
sitemaps = ["https://[2001:db8::1]:8443/sitemap.xml"]
allowed_hosts = ["news.example.org:8080", "[2001:db8::1]:8443", "static.example.org"]
"""
    config = load_config(write(tmp_path, text))
    assert config.source.allowed_hosts[0] == "news.example.org:8080"


@pytest.mark.parametrize(
    ("allowed", "key", "message"),
    [
        ('"news.example.org:http"', "source.allowed_hosts", "'news.example.org:http'"),
        ('"[::1"', "source.allowed_hosts", "'[::1'"),
        ('"news.example.org:99999"', "source.allowed_hosts", "1-65535"),
        ('"news.example.org:8080"', "source.feeds", "port 443 of host news.example.org"),
    ],
)
def test_bad_allowed_hosts_are_named(tmp_path: Path, allowed: str, key: str, message: str) -> None:
    text = f'[source]\nfeeds = ["https://news.example.org/rss"]\nallowed_hosts = [{allowed}]\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.key == key
    assert message in str(caught.value)
