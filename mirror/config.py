"""The config file: the only place that parses TOML.

`load_config(path)` reads a file and returns a frozen `Config`; every problem is a
`ConfigError` naming the file, the key and what is wrong.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from mirror.errors import ConfigError
from mirror.fetch.urls import AllowedHosts
from mirror.mail.hosts import is_loopback


@dataclass(frozen=True)
class PublicationConfig:
    name: str = "The Example Times"
    language: str = "en"
    home_url: str = "https://www.example.org/"


@dataclass(frozen=True)
class SourceConfig:
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    article_selector: str = ""
    drop_selectors: tuple[str, ...] = ()
    concurrency: int = 16  # requests at once, all hosts
    per_host_concurrency: int = 8  # requests at once to one host
    timeout_s: float = 30.0  # whole request, body included
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 15.0  # longest silence while reading a body
    retries: int = 3  # extra attempts on connection errors, 429 and 5xx
    backoff_s: float = 0.5  # first retry delay; doubles, with jitter
    max_retry_after_s: float = 60.0  # a longer Retry-After fails the request instead
    max_redirects: int = 5
    max_feed_bytes: int = 10_000_000
    max_page_bytes: int = 5_000_000
    max_image_bytes: int = 10_000_000
    max_image_pixels: int = 40_000_000  # width × height
    max_url_length: int = 2_000  # characters
    max_feed_items: int = 500  # entries taken from one feed
    max_sitemap_urls: int = 50_000  # article URLs taken from all sitemaps
    max_sitemaps: int = 100  # child sitemaps followed from sitemap indexes
    max_images_per_article: int = 30  # images beyond this are left out
    revalidate_days: int = 7  # articles younger than this are re-checked when their feed changes
    proxy: str = ""
    user_agent: str = "mirror/0.1 (+https://github.com/)"
    workers: int = 0  # extraction processes; 0: one per core


@dataclass(frozen=True)
class EditionConfig:
    output_dir: Path = Path("edition")
    image_max_width: int = 800  # pixels
    page_budget_bytes: int = 300_000
    feed_max_bytes: int = 1_000_000  # each feed*.xml: oldest bodies, then entries, dropped
    feed_entry_image_bytes: int = 60_000  # images (as data: URIs) in one feed entry's body
    gone_articles: str = "keep"  # keep | hide: an article the origin answers 404/410 for
    daily_articles: int = 20  # a day's single-file edition: at least this many (the newest)
    daily_max_bytes: int = 1_000_000  # one daily file: images shrunk, dropped, then articles
    daily_keep_days: int = 14  # earlier days' files kept on the mirrors

    @property
    def keeps_gone(self) -> bool:
        """Whether the edition (and so the digest's links) keeps articles gone at origin."""
        return self.gone_articles == "keep"


@dataclass(frozen=True)
class SigningConfig:
    secret_key_file: Path = Path("keys/mirror.key")
    public_key_file: Path = Path("keys/mirror.pub")
    root_public_key_file: Path | None = None
    certificate_file: Path = Path("keys/keys.json")  # written by `mirror keys certify`
    expires_days: int = 7
    passphrase_env: str = ""  # optional: env var holding the secret key's passphrase
    passphrase_file: Path | None = None  # optional: file holding it (wins over passphrase_env)


@dataclass(frozen=True)
class MirrorConfig:
    name: str
    type: str  # s3 | directory
    public_url: str
    listed: bool = True
    enabled: bool = True
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    region: str = ""
    addressing_style: str = "path"
    profile: str = ""
    checksums: str = "when_required"  # boto3 request_checksum_calculation
    path: Path | None = None
    compress: bool = True  # text files stored gzip-compressed (S3) or with a .gz beside (folder)
    timeout_s: float = 30.0  # one request (connect, each read; then abandoned)
    deadline_s: float = 120.0  # this mirror's whole publish; past it: a failure, the rest go on


@dataclass(frozen=True)
class PoolConfig:
    """[[pools]]: one provider account that new mirrors are spawned in, on random names."""

    name: str
    type: str  # s3 | directory
    bucket: str  # name pattern with {random8}: "news-{random8}" (also the mirror's name)
    public_url: str  # template with {bucket}
    path: Path | None = None  # directory pools: a folder template with {bucket}
    endpoint_url: str = ""
    region: str = ""
    addressing_style: str = "path"
    profile: str = ""
    provider: str = ""  # aws | minio | b2 (r2 is by hand: no pools); empty: from endpoint_url
    spares: int = 1  # mirrors kept published but not handed out
    max_live: int = 0  # live mirrors of this pool at most; 0: no limit
    listed: bool = True  # false: spawned mirrors are never in mirrors.json/html
    compress: bool = True  # as in [[mirrors]]
    timeout_s: float = 30.0  # as in [[mirrors]]
    deadline_s: float = 120.0

    def mirror(self, bucket: str) -> MirrorConfig:
        """The spawned mirror named `bucket`, as if it were a [[mirrors]] table."""
        folder = Path(str(self.path).replace("{bucket}", bucket)) if self.path else None
        return MirrorConfig(
            name=bucket,
            type=self.type,
            public_url=self.public_url.replace("{bucket}", bucket),
            listed=self.listed,
            bucket=bucket if self.type == "s3" else "",
            endpoint_url=self.endpoint_url,
            region=self.region,
            addressing_style=self.addressing_style,
            profile=self.profile,
            path=folder,
            compress=self.compress,
            timeout_s=self.timeout_s,
            deadline_s=self.deadline_s,
        )


@dataclass(frozen=True)
class DigestConfig:
    sender: str = "The Example Times <digest@example.org>"  # the `from` key
    smtp_url: str = ""
    smtp_username: str = ""
    smtp_password_env: str = "MIRROR_SMTP_PASSWORD"  # noqa: S105 (a variable name)
    smtp_password_file: Path | None = None  # a file holding it instead (wins over the variable)
    ehlo_name: str = ""  # the name given to the relay (it lands in Received headers); empty:
    # the domain of `from`, never this machine's host name
    outbox_dir: Path = Path("outbox")
    rate_per_s: float = 20.0
    min_interval_h: float = 24.0
    links_per_article: int = 3
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""
    unsubscribe_secret_env: str = "MIRROR_UNSUBSCRIBE_SECRET"  # noqa: S105 (a variable name)
    unsubscribe_secret_file: Path | None = None  # a file holding it instead (wins)
    # earlier secrets, separated by spaces: their links still unsubscribe after a rotation
    unsubscribe_previous_secrets_env: str = "MIRROR_UNSUBSCRIBE_PREVIOUS_SECRETS"
    unsubscribe_previous_secrets_file: Path | None = None  # a file instead (wins)
    content: str = "full"  # full | summary: what each article brings
    max_message_bytes: int = 200_000  # past this, the rest of the articles go as summaries
    max_articles: int = 30  # the newest this many of what is new; the rest: on the mirrors
    welcome_articles: int = 10  # the newest this many in the welcome to one added by ops
    attach_edition: bool = False  # attach the day's single-file edition (within max_message_bytes)
    send_revisions: bool = False  # a revised article is mailed again
    neutral: bool = False  # sender name and subject that don't name the outlet
    neutral_sender: str = "Newsletter"  # the display name in neutral mode
    neutral_subject: str = "Weekly notes"  # the subject in neutral mode
    list_id: str = ""  # List-Id, e.g. "digest.example.org"; empty: from the sender's domain
    connections: int = 4  # SMTP connections at once
    per_domain_rate_per_s: float = 5.0  # messages per second to one recipient domain
    retries: int = 3  # more attempts after a 4xx answer or a dropped connection
    max_deferrals: int = 5  # runs a deferred recipient is retried at; then counted failed
    timeout_s: float = 60.0  # one SMTP command
    return_path: str = ""  # "bounces@example.org": the envelope sender is
    # bounces+TOKEN@example.org per subscriber (VERP; mail-in matches the bounces); "": off
    watched_domains: tuple[str, ...] = (
        "mail.ru", "bk.ru", "inbox.ru", "list.ru", "internet.ru", "yandex.ru", "ya.ru",
        "yandex.com", "yandex.by", "yandex.kz", "narod.ru", "rambler.ru", "lenta.ru",
        "autorambler.ru", "myrambler.ru", "ro.ru", "vk.com",
    )  # fmt: skip  # providers under the censor's jurisdiction: they see every digest


@dataclass(frozen=True)
class MailInConfig:
    """[mailin]: readers' mail in (requests, subscriptions, bounces)."""

    address: str = ""  # where readers write: "news@example.org"
    imap_url: str = ""  # imaps://host:993, imap://host (STARTTLS), imap+insecure:// (loopback)
    username: str = ""
    password_env: str = "MIRROR_IMAP_PASSWORD"  # noqa: S105 (a variable name)
    password_file: Path | None = None  # a file holding it instead (wins)
    mailbox: str = "INBOX"
    done_mailbox: str = "Handled"  # handled messages are moved here (created when missing)
    keep: bool = True  # false: handled messages are deleted instead
    trusted_authserv_ids: tuple[str, ...] = ()  # Authentication-Results we believe
    require: str = "dmarc"  # dmarc | none ("none": answers forged senders too: tests only)
    per_sender_per_day: int = 3  # replies to one sender in 24 hours
    global_per_hour: int = 200  # replies to everyone in one hour
    max_message_bytes: int = 1_000_000  # larger messages are skipped unread
    hard_bounces: int = 3  # permanent failures within bounce_window_days disable a subscriber
    bounce_window_days: int = 30
    mirrors_per_reply: int = 3  # mirror URLs one reply carries
    latest_articles: int = 10  # articles in the `latest` reply and the welcome
    batch: int = 100  # messages fetched at once
    timeout_s: float = 60.0  # one IMAP command
    # the key of the senders' keyed hashes (rate limits, logs): 16 characters or more
    sender_secret_env: str = "MIRROR_MAILIN_SECRET"  # noqa: S105 (a variable name)
    sender_secret_file: Path | None = None  # a file holding it instead (wins)


@dataclass(frozen=True)
class ReachConfig:
    """[reach]: what OONI's measurements say of each listed mirror, per country."""

    ooni_api: str = "https://api.ooni.io"
    countries: tuple[str, ...] = ("RU",)  # ISO 3166-1 alpha-2 codes, as OONI's probe_cc
    window_h: float = 24.0  # measurements this recent count; verdicts are cached this long
    anomaly_ratio: float = 0.5  # anomalies / usable measurements above this: blocked
    min_measurements: int = 5  # ... but only over at least this many usable measurements
    auto_block: bool = False  # true: `sync` marks a blocked mirror blocked; false: reports
    timeout_s: float = 30.0  # one API request, body included
    max_pages: int = 5  # pages of measurements followed per mirror and country
    page_size: int = 100  # measurements asked for per page (the API's `limit`)
    max_response_bytes: int = 5_000_000  # one API answer, decompressed
    concurrency: int = 8  # API requests at once


@dataclass(frozen=True)
class StateConfig:
    path: Path = Path("state/mirror.db")


@dataclass(frozen=True)
class Config:
    path: Path  # the file this was read from; relative paths above resolve against its folder
    publication: PublicationConfig = field(default_factory=PublicationConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    edition: EditionConfig = field(default_factory=EditionConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)
    mirrors: tuple[MirrorConfig, ...] = ()
    digest: DigestConfig = field(default_factory=DigestConfig)
    state: StateConfig = field(default_factory=StateConfig)
    mailin: MailInConfig | None = None  # None: no [mailin] section, no mail in
    reach: ReachConfig | None = None  # None: no [reach] section, `sync` asks OONI nothing
    pools: tuple[PoolConfig, ...] = ()

    def pool(self, name: str) -> PoolConfig | None:
        return next((pool for pool in self.pools if pool.name == name), None)


SECTIONS: dict[str, type] = {
    "publication": PublicationConfig,
    "source": SourceConfig,
    "edition": EditionConfig,
    "signing": SigningConfig,
    "digest": DigestConfig,
    "state": StateConfig,
}
# absent: the field is None ([reach] absent: `sync` asks OONI nothing; `mirror reach` uses
# ReachConfig's defaults)
OPTIONAL_SECTIONS: dict[str, type] = {"mailin": MailInConfig, "reach": ReachConfig}
KEY_ALIASES = {("digest", "from"): "sender"}  # TOML key -> field name
CONFIG_ENV = "MIRROR_CONFIG"
DEFAULT_CONFIG = Path("mirror.toml")
MAX_CONFIG_BYTES = 1_000_000
MIRROR_TYPES = ("s3", "directory")
GONE_POLICIES = ("keep", "hide")
MAILIN_REQUIRE = ("dmarc", "none")
IMAP_SCHEMES = ("imaps", "imap", "imap+insecure")
SMTP_SCHEMES = ("smtp", "smtps", "smtp+insecure")
DIGEST_CONTENT = ("full", "summary")
ADDRESSING_STYLES = ("path", "virtual")
CHECKSUM_MODES = ("when_required", "when_supported")
MIRROR_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def find_config(explicit: str | None) -> Path:
    """The config path: `-c`, then $MIRROR_CONFIG, then ./mirror.toml."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV, "")
    return Path(from_env) if from_env else DEFAULT_CONFIG


def load_config(path: Path) -> Config:
    """Read and check a config file; every problem is a ConfigError naming file and key."""
    raw = _read_toml(path)
    base = path.resolve().parent
    _check_keys(raw, [*SECTIONS, *OPTIONAL_SECTIONS, "mirrors", "pools"], str(path), "")
    sections = {
        name: _build_section(name, cls, raw.get(name, {}), str(path), base)
        for name, cls in SECTIONS.items()
    }
    sections |= {
        name: _build_section(name, cls, raw[name], str(path), base)
        for name, cls in OPTIONAL_SECTIONS.items()
        if name in raw
    }
    mirrors = _build_mirrors(raw.get("mirrors", []), str(path), base)
    pools = _build_pools(raw.get("pools", []), str(path), base)
    config = Config(path=path.resolve(), mirrors=mirrors, pools=pools, **sections)
    _validate(config, str(path))
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            "no such config file (use -c FILE or $MIRROR_CONFIG)", path=str(path)
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"larger than {MAX_CONFIG_BYTES} bytes", path=str(path))
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc


def _check_keys(
    table: dict[str, Any], known: list[str], path: str, prefix: str, *, where: str = ""
) -> None:
    """ConfigError for a key not in `known`, with "did you mean" for a close one;
    `where` names the table of an array (`[[mirrors]] 'aws'`)."""
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            place = f" in {where}" if where else ""
            raise ConfigError(f"unknown key{place}{hint}", path=path, key=prefix + key)


def _toml_keys(section: str, cls: type) -> dict[str, str]:
    """TOML key -> field name for one section's dataclass."""
    names = {f.name: f.name for f in fields(cls)}
    for (sec, toml_key), name in KEY_ALIASES.items():
        if sec == section:
            names.pop(name, None)
            names[toml_key] = name
    return names


def _build_section(
    section: str, cls: type, table: Any, path: str, base: Path, *, prefix: str = ""
) -> Any:
    """One table's dataclass; `prefix` names its keys in errors (default `section.`)."""
    if not isinstance(table, dict):
        raise ConfigError("must be a table", path=path, key=section)
    prefix = prefix or f"{section}."
    keys = _toml_keys(section, cls)
    _check_keys(table, list(keys), path, prefix)
    hints = get_type_hints(cls)
    values = {
        keys[k]: _coerce(v, hints[keys[k]], path, f"{prefix}{k}", base) for k, v in table.items()
    }
    for f in fields(cls):
        if f.name not in values and hints[f.name] in (Path, Path | None):
            default = f.default if f.default is not MISSING else None
            if isinstance(default, Path):
                values[f.name] = base / default
    return cls(**values)


def _coerce(value: Any, hint: Any, path: str, key: str, base: Path) -> Any:
    """Check one value against its field's type; resolve paths against the config folder."""
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"must be true or false, not {value!r}", path=path, key=key)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"must be a whole number, not {value!r}", path=path, key=key)
        _check_range(value, path, key)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"must be a number, not {value!r}", path=path, key=key)
        if not math.isfinite(value):
            raise ConfigError(f"must be a finite number, not {value!r}", path=path, key=key)
        _check_range(value, path, key)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, not {value!r}", path=path, key=key)
        return value
    if hint in (Path, Path | None):
        return _path(value, hint is Path, path, key, base)
    if hint == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("must be a list of strings", path=path, key=key)
        return tuple(value)
    raise ConfigError(f"unsupported type {hint}", path=path, key=key)  # pragma: no cover


