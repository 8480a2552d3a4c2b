"""Images for edition pages: upright, metadata-free, downscaled, re-encoded, inlined."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image, ImageCms

from mirror.build.pictures import data_uri, mime_of, shrink_image
from mirror.errors import ImageError

RED = (220, 20, 20)
BLUE = (20, 20, 220)


def halves(size: tuple[int, int]) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image


def camera_jpeg(size: tuple[int, int] = (1600, 1000), orientation: int = 6) -> bytes:
    """A phone photo: EXIF orientation, camera make, GPS position, ICC profile."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SecretCamMaker"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (55.0, 45.0, 21.0)
    gps[3] = "E"
    gps[4] = (37.0, 37.0, 4.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    halves(size).save(
        buffer, "JPEG", quality=90, exif=exif, icc_profile=icc, comment=b"SecretComment"
    )
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def close(pixel: object, colour: tuple[int, int, int], slack: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= slack for a, b in zip(pixel[:3], colour, strict=True))


@pytest.mark.parametrize("fmt", ["webp", "jpeg"])
def test_camera_photo_is_upright_small_and_clean(fmt: str) -> None:
    data = camera_jpeg()
    assert b"SecretCamMaker" in data  # the test input really carries the metadata
    out = shrink_image(data, max_width=800, quality=75, fmt=fmt)
    image = decoded(out)
    assert image.format == fmt.upper()
    assert image.size == (800, 1280)  # turned upright (portrait), then scaled to 800 wide
    assert close(image.getpixel((400, 50)), RED)  # the stored left half is now the top
    assert close(image.getpixel((400, 1230)), BLUE)
    assert not image.getexif()
    for key in ("exif", "icc_profile", "xmp", "comment"):
        assert key not in image.info
    for secret in (b"SecretCamMaker", b"SecretComment", b"Exif", b"GPS"):
        assert secret not in out


def test_never_upscales() -> None:
    buffer = io.BytesIO()
    halves((300, 200)).save(buffer, "PNG")
    assert decoded(shrink_image(buffer.getvalue(), max_width=800, quality=75)).size == (300, 200)


def test_keeps_the_ratio_of_odd_sizes() -> None:
    buffer = io.BytesIO()
    halves((1001, 333)).save(buffer, "PNG")
    assert decoded(shrink_image(buffer.getvalue(), max_width=500, quality=75)).size == (500, 166)


def test_transparency_becomes_white_rgb() -> None:
    image = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    image.paste((20, 20, 220, 255), (20, 0, 40, 20))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    out = decoded(shrink_image(buffer.getvalue(), max_width=800, quality=90, fmt="jpeg"))
    assert out.mode == "RGB"
    assert close(out.getpixel((5, 10)), (255, 255, 255))
    assert close(out.getpixel((35, 10)), BLUE)


@pytest.mark.parametrize("mode", ["P", "L", "CMYK", "LA"])
def test_other_modes_become_rgb(mode: str) -> None:
    buffer = io.BytesIO()
    halves((64, 48)).convert(mode).save(buffer, "JPEG" if mode == "CMYK" else "PNG")
    assert decoded(shrink_image(buffer.getvalue(), max_width=32, quality=75)).mode == "RGB"


def test_animated_gif_keeps_its_first_frame() -> None:
    frames = [Image.new("RGB", (60, 40), colour) for colour in (RED, BLUE)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    out = decoded(shrink_image(buffer.getvalue(), max_width=30, quality=80))
    assert out.size == (30, 20)
    assert close(out.getpixel((15, 10)), RED)


def test_output_is_deterministic() -> None:
    data = camera_jpeg((1200, 900), orientation=1)
    for fmt in ("webp", "jpeg"):
        first = shrink_image(data, max_width=640, quality=70, fmt=fmt)
        assert shrink_image(data, max_width=640, quality=70, fmt=fmt) == first


@pytest.mark.parametrize("data", [b"", b"not an image", camera_jpeg()[:300]])
def test_bad_data_is_an_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        shrink_image(data, max_width=800, quality=75)


def test_bad_arguments_are_refused() -> None:
    data = camera_jpeg((64, 48))
    with pytest.raises(ValueError, match="webp or jpeg"):
        shrink_image(data, max_width=800, quality=75, fmt="png")
    with pytest.raises(ValueError):
        shrink_image(data, max_width=0, quality=75)


def test_data_uri() -> None:
    out = shrink_image(camera_jpeg((64, 48)), max_width=800, quality=75)
    uri = data_uri(out, mime_of("webp"))
    assert uri.startswith("data:image/webp;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == out
    with pytest.raises(ValueError):
        data_uri(out, 'image/svg+xml"><script>')
