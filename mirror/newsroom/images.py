"""Deterministic sample photos: a gradient with shapes, a band of text-like marks and
noise, drawn from a seed derived from the image name. Pure: name in, bytes out."""

from __future__ import annotations

import functools
import hashlib
import io
import random

from PIL import Image, ImageDraw

FORMATS = {
    "jpg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
    "png": ("PNG", "image/png"),
}
JPEG_VARIANTS = 48  # distinct JPEG pictures per size
_SKETCH_WIDTH = 240  # pixels; drawn small, then scaled up (fast, and still photo-sized)

# A 1×1 transparent GIF, the lazy-loading placeholder.
PLACEHOLDER_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def render_image(name: str, size: tuple[int, int], ext: str = "jpg") -> bytes:
    """The image called `name` at `size` (width, height) pixels, encoded as `ext`.

    JPEGs come from a small set of cached pictures, made unique by a comment segment
    naming the image: serving a thousand photo-sized JPEGs then costs no encoding.
    """
    if ext == "jpg":
        variant = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4]) % JPEG_VARIANTS
        encoded = _jpeg_variant(variant, size)
        return encoded[:2] + _jpeg_comment(f"mirror sample newsroom: {name}") + encoded[2:]
    return _encoded(name, size, ext)


def warm_up(size: tuple[int, int]) -> None:
    """Make every cached JPEG picture of `size` now, so later requests cost no encoding."""
    for variant in range(JPEG_VARIANTS):
        _jpeg_variant(variant, size)


@functools.lru_cache(maxsize=4 * JPEG_VARIANTS)
def _jpeg_variant(variant: int, size: tuple[int, int]) -> bytes:
    return _encode(_picture(f"variant:{variant}", size), "jpg")


@functools.lru_cache(maxsize=64)
def _encoded(name: str, size: tuple[int, int], ext: str) -> bytes:
    return _encode(_picture(name, size), ext)


def _jpeg_comment(text: str) -> bytes:
    """A JPEG COM segment."""
    data = text.encode()[:60000]
    return b"\xff\xfe" + (len(data) + 2).to_bytes(2, "big") + data


def _encode(picture: Image.Image, ext: str) -> bytes:
    out = io.BytesIO()
    pil_format = FORMATS[ext][0]
    options = {"quality": 82} if pil_format in ("JPEG", "WEBP") else {"compress_level": 1}
    picture.save(out, pil_format, **options)
    return out.getvalue()


def _picture(seed: str, size: tuple[int, int]) -> Image.Image:
    """A photo-like picture: a sketch scaled up, with a little noise for texture."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    width, height = size
    sketch = _sketch(rng, (_SKETCH_WIDTH, max(1, _SKETCH_WIDTH * height // width)))
    picture = sketch.resize(size, Image.Resampling.BILINEAR)
    return Image.blend(picture, _noise(size), 0.12)


@functools.lru_cache(maxsize=4)
def _noise(size: tuple[int, int]) -> Image.Image:
    return Image.effect_noise(size, 24).convert("RGB")


def _sketch(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A small picture: two-colour vertical gradient, a few shapes, a 'caption' band."""
    width, height = size
    top, bottom = _colour(rng), _colour(rng)
    gradient = Image.linear_gradient("L").resize(size)
    picture = Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), gradient)
    draw = ImageDraw.Draw(picture)
    for _ in range(rng.randint(3, 7)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randint(height // 10, height // 3)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=_colour(rng))
    band_top = height * 3 // 4
    draw.rectangle((0, band_top, width, height), fill=(240, 238, 230))
    for row in range(band_top + 3, height - 3, 5):
        x = 4
        while x < width - 10:
            word = rng.randint(3, 14)
            draw.rectangle((x, row, min(x + word, width - 4), row + 2), fill=(40, 40, 40))
            x += word + rng.randint(2, 4)
    return picture


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))