def _path(value: Any, required: bool, path: str, key: str, base: Path) -> Path | None:
    """A path resolved against the config's folder; empty: None where a path is optional."""
    if not isinstance(value, str):
        raise ConfigError(f"must be a path string, not {value!r}", path=path, key=key)
    if "\0" in value:
        raise ConfigError("must not contain a NUL character", path=path, key=key)
    if not value:
        if required:
            raise ConfigError("must not be empty (a path is needed here)", path=path, key=key)
        return None
    return base / value


def _build_mirrors(items: Any, path: str, base: Path) -> tuple[MirrorConfig, ...]:
    if not isinstance(items, list):
        raise ConfigError("must be an array of tables ([[mirrors]])", path=path, key="mirrors")
    mirrors = []
    for index, table in enumerate(items):
        required = ("name", "type", "public_url")
        mirrors.append(_build_item("mirrors", index, MirrorConfig, table, required, path, base))
    return tuple(mirrors)


def _build_pools(items: Any, path: str, base: Path) -> tuple[PoolConfig, ...]:
    if not isinstance(items, list):
        raise ConfigError("must be an array of tables ([[pools]])", path=path, key="pools")
    pools = []
    for index, table in enumerate(items):
        required = ("name", "type", "bucket", "public_url")
        pools.append(_build_item("pools", index, PoolConfig, table, required, path, base))
    return tuple(pools)


