"""The fetch stage against the sample newsroom on 127.0.0.1: cold fetch, revalidation,
revisions, chrome changes, takedowns, and every page style extracted cleanly."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mirror.config import Config, load_config
from mirror.fetch.origin import Response
from mirror.fetch.stage import ArticleJob, FetchedImage, Fetcher, FetchReport, fetch_articles
from mirror.newsroom import (
    CHROME_MARKERS,
    NewsroomOptions,
    RunningNewsroom,
    config_for,
    serve_newsroom,
)
from mirror.newsroom.state import DEFAULT_REFERENCE
from mirror.store import Store

NOW = DEFAULT_REFERENCE + timedelta(hours=6)


@pytest.fixture
async def newsroom() -> AsyncIterator[RunningNewsroom]:
    async with serve_newsroom(NewsroomOptions(articles=12, feed_items=0)) as running:
        yield running


@pytest.fixture
def config(newsroom: RunningNewsroom, tmp_path: Path) -> Config:
    path = tmp_path / "mirror.toml"
    text = config_for(newsroom.base_url, tmp_path).replace(
        "[source]\n", "[source]\nworkers = 2\nrevalidate_days = 365\n"
    )
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def fetch(config: Config, now=NOW) -> FetchReport:  # type: ignore[no-untyped-def]
    with Store(config.state.path) as store:
        return await fetch_articles(config, store, now=now)


async def test_cold_fetch_stores_every_article_clean_with_its_image(
    newsroom: RunningNewsroom, config: Config
) -> None:
    report = await fetch(config)
    assert report.failed == []
    assert report.new == 12
    assert report.images == 12
    with Store(config.state.path) as store:
        for article in newsroom.newsroom.articles:
            row = store.find_article(newsroom.newsroom.url_of(article))
            assert row is not None and row.state == "ok", article.path
            revision = store.revision(row.id)
            assert revision is not None
            assert revision.title == article.title
            assert revision.language.startswith(article.lang)
            for paragraph in article.paragraphs:
                assert paragraph[:60] in revision.body_html or _text_in(
                    paragraph, revision.body_html
                )
            for marker in CHROME_MARKERS:
                assert marker not in revision.body_html, (article.style, marker)
            assert len(revision.images) == 1
            assert store.image_for_url(revision.images[0]) is not None


def _text_in(paragraph: str, body_html: str) -> bool:
    """A paragraph's words appear in order in the body, whatever markup sits between."""
    import html
    import re

    text = re.sub(r"<[^>]+>", "", html.unescape(body_html))
    return " ".join(paragraph.split()) in " ".join(text.split())


async def test_nothing_changed_means_no_article_request(
    newsroom: RunningNewsroom, config: Config
) -> None:
    await fetch(config)
    newsroom.newsroom.requests.clear()
    report = await fetch(config)
    assert newsroom.newsroom.article_requests() == []
    assert report.new == report.changed == report.not_modified == 0
    assert report.feeds_not_modified >= 1
    assert report.failed == []
    conditional = [
        entry for entry in newsroom.newsroom.requests.entries if entry.path == "/rss.xml"
    ]
    assert conditional and all(entry.conditional for entry in conditional)


async def test_revision_is_stored_and_unchanged_articles_revalidate_with_304(
    newsroom: RunningNewsroom, config: Config
) -> None:
    await fetch(config)
    target = newsroom.newsroom.articles[-1]
    newsroom.newsroom.revise_article(target.id)
    newsroom.newsroom.requests.clear()
    report = await fetch(config)
    assert report.changed == 1
    assert report.new == 0
    assert report.not_modified == 11
    requests = newsroom.newsroom.article_requests()
    assert requests and all(entry.conditional for entry in requests)
    with Store(config.state.path) as store:
        row = store.find_article(newsroom.newsroom.url_of(target.id))
        assert row is not None and row.revision == 2
        assert store.revision(row.id, 1) != store.revision(row.id, 2)


async def test_chrome_change_alone_makes_no_new_revision(
    newsroom: RunningNewsroom, config: Config
) -> None:
    await fetch(config)
    newsroom.newsroom.change_chrome()
    newsroom.newsroom.add_article()  # the feed changes, so young articles are re-checked
    report = await fetch(config)
    assert report.new == 1
    assert report.changed == 0
    assert report.unchanged + report.not_modified == 12


