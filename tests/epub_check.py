"""The EPUB 3 structure checker the EPUB tests share (test_epub, test_editions_browser):
the unzipped package's container, OPF, manifest, spine, nav and every XHTML file's
links, checked with lxml."""

from __future__ import annotations

import io
import posixpath
import zipfile

from lxml import etree

OPF = "{http://www.idpf.org/2007/opf}"
XHTML = "{http://www.w3.org/1999/xhtml}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


def opened(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def package(archive: zipfile.ZipFile) -> tuple[str, etree._Element]:
    container = etree.fromstring(archive.read("META-INF/container.xml"))
    rootfile = container.find(f"{CONTAINER}rootfiles/{CONTAINER}rootfile")
    assert rootfile is not None
    assert rootfile.get("media-type") == "application/oebps-package+xml"
    path = rootfile.get("full-path") or ""
    return path, etree.fromstring(archive.read(path))


def assert_valid_epub3(data: bytes) -> None:
    """The structure EPUB 3 requires, checked on the unzipped package."""
    archive = opened(data)
    first = archive.infolist()[0]
    assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
    assert archive.read("mimetype") == b"application/epub+zip"
    assert data[30:38] == b"mimetype"  # the first local header's name, no extra field
    opf_path, opf = package(archive)
    assert opf.get("version") == "3.0"
    base = posixpath.dirname(opf_path)
    items = {item.get("id"): item for item in opf.iterfind(f"{OPF}manifest/{OPF}item")}
    hrefs = {posixpath.join(base, item.get("href") or "") for item in items.values()}
    others = set(archive.namelist()) - {"mimetype", "META-INF/container.xml", opf_path}
    assert hrefs == others
    spine = [ref.get("idref") for ref in opf.iterfind(f"{OPF}spine/{OPF}itemref")]
    assert spine and all(idref in items for idref in spine)
    navs = [item for item in items.values() if "nav" in (item.get("properties") or "").split()]
    assert len(navs) == 1
    for path in others:
        if path.endswith(".xhtml"):
            assert_resolving_xhtml(archive, path)


def assert_resolving_xhtml(archive: zipfile.ZipFile, path: str) -> None:
    tree = etree.fromstring(archive.read(path))  # well-formed XML or an exception
    assert tree.tag == f"{XHTML}html"
    names = set(archive.namelist())
    for element in tree.iter():
        for attribute in ("href", "src"):
            target = element.get(attribute)
            if target is None:
                continue
            assert not target.startswith("data:")
            if target.startswith(("http:", "https:", "mailto:")):
                assert attribute == "href", f"{path}: remote {attribute} {target}"
                continue
            inside = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            assert inside.split("#")[0] in names, f"{path}: {target} does not resolve"
