"""The build stage: the edition from a store filled from the sample newsroom."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from mirror.build import builder as build_module
from mirror.build import render
from mirror.build.builder import BuildReport, build_edition
from mirror.config import Config
from mirror.errors import StoreError
from mirror.newsroom.state import DEFAULT_REFERENCE
from mirror.store import Revision, Store
from mirror.trust import manifest
from mirror.trust.keyfiles import build_inputs
from mirror.verify.run import VerifyReport, verify_target

from cli_configs import keyed_config
from stock_minisign import minisign_binary

NOW = DEFAULT_REFERENCE + timedelta(hours=6)


@pytest.fixture
def config(fetched_store: Path, tmp_path: Path) -> Config:
    """A config of its own for each test, with a copy of the fetched store and new keys."""
    return keyed_config(fetched_store, tmp_path)


def build(config: Config, now=NOW) -> BuildReport:  # type: ignore[no-untyped-def]
    inputs = build_inputs(config, now=now)
    with Store(config.state.path) as store:
        return asyncio.run(build_edition(config, store, inputs, now=now))


def tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def article_pages(folder: Path) -> list[str]:
    return [path for path in tree(folder) if manifest.is_article_page(path)]


@pytest.mark.slow
def test_first_build_makes_the_whole_signed_edition(config: Config) -> None:
    report = build(config)
    out = config.edition.output_dir
    files = tree(out)
    assert report.new_version and report.version == 1
    assert report.articles == 8
    for path in ("index.html", "feed.xml", "mirrors.html", "mirrors.json", "verify.html"):
        assert path in files, path
    assert "current" in files and (out / "current").read_text() == "1\n"
    assert "manifests/1.json" in files and "manifests/1.json.minisig" in files
    pages = article_pages(out)
    assert len(pages) == 8
    assert all(page + ".minisig" in files for page in pages)
    assert any(path.startswith("archive/") for path in files)
    assert {"index-en.html", "index-ru.html", "feed-en.xml", "feed-ru.xml"} <= set(files)
    listed = {path for path in files if manifest.is_listed(path)}
    assert report.files == len(listed)
    assert report.largest and report.largest[0][1] >= report.largest[-1][1]


def test_same_store_same_bytes(config: Config, tmp_path: Path) -> None:
    build(config)
    first = tree(config.edition.output_dir)
    other = replace(config, edition=replace(config.edition, output_dir=tmp_path / "again"))
    shutil.copy(config.state.path, tmp_path / "copy.db")
    with Store(tmp_path / "copy.db") as store:
        store.execute("DELETE FROM edition_files")
        store.execute("DELETE FROM editions")
    other = replace(other, state=replace(other.state, path=tmp_path / "copy.db"))
    build(other)
    assert tree(other.edition.output_dir) == first


def test_nothing_new_makes_no_new_version_until_half_the_lifetime(config: Config) -> None:
    build(config)
    before = tree(config.edition.output_dir)
    again = build(config, NOW + timedelta(hours=1))
    assert not again.new_version and again.version == 1
    assert again.written == []
    assert tree(config.edition.output_dir) == before
    late = build(config, NOW + timedelta(days=config.signing.expires_days / 2 + 0.1))
    assert late.new_version and late.version == 2


def test_one_new_article_rewrites_only_its_page_month_index_feed_and_manifests(
    config: Config,
) -> None:
    build(config)
    with Store(config.state.path) as store:
        row = store.add_article(
            "http://127.0.0.1:9/2026/11/20/late-news/", guid=None, feed_url=None,
            published_at=NOW, at=NOW,
        )  # fmt: skip
        store.save_revision(row.id, late_revision(), etag=None, last_modified=None, at=NOW)
    report = build(config, NOW + timedelta(hours=1))
    assert report.new_version and report.version == 2
    written = set(report.written)
    new_pages = [p for p in written if manifest.is_article_page(p)]
    assert len(new_pages) == 1 and new_pages[0].startswith("articles/2026/11/")
    allowed = {new_pages[0], new_pages[0] + ".minisig", "archive/2026-11.html", "current"}
    allowed |= {"archive/2026-11-en.html"}  # the month of its own language
    allowed |= {"index.html", "index-en.html", "index-ru.html", "feed.xml", "feed-en.xml"}
    # the day's English daily files (HTML, EPUB) hold it too; their sizes show in the list
    day = "editions/2026-11-20-en.html"
    book = day.removesuffix(".html") + ".epub"
    allowed |= {day, day + ".minisig", book, book + ".minisig", "editions/index.html"}
    allowed |= {"editions/index-en.html", "editions/index-ru.html"}
    others = {p for p in written if not p.startswith("manifests/")} - allowed
    assert others == set(), others


def late_revision() -> Revision:
    return Revision(
        content_hash="late-1",
        title="Late news from the river",
        authors=("Anna Writer",),
        published_at=NOW,
        updated_at=None,
        lead="The river council met late.",
        language="en",
        canonical_url="http://127.0.0.1:9/2026/11/20/late-news/",
        body_html="<p>The river council met late and published every sample.</p>",
        images=(),
    )


def test_hidden_article_leaves_the_edition(config: Config) -> None:
    build(config)
    with Store(config.state.path) as store:
        victim = store.list_articles()[0]
        assert store.hide_article(str(victim["id"]), NOW) is not None
    report = build(config, NOW + timedelta(hours=1))
    assert report.new_version
    assert victim["path"] in report.removed
    assert not (config.edition.output_dir / victim["path"]).exists()
    assert len(article_pages(config.edition.output_dir)) == 7


def test_gone_articles_follow_the_config(config: Config) -> None:
    build(config)
    with Store(config.state.path) as store:
        victim = store.list_articles()[0]
        store.save_gone(victim["id"], 410, NOW)
    kept = build(config, NOW + timedelta(hours=1))
    assert (config.edition.output_dir / victim["path"]).exists()
    hiding = replace(config, edition=replace(config.edition, gone_articles="hide"))
    hidden = build(hiding, NOW + timedelta(hours=2))
    assert not kept.removed and victim["path"] in hidden.removed


def test_pages_stay_under_the_budget(config: Config) -> None:
    small = replace(config, edition=replace(config.edition, page_budget_bytes=40_000))
    report = build(small)
    for path in article_pages(small.edition.output_dir):
        size = (small.edition.output_dir / path).stat().st_size
        assert size <= 40_000 or path in report.over_budget


def test_stock_minisign_accepts_the_manifest_and_every_page(config: Config) -> None:
    binary = minisign_binary()
    build(config)
    out = config.edition.output_dir
    public = str(config.signing.public_key_file)
    for path in ["manifests/1.json", *article_pages(out)]:
        result = subprocess.run(
            [binary, "-Vm", str(out / path), "-p", public], capture_output=True, text=True
        )
        assert result.returncode == 0, (path, result.stderr)
        assert "Trusted comment" in result.stdout
    page = article_pages(out)[0]
    (out / page).write_bytes((out / page).read_bytes() + b"<!-- forged -->")
    forged = subprocess.run([binary, "-Vm", str(out / page), "-p", public], capture_output=True)
    assert forged.returncode != 0


# the build touches only its own files, and a build that dies leaves the last edition whole


def verify_folder(config: Config, now=NOW) -> VerifyReport:  # type: ignore[no-untyped-def]
    """`mirror verify FOLDER` as a reader runs it, with a memory of its own."""
    key = str(config.signing.public_key_file)
    state = config.path.parent / "reader"
    return asyncio.run(verify_target(str(config.edition.output_dir), key, now=now, state_dir=state))


def test_build_deletes_only_files_it_wrote(config: Config) -> None:
    out = config.edition.output_dir
    foreign = {
        "notes.txt": "ops' own notes\n",
        ".well-known/security.txt": "Contact: mailto:security@example.org\n",
        "articles/README": "not an article\n",
        "manifests/mine.txt": "not a manifest\n",
    }
    for path, text in foreign.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text)
    (out / "empty").mkdir()
    first = build(config)
    assert first.removed == [] and first.foreign == len(foreign)
    with Store(config.state.path) as store:
        victim = store.list_articles()[0]
        store.hide_article(str(victim["id"]), NOW)
    second = build(config, NOW + timedelta(hours=1))
    assert victim["path"] in second.removed and not (out / victim["path"]).exists()
    assert "manifests/1.json" in second.removed and (out / "manifests/2.json").exists()
    assert all((out / path).read_text() == text for path, text in foreign.items())
    assert (out / "empty").is_dir()
    assert second.foreign == len(foreign)


def renamed(config: Config) -> Config:
    """The outlet renamed: every page is rendered again, to other bytes."""
    return replace(config, publication=replace(config.publication, name="The River Courier"))


def fail_on_call(number: int, real: Callable[..., bytes], error: BaseException) -> Callable:  # type: ignore[type-arg]
    calls = []

    def failing(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        if len(calls) == number:
            raise error
        return real(*args, **kwargs)

    return failing


@pytest.mark.parametrize(
    ("function", "number", "error"),
    [
        ("render_article", 5, RuntimeError("a template broke")),
        ("render_article", 3, KeyboardInterrupt()),
        ("render_index", 1, KeyboardInterrupt()),
        ("render_mirrors_json", 1, OSError(28, "No space left on device")),
    ],
)
@pytest.mark.slow
def test_a_build_that_dies_half_way_leaves_the_last_edition_whole(
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    number: int,
    error: BaseException,
) -> None:
    build(config)
    out = config.edition.output_dir
    before = tree(out)
    assert verify_folder(config).ok
    config = renamed(config)
    real = getattr(render, function)
    monkeypatch.setattr(render, function, fail_on_call(number, real, error))
    with pytest.raises(type(error)):
        build(config, NOW + timedelta(hours=1))
    assert tree(out) == before  # nothing staged is left behind either
    report = verify_folder(config, NOW + timedelta(hours=1))
    assert report.ok and report.version == 1
    monkeypatch.setattr(render, function, real)
    again = build(config, NOW + timedelta(hours=2))
    assert again.new_version and again.version == 2
    assert verify_folder(config, NOW + timedelta(hours=2)).ok


@pytest.mark.slow
def test_a_build_that_dies_while_moving_its_files_leaves_a_folder_that_verifies(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(config)
    config = renamed(config)
    real = build_module.EditionFolder._move
    moves: list[int] = []

    def dies_in_the_middle(self: build_module.EditionFolder, paths: list[str]) -> None:
        moves.append(len(paths))
        if len(moves) == 2:  # the pages, after `pending`: half of them, then Ctrl-C
            real(self, paths[: len(paths) // 2])
            raise KeyboardInterrupt
        real(self, paths)

    monkeypatch.setattr(build_module.EditionFolder, "_move", dies_in_the_middle)
    with pytest.raises(KeyboardInterrupt):
        build(config, NOW + timedelta(hours=1))
    out = config.edition.output_dir
    assert (out / "pending").read_text() == "2\n" and (out / "current").read_text() == "1\n"
    report = verify_folder(config, NOW + timedelta(hours=1))
    assert report.ok and report.pending == 2
    assert not list(out.glob(".mirror-build-*"))
    monkeypatch.setattr(build_module.EditionFolder, "_move", real)
    again = build(config, NOW + timedelta(hours=2))
    assert again.new_version and again.version == 3  # past the pending 2 it left
    assert not (out / "pending").exists()
    report = verify_folder(config, NOW + timedelta(hours=2))
    assert report.ok and report.version == 3 and report.pending is None


@pytest.mark.slow
def test_a_build_that_dies_before_the_store_records_it_is_repaired(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(config)
    config = renamed(config)

    def store_fails(self: Store, record: object) -> None:
        raise StoreError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "save_edition", store_fails)
        with pytest.raises(StoreError):
            build(config, NOW + timedelta(hours=1))
    out = config.edition.output_dir
    assert (out / "current").read_text() == "2\n"  # on disk, yet not in the store
    assert verify_folder(config, NOW + timedelta(hours=1)).ok
    again = build(config, NOW + timedelta(hours=2))
    assert again.new_version and again.version == 3
    assert verify_folder(config, NOW + timedelta(hours=2)).ok
    assert not build(config, NOW + timedelta(hours=3)).new_version


@pytest.mark.parametrize("lost", ["index.html", "current", "manifests", "manifests/1.json"])
def test_next_build_repairs_a_folder_that_lost_its_index_pointer_or_manifests(
    config: Config, lost: str
) -> None:
    build(config)
    target = config.edition.output_dir / lost
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    report = build(config, NOW + timedelta(hours=1))
    assert report.new_version and report.version == 2
    assert (config.edition.output_dir / "index.html").is_file()
    assert verify_folder(config, NOW + timedelta(hours=1)).ok
    assert not build(config, NOW + timedelta(hours=2)).new_version
