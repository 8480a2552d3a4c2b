from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mirror.errors import (
    ExpiredError,
    KeyCertificateError,
    ManifestError,
    RollbackError,
    SignatureError,
)
from mirror.trust import minisign
from mirror.trust.manifest import (
    MAX_PATH_CHARS,
    FileEntry,
    Manifest,
    ManifestBuild,
    PartRef,
    SubManifest,
    canonical_json,
    check_manifest_comment,
    check_part,
    check_path,
    check_signed_manifest,
    is_article_page,
    is_listed,
    make_manifest,
    manifest_comment,
    manifest_entries,
    manifest_path,
    page_comment,
    parse_manifest,
    parse_manifest_comment,
    parse_page_comment,
    parse_part,
    parse_pointer,
    part_bytes,
    part_name,
    pointer_bytes,
)

CREATED = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
EXPIRES = CREATED + timedelta(days=7)
KEY_ID = bytes.fromhex("0102030405060708")


def entry(path: str, data: bytes = b"x") -> FileEntry:
    return FileEntry(path, len(data), hashlib.sha256(data).hexdigest())


def sample_files() -> list[FileEntry]:
    return [
        entry("index.html", b"<html>"),
        entry("feed.xml", b"<feed/>"),
        entry("articles/2026/11/a.html", b"a"),
        entry("articles/2026/11/a.html.minisig", b"sig a"),
        entry("articles/2026/10/b.html", b"bb"),
        entry("articles/undated/c.html", b"ccc"),
        entry("archive/2026-11.html", b"archive"),
    ]


def build(files: list[FileEntry] | None = None, version: int = 3) -> ManifestBuild:
    return make_manifest(
        sample_files() if files is None else files,
        version=version,
        epoch=1,
        created=CREATED,
        expires=EXPIRES,
        key_id=KEY_ID,
    )


# ---------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "path",
    [
        "index.html",
        "articles/2026/11/some-slug.html",
        "articles/2026/11/some-slug.html.minisig",
        "a/b/c~d_e.f-g",
        "...",
        "x" * 255,
    ],
)
def test_good_paths_pass_unchanged(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "../secret",
        "articles/../../x",
        "a/./b",
        "a//b",
        "a/",
        "a\\b",
        "a b",
        "a\nb",
        "a\x00b",
        "статья.html",
        "a?b",
        "a#b",
        "a%2e%2e",
        "x" * 256,
        "a/" * (MAX_PATH_CHARS // 2) + "z",
    ],
)
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(ManifestError):
        check_path(path)


def test_non_string_path_is_refused() -> None:
    with pytest.raises(ManifestError):
        check_path(42)  # type: ignore[arg-type]


def test_coverage_and_kinds() -> None:
    assert is_listed("index.html") and is_listed("keys.json") and is_listed("a.html.minisig")
    assert not is_listed("current") and not is_listed("pending")
    assert not is_listed("manifests/3.json") and not is_listed("manifests/parts/ab.json")
    assert is_article_page("articles/2026/11/a.html")
    assert is_article_page("articles/undated/a.html")
    assert not is_article_page("articles/2026/11/a.html.minisig")
    assert not is_article_page("archive/2026-11.html")
    assert part_name("articles/2026/11/a.html") == "2026-11"
    assert part_name("articles/undated/a.html") == "undated"
    assert part_name("archive/2026-11.html") == "site"
    assert manifest_path(7) == "manifests/7.json"


# ---------------------------------------------------------------- building


def test_make_manifest_groups_by_month_and_is_canonical() -> None:
    built = build()
    document = json.loads(built.manifest)
    assert built.manifest == canonical_json(document)
    assert not built.manifest.endswith(b"\n")
    assert b" " not in built.manifest
    assert document["type"] == "mirror-manifest"
    assert document["version"] == 3 and document["epoch"] == 1
    assert document["created"] == "2026-11-24T06:00:00Z"
    assert document["expires"] == "2026-12-01T06:00:00Z"
    assert document["key_id"] == "0807060504030201"  # as minisign prints it
    names = [part["name"] for part in document["parts"]]
    assert names == ["2026-10", "2026-11", "site", "undated"]
    november = next(part for part in document["parts"] if part["name"] == "2026-11")
    assert november["files"] == 2 and november["bytes"] == 1 + 5
    assert built.path == "manifests/3.json"
    for path, data in built.parts.items():
        assert path == f"manifests/parts/{hashlib.sha256(data).hexdigest()}.json"
    assert set(built.entries) == {item.path for item in sample_files()}


def test_make_manifest_is_deterministic_whatever_the_order() -> None:
    files = sample_files()
    assert build(files).manifest == build(list(reversed(files))).manifest
    assert build(files).parts == build(list(reversed(files))).parts


def test_make_manifest_skips_unlisted_paths() -> None:
    files = [*sample_files(), entry("current"), entry("manifests/2.json")]
    assert set(build(files).entries) == {item.path for item in sample_files()}