def _build_item(
    section: str,
    index: int,
    cls: type,
    table: Any,
    required: tuple[str, ...],
    path: str,
    base: Path,
) -> Any:
    """One table of an array (`[[mirrors]]`, `[[pools]]`): unknown keys first (a misspelt
    `nmae` gets "did you mean", not "missing 'name'"), named by index (`mirrors[0]`, as
    every config message counts) and, when it has one, by name."""
    key = f"{section}[{index}]"
    if not isinstance(table, dict):
        raise ConfigError("must be a table", path=path, key=key)
    name = table.get("name")
    where = f"[[{section}]] {name!r}" if isinstance(name, str) else ""  # the key says [i]
    _check_keys(table, list(_toml_keys(section, cls)), path, f"{key}.", where=where)
    for name in required:
        if name not in table:
            raise ConfigError(f"missing {name!r}", path=path, key=key)
    return _build_section(section, cls, table, path, base, prefix=f"{key}.")


def _validate(config: Config, path: str) -> None:
    """Checks across values that types alone cannot make."""
    _validate_source(config.source, path)
    if config.digest.ehlo_name and not EHLO_NAME.fullmatch(config.digest.ehlo_name):
        raise ConfigError(
            "must be a host name (mail.example.org) or an address literal ([192.0.2.1])",
            path=path,
            key="digest.ehlo_name",
        )
    if config.digest.unsubscribe_url and not config.digest.unsubscribe_url.startswith("https://"):
        raise ConfigError(
            "must be an https:// URL (mail clients offer one-click unsubscribe only over "
            "https, RFC 8058), or empty",
            path=path,
            key="digest.unsubscribe_url",
        )
    if config.digest.content not in DIGEST_CONTENT:
        raise ConfigError(f"must be one of {DIGEST_CONTENT}", path=path, key="digest.content")
    if config.edition.gone_articles not in GONE_POLICIES:
        raise ConfigError(f"must be one of {GONE_POLICIES}", path=path, key="edition.gone_articles")
    if not _is_http_url(config.publication.home_url):
        raise ConfigError("must be an http(s) URL", path=path, key="publication.home_url")
    _validate_mirrors(config.mirrors, path)
    _validate_pools(config.pools, path)
    _validate_output_dir(config, path)
    _validate_return_path(config.digest.return_path, path)
    _validate_mail_url(config.digest.smtp_url, SMTP_SCHEMES, path, "digest.smtp_url")
    _validate_attachment_room(config, path)
    if config.mailin is not None:
        _validate_mailin(config.mailin, path)
    if config.reach is not None:
        _validate_reach(config.reach, path)


COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")


def _validate_reach(reach: ReachConfig, path: str) -> None:
    if not _is_http_url(reach.ooni_api):
        raise ConfigError("must be an http(s) URL", path=path, key="reach.ooni_api")
    for country in reach.countries:
        if not COUNTRY_CODE.match(country):
            raise ConfigError(
                f"{country!r} is not a two-letter country code (RU, IR, ...)",
                path=path,
                key="reach.countries",
            )


# What a message needs beside a daily file of edition.daily_max_bytes when it is attached:
ATTACHMENT_PARTS_BYTES = 2_000  # the parts' headers, the boundaries and the .minisig
DIGEST_TEXT_ROOM_BYTES = 50_000  # the message's headers and its text (summaries at worst)


def mailed_bytes(file_bytes: int) -> int:
    """A file's size once attached: base64, 76 characters and CRLF a line (57 bytes)."""
    return -(-file_bytes // 57) * 78


def attachment_message_bytes(daily_max_bytes: int) -> int:
    """The least digest.max_message_bytes that carries a daily file of `daily_max_bytes`."""
    return mailed_bytes(daily_max_bytes) + ATTACHMENT_PARTS_BYTES + DIGEST_TEXT_ROOM_BYTES


def _validate_attachment_room(config: Config, path: str) -> None:
    """With attach_edition, a message must have room for the largest daily file."""
    needed = attachment_message_bytes(config.edition.daily_max_bytes)
    if config.digest.attach_edition and config.digest.max_message_bytes < needed:
        raise ConfigError(
            f"is {config.digest.max_message_bytes}: with digest.attach_edition = true it must "
            f"be at least {needed} to carry a daily file of edition.daily_max_bytes = "
            f"{config.edition.daily_max_bytes} (base64 adds a third, plus the text); raise it "
            "or lower edition.daily_max_bytes",
            path=path,
            key="digest.max_message_bytes",
        )


def _validate_return_path(return_path: str, path: str) -> None:
    local, at, domain = return_path.rpartition("@")
    if return_path and (not at or not local or not domain or "+" in local or " " in return_path):
        raise ConfigError(
            "must be an address without '+' (bounces@example.org; each digest goes out "
            "from bounces+TOKEN@example.org), or empty",
            path=path,
            key="digest.return_path",
        )


def _validate_mail_url(url: str, schemes: tuple[str, ...], path: str, key: str) -> None:
    """An SMTP or IMAP URL (empty: unused): a known scheme, a host, and the clear-text
    scheme (`...+insecure://`) only to a loopback host, so a wrong one exits 2 at once."""
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise ConfigError(f"must be a URL of {schemes}", path=path, key=key)
    base, _, insecure = parts.scheme.lower().partition("+")
    if insecure and not is_loopback(parts.hostname or ""):
        raise ConfigError(
            f"{base}+insecure:// (no TLS) is allowed only to a loopback host (localhost, "
            f"127.0.0.1, ::1), not {parts.hostname or 'no host'!r}: use {base}s:// (TLS) "
            f"or {base}:// (STARTTLS)",
            path=path,
            key=key,
        )


def _validate_mailin(mailin: MailInConfig, path: str) -> None:
    if mailin.require not in MAILIN_REQUIRE:
        raise ConfigError(f"must be one of {MAILIN_REQUIRE}", path=path, key="mailin.require")
    if "@" not in mailin.address:
        raise ConfigError(
            "must be the address readers write to (news@example.org)",
            path=path,
            key="mailin.address",
        )
    _validate_mail_url(mailin.imap_url, IMAP_SCHEMES, path, "mailin.imap_url")
    if mailin.keep and mailin.done_mailbox in ("", mailin.mailbox):
        raise ConfigError(
            "must name a mailbox other than mailin.mailbox (handled messages go there), "
            "unless keep = false",
            path=path,
            key="mailin.done_mailbox",
        )
    if mailin.require == "dmarc" and not mailin.trusted_authserv_ids:
        raise ConfigError(
            "must name the receiving server's authserv-id (its Authentication-Results): "
            "without one no sender is authenticated and nothing is ever answered",
            path=path,
            key="mailin.trusted_authserv_ids",
        )


def _validate_source(source: SourceConfig, path: str) -> None:
    try:
        allowed = AllowedHosts.parse(source.allowed_hosts, source.feeds + source.sitemaps)
    except ValueError as exc:
        raise ConfigError(
            f"{exc} (entries are host, host:port, [IPv6] or [IPv6]:port)",
            path=path,
            key="source.allowed_hosts",
        ) from exc
    for key in ("feeds", "sitemaps"):
        for url in getattr(source, key):
            if not _is_http_url(url):
                raise ConfigError(f"{url!r} is not an http(s) URL", path=path, key=f"source.{key}")
            refusal = allowed.refusal(url, "source.allowed_hosts")
            if refusal is not None:
                raise ConfigError(f"{url!r}: {refusal}", path=path, key=f"source.{key}")
    if source.proxy and not source.proxy.startswith(("http://", "https://")):
        raise ConfigError("must be an http(s):// proxy URL", path=path, key="source.proxy")


EHLO_NAME = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"|\[[0-9A-Fa-f:.]{2,45}\]"
)