async def test_removed_article_is_recorded_as_gone(
    newsroom: RunningNewsroom, config: Config
) -> None:
    await fetch(config)
    target = newsroom.newsroom.articles[-2]
    url = newsroom.newsroom.url_of(target.id)
    newsroom.newsroom.remove_article(target.id, status=410)
    newsroom.newsroom.add_article()
    report = await fetch(config)
    assert report.gone == 1
    assert report.failed == []
    with Store(config.state.path) as store:
        row = store.find_article(url)
        assert row is not None and row.state == "gone"


async def test_old_articles_are_not_revalidated(newsroom: RunningNewsroom, config: Config) -> None:
    await fetch(config)
    newsroom.newsroom.add_article()
    newsroom.newsroom.requests.clear()
    await fetch(config, NOW + timedelta(days=800))
    paths = {entry.path for entry in newsroom.newsroom.article_requests()}
    assert paths == {newsroom.newsroom.articles[-1].path}


async def test_automatic_extraction_without_selectors(
    newsroom: RunningNewsroom, tmp_path: Path
) -> None:
    path = tmp_path / "mirror.toml"
    text = config_for(newsroom.base_url, tmp_path, selectors=False)
    path.write_text(text.replace("[source]\n", "[source]\nworkers = 2\n"), encoding="utf-8")
    report = await fetch(load_config(path))
    assert report.failed == []
    assert report.new == 12


async def test_sitemaps_backfill_articles_the_feed_no_longer_lists(tmp_path: Path) -> None:
    async with serve_newsroom(NewsroomOptions(articles=10, feed_items=3)) as running:
        path = tmp_path / "mirror.toml"
        text = config_for(running.base_url, tmp_path).replace(
            "[source]\n", "[source]\nworkers = 2\n"
        )
        path.write_text(text, encoding="utf-8")
        config = load_config(path)
        assert config.source.sitemaps  # the newsroom's sitemap index
        report = await fetch(config)
        assert report.failed == []
        assert report.new == 10  # 3 from the feed, 7 more from the monthly sitemaps
        sitemap_requests = [
            p for p in running.newsroom.requests.counts if p.startswith("/sitemaps/")
        ]
        assert sitemap_requests


async def test_a_run_lets_go_of_each_image_once_it_is_stored(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Images' bytes are not held until the run ends (they were: every image of a run)."""
    held: list[int] = []
    run = Fetcher.run

    async def run_then_count(self: Fetcher) -> None:
        await run(self)
        gc.collect()
        held.append(sum(isinstance(o, FetchedImage) for o in gc.get_objects()))

    monkeypatch.setattr(Fetcher, "run", run_then_count)
    report = await fetch(config)
    assert report.images == 12
    assert held == [0]


async def test_a_run_keeps_only_the_feeds_validators(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed's body is let go once it is parsed, not held while the articles are fetched."""
    held: list[int] = []
    run_jobs = Fetcher.run_jobs

    async def run_jobs_then_count(self: Fetcher, jobs: list[ArticleJob]) -> None:
        await run_jobs(self, jobs)
        gc.collect()
        held.append(sum(isinstance(o, Response) for o in gc.get_objects()))

    monkeypatch.setattr(Fetcher, "run_jobs", run_jobs_then_count)
    report = await fetch(config)
    assert report.new == 12
    assert held == [0]
    with Store(config.state.path) as store:  # the validators are saved all the same
        assert any(store.feed_validators(url) != (None, None) for url in config.source.feeds)


# The CLI's main process, as `mirror fetch` runs it; prints the parser modules it loaded.
FETCH_IMPORTS_PROBE = """
import atexit, sys
from mirror.cli import main
PARSERS = ("trafilatura", "readability", "lxml", "feedparser", "PIL", "babel", "courlan",
           "htmldate", "justext", "nh3", "mirror.fetch.extract", "mirror.fetch.feeds",
           "mirror.fetch.images")
atexit.register(lambda: print(sorted(m for m in PARSERS if m in sys.modules)))
sys.argv = ["mirror", "-c", sys.argv[1], "fetch"]
main()
"""


async def test_fetch_leaves_the_parsers_to_the_workers(config: Config, tmp_path: Path) -> None:
    """Feeds, pages and images are parsed in the workers; their results come back as
    `mirror.fetch.records`, so the main process never imports a parser (about 20 MB)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FETCH_IMPORTS_PROBE,
        str(tmp_path / "mirror.toml"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b" 12 new, " in stderr
    assert stdout.decode().strip() == "[]"
