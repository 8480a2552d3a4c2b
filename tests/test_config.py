from __future__ import annotations

import dataclasses
import re
import typing
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
    for section, cls in {**config_module.SECTIONS, **config_module.OPTIONAL_SECTIONS}.items():
        for toml_key in config_module._toml_keys(section, cls):
            assert re.search(rf"^{toml_key} = ", text, re.M), f"{section}.{toml_key} undocumented"
    for field in dataclasses.fields(config_module.MirrorConfig):
        assert re.search(rf"^{field.name} = ", text, re.M), f"mirrors.{field.name} undocumented"
    pools = text[text.index("[[pools]]") :]
    for field in dataclasses.fields(config_module.PoolConfig):
        assert re.search(rf"^{field.name} = ", pools, re.M), f"pools.{field.name} undocumented"


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
        ("[source]\nconcurrency = 0\n", "source.concurrency", "1 or more"),
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
        (  # storage's rules, checked at load: S3 reserves the prefix, an edition path has no space
            "[[mirrors]]\nname='a'\ntype='s3'\nbucket='xn--news'\npublic_url='https://m.org/'\n",
            "mirrors[0].bucket",
            "not a valid bucket name",
        ),
        (
            "[[mirrors]]\nname='a'\ntype='directory'\npath='p'\nprefix='a b/'\n"
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


def numeric_keys() -> list[tuple[str, dataclasses.Field]]:  # type: ignore[type-arg]
    """Every int or float field of every section, as "section.key"."""
    sections = {
        **config_module.SECTIONS,
        **config_module.OPTIONAL_SECTIONS,
        "mirrors": config_module.MirrorConfig,
        "pools": config_module.PoolConfig,
    }
    found = []
    for section, cls in sections.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if hints[field.name] in (int, float):
                found.append((f"{section}.{field.name}", field))
    return found


def test_every_number_has_a_range_its_default_is_in() -> None:
    keys = numeric_keys()
    assert len(keys) >= 30
    for key, field in keys:
        assert key in config_module.RANGES, f"{key} has no row in config.RANGES"
        if field.default is not dataclasses.MISSING:
            assert config_module.RANGES[key].allows(field.default), key
    stale = set(config_module.RANGES) - {key for key, _ in keys}
    assert stale == set(), stale


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[edition]\noutput_dir = ''\n", "edition.output_dir", "must not be empty"),
        ("[state]\npath = ''\n", "state.path", "must not be empty"),
        ("[signing]\nsecret_key_file = ''\n", "signing.secret_key_file", "must not be empty"),
        ("[signing]\npublic_key_file = ''\n", "signing.public_key_file", "must not be empty"),
        ("[signing]\ncertificate_file = ''\n", "signing.certificate_file", "must not be empty"),
        ("[digest]\noutbox_dir = ''\n", "digest.outbox_dir", "must not be empty"),
        ('[state]\npath = "a\\u0000b"\n', "state.path", "NUL"),
        ("[signing]\nexpires_days = 999999999\n", "signing.expires_days", "at most 366"),
        ("[signing]\nexpires_days = 0\n", "signing.expires_days", "1 or more"),
        ("[source]\ntimeout_s = inf\n", "source.timeout_s", "finite"),
        ("[source]\ntimeout_s = nan\n", "source.timeout_s", "finite"),
        ("[source]\ntimeout_s = 0\n", "source.timeout_s", "above 0"),
        ("[source]\ntimeout_s = 3601\n", "source.timeout_s", "at most 3_600"),
        ("[digest]\nrate_per_s = -inf\n", "digest.rate_per_s", "finite"),
        ("[digest]\nmin_interval_h = 1e300\n", "digest.min_interval_h", "at most"),
        ("[source]\nmax_page_bytes = 10_000_000_000_000\n", "source.max_page_bytes", "at most"),
        ("[source]\nconcurrency = 123456789\n", "source.concurrency", "at most 1_000"),
        ("[edition]\nimage_max_width = -5\n", "edition.image_max_width", "1 or more"),
    ],
)
def test_out_of_range_numbers_and_empty_paths_are_named(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    assert words in str(caught.value) and str(path) in str(caught.value)


def test_an_empty_optional_path_means_none(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[signing]\nroot_public_key_file = ''\n"))
    assert config.signing.root_public_key_file is None


def test_numbers_at_the_ends_of_their_ranges_load(tmp_path: Path) -> None:
    text = (
        "[source]\ntimeout_s = 3600\nretries = 0\n[signing]\nexpires_days = 366\n"
        "[digest]\nmin_interval_h = 0\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.source.timeout_s == 3600.0 and config.signing.expires_days == 366


MIRROR = "[[mirrors]]\nname = 'www'\ntype = 'directory'\npublic_url = 'https://m.org/'\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[edition]\noutput_dir = '.'\n", "is the config file's folder"),
        ("[edition]\noutput_dir = '..'\n", "contains the config file's folder"),
        ("[edition]\noutput_dir = 'keys'\n", "is the folder of signing.secret_key_file"),
        ("[edition]\noutput_dir = 'keys/edition'\n", "lies inside the folder of signing.secret"),
        (
            "[edition]\noutput_dir = 'pub'\n[signing]\npublic_key_file = 'pub/k.pub'\n",
            "is the folder of signing.public_key_file",
        ),
        (
            "[edition]\noutput_dir = 'root'\n[signing]\nroot_public_key_file = 'root/r/k.pub'\n",
            "contains the folder of signing.root_public_key_file",
        ),
        (
            "[edition]\noutput_dir = 'c/e'\n[signing]\ncertificate_file = 'c/keys.json'\n",
            "lies inside the folder of signing.certificate_file",
        ),
        ("[edition]\noutput_dir = 'state'\n", "is the folder of state.path"),
        ("[edition]\noutput_dir = 'state/edition'\n", "lies inside the folder of state.path"),
        ("[edition]\noutput_dir = 'outbox'\n", "is digest.outbox_dir"),
        (
            "[edition]\noutput_dir = 's'\n[digest]\nsmtp_password_file = 's/smtp'\n",
            "is the folder of digest.smtp_password_file",
        ),
        ("[edition]\noutput_dir = 'edition'\n" + MIRROR + "path = 'edition'\n", "is the path"),
        ("[edition]\noutput_dir = 'e'\n" + MIRROR + "path = 'e/www'\n", "contains the path"),
        ("[edition]\noutput_dir = 'w/e'\n" + MIRROR + "path = 'w'\n", "lies inside the path"),
        ("[edition]\noutput_dir = 'e'\n" + MIRROR + "path = '.'\n", "lies inside the path"),
    ],
)
def test_output_dir_that_would_hold_what_the_build_must_not_touch_is_refused(
    tmp_path: Path, text: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == "edition.output_dir"
    assert words in str(caught.value)


def test_output_dir_clash_is_seen_through_symbolic_links(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "elsewhere").symlink_to(tmp_path / "state")
    with pytest.raises(ConfigError, match=r"is the folder of state\.path"):
        load_config(write(tmp_path, "[edition]\noutput_dir = 'elsewhere'\n"))


@pytest.mark.parametrize(
    "text",
    [
        "[edition]\noutput_dir = 'edition'\n",  # a subfolder of the config's: the default
        "[edition]\noutput_dir = 'edition'\n[signing]\nsecret_key_file = 'mirror.key'\n"
        "public_key_file = 'mirror.pub'\n[state]\npath = 'mirror.db'\n",
        "[edition]\noutput_dir = 'edition'\n" + MIRROR + "path = 'public'\n",
        "[edition]\noutput_dir = 'edition-2'\n" + MIRROR + "path = 'edition'\n",
    ],
)
def test_output_dir_of_its_own_loads(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text))
    assert config.edition.output_dir.parent == tmp_path.resolve()


