"""Fewer bytes on the wire: which edition files a mirror stores gzip-compressed, and the
one deterministic gzip they get (pure: bytes in, bytes out).

A mirror with `compress = true` sends text files (pages, feeds, JSON, CSS, ...) as gzip
with `Content-Encoding: gzip` (S3), or keeps `NAME.gz` beside `NAME` for nginx's
`gzip_static` (a folder). The manifest and every signature stay over the plain bytes:
what a browser or `curl --compressed` saves is what was signed. Files that gain little
are left plain: types already compressed (images, fonts), tiny files (signatures, the
`current`/`pending` pointers), and any file whose gzip is not smaller.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Collection

GZIP = "gzip"  # the Content-Encoding
GZIP_SUFFIX = ".gz"  # a folder mirror's compressed sibling: NAME.gz beside NAME
COMPRESSIBLE_SUFFIXES = frozenset({"html", "xml", "json", "css", "js", "txt", "svg"})
MIN_COMPRESS_BYTES = 256  # below this the gzip header and a round trip eat the gain
GZIP_LEVEL = 9  # built once, served many times: the smallest zlib makes


class GzipDecodeError(ValueError):
    """The bytes are not one whole gzip member (damaged, cut short, or trailing data)."""


def is_compressible(path: str) -> bool:
    """Whether `path` is of a type gzip shrinks (text), by its suffix."""
    name = path.rsplit("/", 1)[-1]
    return "." in name and name.rsplit(".", 1)[-1].lower() in COMPRESSIBLE_SUFFIXES


def gzip_bytes(data: bytes) -> bytes:
    """`data` as gzip, the same bytes for the same input (mtime 0, no file name)."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def wire_form(path: str, data: bytes) -> bytes | None:
    """The gzip to store for `path` in place of `data`, or None when it does not pay
    (not text, under MIN_COMPRESS_BYTES, or the gzip is not smaller)."""
    if len(data) < MIN_COMPRESS_BYTES or not is_compressible(path):
        return None
    packed = gzip_bytes(data)
    return packed if len(packed) < len(data) else None


def gunzip_bounded(packed: bytes, max_bytes: int) -> bytes | None:
    """The plain bytes of one gzip member, or None when they pass `max_bytes` (never more
    than `max_bytes` + 1 are inflated: a gzip bomb costs nothing). GzipDecodeError when
    `packed` is not one whole gzip member."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(packed, max_bytes + 1)
    except zlib.error as exc:
        raise GzipDecodeError(f"not gzip: {exc}") from exc
    if len(plain) > max_bytes:
        return None
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        raise GzipDecodeError("not one whole gzip member (cut short, or data after it)")
    return plain


def sibling_decodes_to(packed: bytes, sha256s: Collection[str], max_bytes: int) -> bool:
    """Whether the gzip `packed` (a folder's `NAME.gz`) inflates, to at most `max_bytes`,
    to bytes whose sha256 hex is one of `sha256s`: what verify calls a sound sibling and
    `publish --repair` leaves alone."""
    try:
        plain = gunzip_bounded(packed, max_bytes)
    except GzipDecodeError:
        return False
    return plain is not None and hashlib.sha256(plain).hexdigest() in sha256s