@pytest.mark.parametrize(
    "bad",
    [
        entry("../x"),
        entry("index.html"),  # twice
        FileEntry("a.html", -1, "0" * 64),
        FileEntry("a.html", 1, "XYZ"),
        FileEntry("a.html", 1, "A" * 64),
    ],
)
def test_make_manifest_refuses_bad_entries(bad: FileEntry) -> None:
    with pytest.raises(ManifestError):
        build([*sample_files(), bad])


def test_make_manifest_refuses_expiry_before_creation() -> None:
    with pytest.raises(ManifestError):
        make_manifest([], version=1, epoch=0, created=EXPIRES, expires=CREATED, key_id=KEY_ID)


def test_times_are_utc_whole_seconds() -> None:
    moscow = timezone(timedelta(hours=3))
    built = make_manifest(
        [],
        version=1,
        epoch=0,
        created=datetime(2026, 11, 24, 9, 0, 0, 999_999, tzinfo=moscow),
        expires=datetime(2026, 12, 1, 9, 0, tzinfo=moscow),
        key_id=KEY_ID,
    )
    assert built.document.created == CREATED
    assert json.loads(built.manifest)["parts"] == []


# ---------------------------------------------------------------- parsing


def test_parse_round_trip() -> None:
    built = build()
    manifest = parse_manifest(built.manifest)
    assert manifest == built.document
    parts = [check_part(ref, built.parts[ref.path]) for ref in manifest.parts]
    assert manifest_entries(parts) == dict(built.entries)


def signed_manifest_document(**changes: object) -> bytes:
    document = json.loads(build().manifest)
    document.update(changes)
    return canonical_json(document)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b"\xff\xfe",
        b'{"type": "mirror-manifest", "type": "mirror-manifest"}',
        b"[" * 100_000 + b"]" * 100_000,
        signed_manifest_document(type="mirror-part"),
        signed_manifest_document(version=-1),
        signed_manifest_document(version=True),
        signed_manifest_document(version="3"),
        signed_manifest_document(epoch=1.5),
        signed_manifest_document(created="yesterday"),
        signed_manifest_document(expires="2026-02-30T00:00:00Z"),
        signed_manifest_document(expires="2026-11-01T00:00:00Z"),  # before created
        signed_manifest_document(key_id="0102"),
        signed_manifest_document(parts={}),
        signed_manifest_document(parts=[{"name": "site"}]),
        signed_manifest_document(
            parts=[{"name": "../x", "sha256": "0" * 64, "files": 0, "bytes": 0}]
        ),
        signed_manifest_document(
            parts=[
                {"name": "site", "sha256": "0" * 64, "files": 0, "bytes": 0},
                {"name": "site", "sha256": "1" * 64, "files": 0, "bytes": 0},
            ]
        ),
    ],
)
def test_parse_manifest_refuses_malformed(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data)


def test_parse_manifest_refuses_nan() -> None:
    data = build().manifest.replace(b'"epoch":1', b'"epoch":NaN')
    with pytest.raises(ManifestError):
        parse_manifest(data)


def test_parse_manifest_refuses_over_the_limit() -> None:
    data = build().manifest
    with pytest.raises(ManifestError, match="over"):
        parse_manifest(data, max_bytes=len(data) - 1)


def part_document(files: list[dict[str, object]], name: str = "site") -> bytes:
    return canonical_json({"type": "mirror-part", "name": name, "files": files})


def file_json(path: str, size: object = 1, sha256: object = "0" * 64) -> dict[str, object]:
    return {"path": path, "size": size, "sha256": sha256}