MAILIN = "[mailin]\naddress = 'news@example.org'\ntrusted_authserv_ids = ['mx.example.org']\n"


def test_mailin_is_none_without_its_section_and_gets_defaults_with_it(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).mailin is None
    mailin = load_config(write(tmp_path, MAILIN)).mailin
    assert mailin is not None and mailin.per_sender_per_day == 3 and mailin.require == "dmarc"
    assert mailin.password_env == "MIRROR_IMAP_PASSWORD" and mailin.keep is True
    assert mailin.trusted_authserv_ids == ("mx.example.org",)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MAILIN + "require = 'spf'\n", "mailin.require"),
        ("[mailin]\naddress = 'news@example.org'\n", "mailin.trusted_authserv_ids"),
        ("[mailin]\nrequire = 'none'\n", "mailin.address"),
        (MAILIN + "imap_url = 'http://x'\n", "mailin.imap_url"),
        (MAILIN + "per_sender_per_day = 0\n", "mailin.per_sender_per_day"),
        (MAILIN + "adress = 'x'\n", "mailin.adress"),
        ("[digest]\nreturn_path = 'bounces+x@example.org'\n", "digest.return_path"),
        ("[digest]\nreturn_path = 'bounces'\n", "digest.return_path"),
    ],
)
def test_bad_mailin_values_are_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.key == key


def test_mailin_without_authentication_loads_only_when_said_so(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[mailin]\naddress = 'a@b.org'\nrequire = 'none'\n"))
    assert config.mailin is not None and config.mailin.trusted_authserv_ids == ()
    config = load_config(write(tmp_path, "[digest]\nreturn_path = 'bounces@example.org'\n"))
    assert config.digest.return_path == "bounces@example.org"