@dataclass(frozen=True)
class Range:
    """The values a number in the config may take: `low` to `high`, both included
    unless `above` (then the value must be greater than `low`)."""

    low: float
    high: float
    above: bool = False

    def allows(self, value: float) -> bool:
        if not self.low <= value <= self.high:
            return False
        return not (self.above and value == self.low)

    def describe(self) -> str:
        low = f"above {_number(self.low)}" if self.above else f"{_number(self.low)} or more"
        return f"must be {low} and at most {_number(self.high)}"


def _number(value: float) -> str:
    return f"{int(value):_}" if value == int(value) else str(value)


TIMEOUT_S = Range(0, 3600, above=True)  # a time limit of 0 s or of hours means nothing
COUNT = Range(1, 100_000)
BYTES = Range(1, 1_000_000_000)
RATE_PER_S = Range(0, 100_000, above=True)
# Every number of every section, by "section.key" (mirrors: "mirrors.key"); a number
# without a row here is refused by tests/test_config.py, so new keys must add theirs.
RANGES: dict[str, Range] = {
    "source.concurrency": Range(1, 1_000),
    "source.per_host_concurrency": Range(1, 1_000),
    "source.timeout_s": TIMEOUT_S,
    "source.connect_timeout_s": TIMEOUT_S,
    "source.read_timeout_s": TIMEOUT_S,
    "source.retries": Range(0, 20),
    "source.backoff_s": Range(0, 600),
    "source.max_retry_after_s": Range(0, 3600),
    "source.max_redirects": Range(0, 50),
    "source.max_feed_bytes": BYTES,
    "source.max_page_bytes": BYTES,
    "source.max_image_bytes": BYTES,
    "source.max_image_pixels": Range(1, 1_000_000_000),
    "source.max_url_length": Range(1, 100_000),
    "source.max_feed_items": Range(1, 1_000_000),
    "source.max_sitemap_urls": Range(1, 10_000_000),
    "source.max_sitemaps": COUNT,
    "source.max_images_per_article": Range(0, 10_000),
    "source.revalidate_days": Range(0, 3660),
    "source.workers": Range(0, 1_024),  # 0: one per core
    "edition.image_max_width": Range(1, 20_000),
    "edition.page_budget_bytes": Range(1, 100_000_000),
    "edition.daily_articles": Range(1, 1_000),
    "edition.daily_max_bytes": Range(10_000, 100_000_000),
    "edition.daily_keep_days": Range(0, 3660),
    "edition.feed_max_bytes": Range(10_000, 100_000_000),  # an empty feed always fits
    "edition.feed_entry_image_bytes": Range(0, 100_000_000),  # 0: no image in a feed
    "signing.expires_days": Range(1, 366),
    "digest.rate_per_s": RATE_PER_S,
    "digest.min_interval_h": Range(0, 366 * 24),
    "digest.links_per_article": Range(1, 100),
    "digest.max_message_bytes": Range(1, 100_000_000),
    "digest.max_articles": COUNT,
    "digest.welcome_articles": Range(1, 100),
    "digest.connections": Range(1, 1_000),
    "digest.per_domain_rate_per_s": RATE_PER_S,
    "digest.retries": Range(0, 100),
    "digest.max_deferrals": Range(1, 1_000),
    "digest.timeout_s": TIMEOUT_S,
    "mirrors.timeout_s": TIMEOUT_S,
    "mailin.per_sender_per_day": Range(1, 1_000),
    "mailin.global_per_hour": Range(1, 1_000_000),
    "mailin.max_message_bytes": Range(1_000, 100_000_000),
    "mailin.hard_bounces": Range(1, 100),
    "mailin.bounce_window_days": Range(1, 366),
    "mailin.mirrors_per_reply": Range(1, 50),
    "mailin.latest_articles": Range(1, 100),
    "mailin.batch": Range(1, 10_000),
    "mailin.timeout_s": TIMEOUT_S,
    "mirrors.deadline_s": Range(0, 86_400, above=True),
    "reach.window_h": Range(0, 24 * 366, above=True),
    "reach.anomaly_ratio": Range(0, 1),
    "reach.min_measurements": Range(1, 100_000),
    "reach.timeout_s": TIMEOUT_S,
    "reach.max_pages": Range(1, 1_000),
    "reach.page_size": Range(1, 10_000),
    "reach.max_response_bytes": BYTES,
    "reach.concurrency": Range(1, 1_000),
    "pools.spares": Range(0, 100),
    "pools.max_live": Range(0, 10_000),  # 0: no limit
    "pools.timeout_s": TIMEOUT_S,
    "pools.deadline_s": Range(0, 86_400, above=True),
}


