"""The hardest article the page tests know: a word that never ends, a long URL, a wide
table, a long <pre>, a photo and a missing image; shared by the browser tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from PIL import Image, ImageDraw

from mirror.build.pictures import data_uri, mime_of, shrink_image
from mirror.build.render import ArticleView, Site

ORIGIN = "https://www.example.org"
SITE = Site(
    name="The Example Times",
    language="en",
    home_url=f"{ORIGIN}/",
    public_key_line="RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3",
    key_id="E3A3B1C2D4F5A6B7",
    languages=("en", "ru"),
)
LONG_WORD = "Донаудампфшиффахртсгезельшафтскапитänsmütze" * 4
LONG_URL = f"{ORIGIN}/{'very-long-path-segment-' * 12}end"


def photo() -> bytes:
    image = Image.new("RGB", (1600, 1067), (40, 90, 160))
    draw = ImageDraw.Draw(image)
    for step in range(0, 1600, 80):
        draw.ellipse((step, step // 2, step + 300, step // 2 + 200), fill=(step % 255, 120, 60))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def body() -> str:
    rows = "".join(f"<td>cell {n} with some words</td>" for n in range(12))
    return (
        "<p>The council met at noon to discuss the budget of the city.</p>"
        f'<figure><img src="{ORIGIN}/img/a.jpg" alt="The square">'
        "<figcaption>The square at noon.</figcaption></figure>"
        f'<p>A word that never ends: {LONG_WORD}. A link: <a href="{LONG_URL}">{LONG_URL}</a>.</p>'
        f"<table><tr>{rows}</tr></table>"
        f"<pre>{'x' * 300}</pre>"
        f'<p><img src="{ORIGIN}/img/missing.jpg" alt="A chart"></p>'
        f'<p>See <a href="{ORIGIN}/2026/10/other/">the other story</a>.</p>'
    )


def article() -> ArticleView:
    uri = data_uri(shrink_image(photo(), max_width=800, quality=75), mime_of("webp"))
    return ArticleView(
        path="articles/2026/11/city-hall.html",
        title="City hall approves the budget",
        authors=("Daria Volkova",),
        published=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
        updated=None,
        lead="The council met at noon.",
        language="en",
        body_html=body(),
        canonical_url=f"{ORIGIN}/2026/11/city-hall/",
        revision=1,
        images={f"{ORIGIN}/img/a.jpg": uri, f"{ORIGIN}/img/missing.jpg": None},
    )
