"""Images from the origin, checked before anything decodes them in full.

`probe_image(data, max_pixels=...)` reads the header to learn the format and size,
refuses formats other than JPEG, PNG, GIF and WebP and any image over
`max_pixels` before decoding a single pixel, then checks that the data decodes
(PNG checksums, a reduced JPEG decode, a first-frame decode of GIF and WebP).
Pillow's own `Image.MAX_IMAGE_PIXELS` stays in force as a second guard.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from mirror.errors import ImageError
from mirror.fetch.records import ImageInfo

# Pillow format name → (our name, MIME type). MPO is a JPEG with extra frames (phones).
ACCEPTED_FORMATS = {
    "JPEG": ("jpeg", "image/jpeg"),
    "MPO": ("jpeg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
_OPENERS = ("JPEG", "PNG", "GIF", "WEBP")  # MPO is opened by the JPEG plugin
JPEG_DRAFT_SCALE = 8  # the check decodes JPEGs at 1/8 size: every byte read, little memory


def probe_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Format and size of the image `data`; `ImageError` if it is not one we accept."""
    if not data:
        raise ImageError("empty image")
    with _open(data) as image:
        info = _info(image)
        if info.width * info.height > max_pixels:
            raise ImageError(
                f"image is {info.width}×{info.height} pixels, over the limit of {max_pixels}"
            )
    _check_decodes(data, info)
    return info


def _open(data: bytes) -> Image.Image:
    """The image, header read only; `ImageError` if Pillow cannot or will not open it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=_OPENERS)
    except UnidentifiedImageError as exc:
        raise ImageError("not a JPEG, PNG, GIF or WebP image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image is over Pillow's pixel limit: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"unreadable image header: {exc}") from exc


def _info(image: Image.Image) -> ImageInfo:
    accepted = ACCEPTED_FORMATS.get(image.format or "")
    if accepted is None:
        raise ImageError(f"image format {image.format} is not accepted")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}×{height})")
    return ImageInfo(format=accepted[0], mime=accepted[1], width=width, height=height)


def _check_decodes(data: bytes, info: ImageInfo) -> None:
    """Raise `ImageError` unless the image data is whole and decodes."""
    try:
        if info.format == "png":
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                image.verify()  # every chunk's CRC, up to IEND; decodes nothing
            return
        with Image.open(io.BytesIO(data), formats=_OPENERS) as image:
            if info.format == "jpeg":
                scaled = (info.width // JPEG_DRAFT_SCALE, info.height // JPEG_DRAFT_SCALE)
                image.draft(image.mode, scaled)
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(f"image data is damaged or truncated: {exc}") from exc
