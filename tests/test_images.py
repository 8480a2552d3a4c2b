"""Image probing: accepted formats, pixel limits read from the header, damaged data."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from collections.abc import Callable

import pytest
from PIL import Image

from mirror.errors import ImageError
from mirror.fetch.images import ImageInfo, probe_image

LIMIT = 40_000_000  # pixels, as in SourceConfig


def encoded(image_format: str, size: tuple[int, int] = (64, 48), **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, image_format, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A well-formed PNG that claims `width`×`height` but holds almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    """A baseline JPEG header (SOF0 + SOS) that claims `width`×`height`."""
    components = b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + components
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x00" * 16 + b"\xff\xd9"


@pytest.mark.parametrize(
    ("image_format", "expected"),
    [
        ("JPEG", ImageInfo("jpeg", "image/jpeg", 64, 48)),
        ("PNG", ImageInfo("png", "image/png", 64, 48)),
        ("WEBP", ImageInfo("webp", "image/webp", 64, 48)),
        ("GIF", ImageInfo("gif", "image/gif", 64, 48)),
    ],
)
def test_valid_images(image_format: str, expected: ImageInfo) -> None:
    assert probe_image(encoded(image_format), max_pixels=LIMIT) == expected


def test_progressive_jpeg() -> None:
    data = encoded("JPEG", (1200, 800), progressive=True, quality=80)
    assert probe_image(data, max_pixels=LIMIT) == ImageInfo("jpeg", "image/jpeg", 1200, 800)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a",
        b"<html><body>Not found</body></html>",
        b"\x00" * 1000,
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    ],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageError):
        probe_image(data, max_pixels=LIMIT)


@pytest.mark.parametrize("image_format", ["BMP", "TIFF", "ICO", "PPM"])
def test_other_formats_are_refused(image_format: str) -> None:
    with pytest.raises(ImageError, match="not a JPEG, PNG, GIF or WebP"):
        probe_image(encoded(image_format, (16, 16)), max_pixels=LIMIT)


@pytest.mark.parametrize("header", [png_header, jpeg_header])
def test_huge_claim_fails_from_the_header(header: Callable[[int, int], bytes]) -> None:
    data = header(30000, 30000)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match="pixel"):
            probe_image(data, max_pixels=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # bytes: nothing near 30000×30000×3 was allocated


@pytest.mark.parametrize("header", [png_header, jpeg_header])
def test_claim_over_our_limit_but_under_pillows(header: Callable[[int, int], bytes]) -> None:
    with pytest.raises(ImageError, match="8000×8000 pixels, over the limit of 40000000"):
        probe_image(header(8000, 8000), max_pixels=LIMIT)


def test_limit_is_width_times_height() -> None:
    data = encoded("PNG", (100, 100))
    assert probe_image(data, max_pixels=10_000).width == 100
    with pytest.raises(ImageError, match="over the limit"):
        probe_image(data, max_pixels=9_999)


def test_truncated_jpeg() -> None:
    data = encoded("JPEG", (400, 300), quality=90)
    for cut in (len(data) // 2, len(data) - 40, 300, 20):
        with pytest.raises(ImageError):
            probe_image(data[:cut], max_pixels=LIMIT)


def test_truncated_png() -> None:
    data = encoded("PNG", (400, 300))
    with pytest.raises(ImageError):
        probe_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_png_with_a_bad_checksum() -> None:
    data = bytearray(encoded("PNG", (40, 30)))
    data[-20] ^= 0xFF  # inside IDAT
    with pytest.raises(ImageError):
        probe_image(bytes(data), max_pixels=LIMIT)


@pytest.mark.parametrize("image_format", ["WEBP", "GIF"])
def test_truncated_webp_and_gif(image_format: str) -> None:
    data = encoded(image_format, (300, 200))
    with pytest.raises(ImageError):
        probe_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_pillow_global_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    probe_image(encoded("PNG"), max_pixels=LIMIT)
    assert before == Image.MAX_IMAGE_PIXELS