ARRAY_INDEX = re.compile(r"\[\d+\]")


def _check_range(value: float, path: str, key: str) -> None:
    """A number outside its key's range (RANGES) is a ConfigError naming the key (in an
    array of tables with its index, `pools[0].spares`, whose range is `pools.spares`)."""
    allowed = RANGES.get(ARRAY_INDEX.sub("", key))
    if allowed is not None and not allowed.allows(value):
        raise ConfigError(f"{allowed.describe()}, not {value!r}", path=path, key=key)


def mirror_key(name: str, key: str = "") -> str:
    """How a message names a mirror's setting once the config has loaded:
    `mirrors[eu-1].timeout_s` (by name; a config error, before names are known to be
    valid, says `mirrors[0].timeout_s`)."""
    return f"mirrors[{name}].{key}" if key else f"mirrors[{name}]"


def _validate_mirrors(mirrors: tuple[MirrorConfig, ...], path: str) -> None:
    seen: set[str] = set()
    for index, mirror in enumerate(mirrors):
        key = f"mirrors[{index}]"
        if not MIRROR_NAME.match(mirror.name):
            raise ConfigError(
                "name must be 1-63 of a-z, 0-9, '-', '_'", path=path, key=f"{key}.name"
            )
        if mirror.name in seen:
            raise ConfigError(f"duplicate mirror name {mirror.name!r}", path=path, key=key)
        seen.add(mirror.name)
        if mirror.type not in MIRROR_TYPES:
            raise ConfigError(f"must be one of {MIRROR_TYPES}", path=path, key=f"{key}.type")
        if not _is_http_url(mirror.public_url):
            raise ConfigError("must be an http(s) URL", path=path, key=f"{key}.public_url")
        if mirror.type == "directory" and mirror.path is None:
            raise ConfigError("a directory mirror needs 'path'", path=path, key=key)
        if mirror.type == "s3" and not mirror.bucket:
            raise ConfigError("an s3 mirror needs 'bucket'", path=path, key=key)
        _validate_storage_names(mirror, path, key)
        if mirror.addressing_style not in ADDRESSING_STYLES:
            raise ConfigError(
                f"must be one of {ADDRESSING_STYLES}", path=path, key=f"{key}.addressing_style"
            )
        if mirror.checksums not in CHECKSUM_MODES:
            raise ConfigError(f"must be one of {CHECKSUM_MODES}", path=path, key=f"{key}.checksums")