@pytest.mark.parametrize(
    "data",
    [
        part_document([file_json("../etc/passwd")]),
        part_document([file_json("/abs")]),
        part_document([file_json("a\\b")]),
        part_document([file_json("a.html"), file_json("a.html")]),
        part_document([file_json("a.html", size=-1)]),
        part_document([file_json("a.html", size=2**60)]),
        part_document([file_json("a.html", sha256="0" * 63)]),
        part_document([file_json("a.html", sha256="g" * 64)]),
        part_document([file_json("current")]),
        part_document([file_json("manifests/1.json")]),
        part_document([file_json("articles/2026/11/a.html")]),  # not in the site part
        part_document([file_json("a.html")], name="2026-13-01"),
        part_document([["a.html", 1, "0" * 64]]),  # type: ignore[list-item]
        canonical_json({"type": "mirror-manifest", "name": "site", "files": []}),
    ],
)
def test_parse_part_refuses_malformed(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_part(data)


def test_a_path_listed_in_two_parts_is_refused() -> None:
    one = SubManifest("site", (entry("a.html"),))
    two = SubManifest("2026-11", (entry("a.html"),))
    with pytest.raises(ManifestError, match="twice"):
        manifest_entries([one, two])


def test_check_part_checks_hash_and_what_the_manifest_says() -> None:
    data = part_bytes(SubManifest("site", (entry("a.html", b"abc"),)))
    digest = hashlib.sha256(data).hexdigest()
    assert check_part(PartRef("site", digest, 1, 3), data).files[0].path == "a.html"
    for ref in (
        PartRef("site", "0" * 64, 1, 3),  # hash
        PartRef("site", digest, 2, 3),  # count
        PartRef("site", digest, 1, 4),  # total bytes
        PartRef("2026-11", digest, 1, 3),  # name
    ):
        with pytest.raises(ManifestError):
            check_part(ref, data)


# ---------------------------------------------------------------- pointers and comments


def test_pointers() -> None:
    assert pointer_bytes(12) == b"12\n"
    assert parse_pointer(b"12\n") == 12
    assert parse_pointer(b"12") == 12
    for bad in (b"", b"-1\n", b"012\n", b"1 \n", b"one\n", b"1\n\n", b"9" * 40):
        with pytest.raises(ManifestError):
            parse_pointer(bad)


def test_manifest_comment_round_trip() -> None:
    comment = manifest_comment(4, EXPIRES, 2)
    assert comment == "mirror-manifest version:4 epoch:2 expires:2026-12-01T06:00:00Z"
    stated = parse_manifest_comment(comment)
    assert (stated.version, stated.epoch, stated.expires) == (4, 2, EXPIRES)


def test_manifest_comment_must_agree_with_the_manifest() -> None:
    manifest = Manifest(4, 2, CREATED, EXPIRES, (), KEY_ID)
    check_manifest_comment(manifest, manifest_comment(4, EXPIRES, 2))
    for other in (
        manifest_comment(5, EXPIRES, 2),
        manifest_comment(4, EXPIRES + timedelta(days=1), 2),
        manifest_comment(4, EXPIRES, 3),
        "signature from minisign",
    ):
        with pytest.raises(ManifestError):
            check_manifest_comment(manifest, other)


def test_check_signed_manifest_is_the_one_check_of_a_signed_manifest() -> None:
    key, other = minisign.generate_key(), minisign.generate_key()
    built = make_manifest(
        sample_files(), version=3, epoch=1, created=CREATED, expires=EXPIRES, key_id=key.key_id
    )
    data = built.manifest
    signature = minisign.sign(key, data, manifest_comment(3, EXPIRES, 1))
    assert check_signed_manifest(data, signature, 3, key.public) == built.document
    assert check_signed_manifest(data, signature, 3, key.public, epoch=1, now=CREATED).version == 3
    refusals: list[tuple[type[Exception], dict[str, object], str]] = [
        (ManifestError, {"version": 4}, "holds version 3"),
        (SignatureError, {"key": other.public}, "signed by key"),
        (RollbackError, {"epoch": 2}, "before 2"),
        (KeyCertificateError, {"epoch": 0}, "not granted"),
        (ExpiredError, {"now": EXPIRES}, "may be frozen"),
    ]
    for error, change, words in refusals:
        arguments: dict[str, object] = {"version": 3, "key": key.public, **change}
        with pytest.raises(error, match=words):
            check_signed_manifest(data, signature, **arguments)
    foreign = make_manifest(
        sample_files(), version=3, epoch=1, created=CREATED, expires=EXPIRES, key_id=KEY_ID
    ).manifest
    with pytest.raises(SignatureError, match="names key 0807060504030201 but"):
        check_signed_manifest(
            foreign, minisign.sign(key, foreign, manifest_comment(3, EXPIRES, 1)), 3, key.public
        )
    with pytest.raises(ManifestError, match="does not match manifest"):
        check_signed_manifest(
            data, minisign.sign(key, data, manifest_comment(3, EXPIRES, 0)), 3, key.public
        )


def test_page_comment_is_one_bounded_line() -> None:
    comment = page_comment("articles/2026/11/a.html", 3, "https://example.org/a b\nc/статья")
    assert "\n" not in comment and " b" not in comment
    assert comment == (
        "mirror-page path:articles/2026/11/a.html revision:3 "
        "url:https://example.org/a%20b%0Ac/%D1%81%D1%82%D0%B0%D1%82%D1%8C%D1%8F"
    )
    stated = parse_page_comment(comment)
    assert (stated.path, stated.revision) == ("articles/2026/11/a.html", 3)
    assert page_comment("a.html", 1, "https://x.org/a%20b?q=1").endswith("a%20b?q=1")
    with pytest.raises(ManifestError):
        page_comment("a.html", 1, "https://x.org/" + "a" * 5000)
    with pytest.raises(ManifestError):
        page_comment("../a.html", 1, "https://x.org/")
    with pytest.raises(ManifestError):
        parse_page_comment("mirror-page path:../x revision:1 url:")
