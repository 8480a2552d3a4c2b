"""`config_for`: the TOML text of a mirror config that fetches from a sample newsroom."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from mirror.newsroom.pages import STYLE_SELECTORS


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_toml(v) for v in values) + "]"


def config_for(base_url: str, state_dir: str | Path, *, selectors: bool = True) -> str:
    """A minimal valid config: the newsroom's feeds and sitemaps, everything else in
    `state_dir`; with `selectors`, the union of the styles' body and drop selectors."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    root = Path(state_dir)
    host = urlsplit(base).hostname or "127.0.0.1"
    article = ", ".join(s.article_selector for s in STYLE_SELECTORS.values()) if selectors else ""
    drops = [d for s in STYLE_SELECTORS.values() for d in s.drop_selectors] if selectors else []
    return f"""\
[publication]
name = "The Zarechensk Courier"
language = "en"
home_url = {_toml(base)}

[source]
feeds = {_toml_list([base + "rss.xml"])}
sitemaps = {_toml_list([base + "sitemap.xml"])}
allowed_hosts = {_toml_list([host])}
article_selector = {_toml(article)}
drop_selectors = {_toml_list(drops)}

[edition]
output_dir = {_toml(str(root / "edition"))}

[signing]
secret_key_file = {_toml(str(root / "keys" / "mirror.key"))}
public_key_file = {_toml(str(root / "keys" / "mirror.pub"))}

[digest]
outbox_dir = {_toml(str(root / "outbox"))}

[state]
path = {_toml(str(root / "state" / "mirror.db"))}
"""