RANDOM_PART = "{random8}"
POOL_PROVIDERS = ("", "aws", "minio", "b2")


def _validate_pools(pools: tuple[PoolConfig, ...], path: str) -> None:
    seen: set[str] = set()
    for index, pool in enumerate(pools):
        key = f"pools[{index}]"
        if not MIRROR_NAME.match(pool.name) or pool.name in seen:
            raise ConfigError(
                "name must be 1-63 of a-z, 0-9, '-', '_', once", path=path, key=f"{key}.name"
            )
        seen.add(pool.name)
        if pool.type not in MIRROR_TYPES:
            raise ConfigError(f"must be one of {MIRROR_TYPES}", path=path, key=f"{key}.type")
        if pool.provider not in POOL_PROVIDERS:
            raise ConfigError(
                f"must be one of {POOL_PROVIDERS[1:]}", path=path, key=f"{key}.provider"
            )
        _validate_pool_templates(pool, path, key)


def _validate_pool_templates(pool: PoolConfig, path: str, key: str) -> None:
    from mirror.storage import valid_bucket_name  # it imports this module

    if pool.bucket.count(RANDOM_PART) != 1:
        raise ConfigError(
            f"must hold {RANDOM_PART} once (a random part: news-{RANDOM_PART})",
            path=path,
            key=f"{key}.bucket",
        )
    sample = pool.bucket.replace(RANDOM_PART, "a0a0a0a0")
    valid_bucket_name(sample, key=f"{key}.bucket", path=path)
    if not MIRROR_NAME.match(sample):
        raise ConfigError(
            "must make a mirror name too: a-z, 0-9, '-' (no dots)", path=path, key=f"{key}.bucket"
        )
    if "{bucket}" not in pool.public_url or not _is_http_url(pool.public_url):
        raise ConfigError(
            "must be an http(s) URL template with {bucket}", path=path, key=f"{key}.public_url"
        )
    if pool.type == "directory" and "{bucket}" not in str(pool.path or ""):
        raise ConfigError(
            "a directory pool needs 'path', a folder template with {bucket}", path=path, key=key
        )
    if pool.addressing_style not in ADDRESSING_STYLES:
        raise ConfigError(
            f"must be one of {ADDRESSING_STYLES}", path=path, key=f"{key}.addressing_style"
        )


def _validate_output_dir(config: Config, path: str) -> None:
    """The build writes and deletes in edition.output_dir: refuse a folder that is,
    contains or lies inside one holding the config, keys, store, outbox or a mirror."""
    output = config.edition.output_dir.resolve()
    home = config.path.parent.resolve()
    for what, folder, is_mirror in _guarded_folders(config):
        folder = folder.resolve()
        if output == folder:
            relation = "is"
        elif folder.is_relative_to(output):
            relation = "contains"
        elif output.is_relative_to(folder) and (is_mirror or not home.is_relative_to(folder)):
            relation = "lies inside"  # yet the edition may be a subfolder of the config's
        else:
            continue
        raise ConfigError(
            f"{output} {relation} {what} ({folder}); the edition needs a folder of its own",
            path=path,
            key="edition.output_dir",
        )


def _guarded_folders(config: Config) -> list[tuple[str, Path, bool]]:
    """(what, folder, is a mirror's) of everything a build must never write over or delete."""
    signing = config.signing
    files = {
        "signing.secret_key_file": signing.secret_key_file,
        "signing.public_key_file": signing.public_key_file,
        "signing.root_public_key_file": signing.root_public_key_file,
        "signing.certificate_file": signing.certificate_file,
        "signing.passphrase_file": signing.passphrase_file,
        "digest.smtp_password_file": config.digest.smtp_password_file,
        "digest.unsubscribe_secret_file": config.digest.unsubscribe_secret_file,
        "digest.unsubscribe_previous_secrets_file": config.digest.unsubscribe_previous_secrets_file,
        "state.path": config.state.path,
    }
    if config.mailin is not None:
        files["mailin.password_file"] = config.mailin.password_file
        files["mailin.sender_secret_file"] = config.mailin.sender_secret_file
    guarded = [("the config file's folder", config.path.parent, False)]
    guarded += [(f"the folder of {key}", file.parent, False) for key, file in files.items() if file]
    guarded.append(("digest.outbox_dir", config.digest.outbox_dir, False))
    guarded += [(f"the path of mirror {m.name!r}", m.path, True) for m in config.mirrors if m.path]
    return guarded


def _validate_storage_names(mirror: MirrorConfig, path: str, key: str) -> None:
    """The bucket and prefix, by the rules of mirror.storage (the ones a backend checks
    when it opens), so that a bad one is refused at load."""
    from mirror.storage import normalised_prefix, valid_bucket_name  # it imports this module

    if mirror.type == "s3":
        valid_bucket_name(mirror.bucket, key=f"{key}.bucket", path=path)
    normalised_prefix(mirror.prefix, key=f"{key}.prefix", path=path)


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
