"""The page chrome around articles: navigation, cookie banner, donation pop-up,
related links, newsletter box, footer and scripts. Pure text in, HTML text out."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass


@dataclass(frozen=True)
class ChromeText:
    """The fixed wording of one language's chrome (none of it ever in an article body)."""

    site_name: str
    nav: tuple[str, ...]
    cookie: str
    cookie_button: str
    donate_title: str
    donate_text: str
    donate_button: str
    newsletter_title: str
    newsletter_text: str
    related_heading: str
    promo_title: str
    share: str
    read_also: str
    advert: str
    footer: str


CHROME_TEXT = {
    "en": ChromeText(
        site_name="The Zarechensk Courier",
        nav=("Latest", "City Hall", "Courts", "Environment", "Opinion", "Podcasts & Video"),
        cookie="We use cookies to measure our audience and keep this site running.",
        cookie_button="Accept all cookies",
        donate_title="Independent journalism needs your support",
        donate_text="We are funded by readers, not by the authorities. A small monthly gift "
        "keeps our reporters in the field.",
        donate_button="Donate monthly",
        newsletter_title="Sign up for the morning briefing",
        newsletter_text="The day's five most important stories, in your inbox at 7 a.m.",
        related_heading="More from the Courier",
        promo_title="Ten years of the Courier: how our newsroom survived",
        share="Share on Telegram",
        read_also="Read also:",
        advert="Advertisement",
        footer="All rights reserved. Reprinting requires the editors' written permission.",
    ),
    "ru": ChromeText(
        site_name="Зареченский курьер",
        nav=("Главное", "Город", "Суды", "Экология", "Мнения", "Подкасты и видео"),
        cookie="Мы используем файлы cookie, чтобы считать аудиторию и улучшать сайт.",
        cookie_button="Принять все cookie",
        donate_title="Поддержите независимую журналистику",
        donate_text="Нас финансируют читатели, а не власти. Ежемесячное пожертвование "
        "помогает нашим корреспондентам продолжать работу.",
        donate_button="Помогать ежемесячно",
        newsletter_title="Подпишитесь на утреннюю рассылку",
        newsletter_text="Пять главных новостей дня — в вашем почтовом ящике в семь утра.",
        related_heading="Ещё из «Курьера»",
        promo_title="Десять лет «Курьеру»: как выжила наша редакция",
        share="Поделиться в Telegram",
        read_also="Читайте также:",
        advert="Реклама на сайте",
        footer="Все права защищены. Перепечатка только с письменного разрешения редакции.",
    ),
}

# Phrases that appear only in chrome (outside the body or in junk the drop selectors remove).
CHROME_MARKERS: tuple[str, ...] = tuple(
    phrase
    for text in CHROME_TEXT.values()
    for phrase in (
        text.nav[-1],
        text.cookie,
        text.cookie_button,
        text.donate_title,
        text.donate_button,
        text.newsletter_title,
        text.related_heading,
        text.promo_title,
        text.share,
        text.read_also,
        text.advert,
        text.footer,
    )
)
# The subset planted inside the body; only the drop selectors remove these.
IN_BODY_JUNK_MARKERS: tuple[str, ...] = tuple(
    phrase for text in CHROME_TEXT.values() for phrase in (text.share, text.read_also, text.advert)
)
# The rest: chrome outside the body, which even automatic extraction must leave out.
OUTER_CHROME_MARKERS: tuple[str, ...] = tuple(
    phrase for phrase in CHROME_MARKERS if phrase not in IN_BODY_JUNK_MARKERS
)

TRACKER_SCRIPT = "https://tracker.example.net/t.js"
TRACKER_PIXEL = "https://tracker.example.net/pixel.gif"

LOGO_SVG = (
    '<svg class="site-logo" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 32" '
    'width="120" height="32" role="img" aria-label="logo"><title>Courier</title>'
    '<rect width="32" height="32" rx="6" fill="#b3001b"/>'
    '<path d="M8 22 L16 8 L24 22 Z" fill="#fff"/>'
    '<path d="M40 20 h72" stroke="#222" stroke-width="3"/></svg>'
)


def esc(text: str) -> str:
    """Text escaped for an HTML text node or a double-quoted attribute."""
    return html.escape(text, quote=True)


def nonce(chrome_version: int) -> str:
    """A script nonce that changes with the chrome version."""
    return hashlib.sha256(f"chrome:{chrome_version}".encode()).hexdigest()[:16]


def site_header(lang: str, home: str) -> str:
    """Logo, navigation menu and the cookie banner."""
    text = CHROME_TEXT[lang]
    items = "".join(
        f'<li class="menu-item"><a href="{home}section/{i}/">{esc(label)}</a></li>'
        for i, label in enumerate(text.nav)
    )
    return (
        f'<header class="site-header"><a class="site-branding" href="{home}">{LOGO_SVG}'
        f'<span class="site-title">{esc(text.site_name)}</span></a>'
        f'<nav class="main-navigation" aria-label="menu"><ul class="menu">{items}</ul></nav>'
        "</header>"
        f'<div id="cookie-notice" class="cookie-banner" role="dialog"><p>{esc(text.cookie)}</p>'
        f'<button type="button" class="cookie-accept">{esc(text.cookie_button)}</button></div>'
    )


@dataclass(frozen=True)
class RelatedLink:
    """One entry of the related-links block."""

    title: str
    url: str


def related_block(lang: str, links: tuple[RelatedLink, ...], home: str) -> str:
    """The related-links block, with a fixed promoted entry after the real ones."""
    text = CHROME_TEXT[lang]
    items = "".join(f'<li><a href="{esc(link.url)}">{esc(link.title)}</a></li>' for link in links)
    promo = f'<li class="promo"><a href="{home}about/ten-years/">{esc(text.promo_title)}</a></li>'
    return (
        f'<section class="related-posts"><h2>{esc(text.related_heading)}</h2>'
        f"<ul>{items}{promo}</ul></section>"
    )


def site_footer(lang: str, home: str, chrome_version: int, page_id: str) -> str:
    """Newsletter box, donation pop-up, footer, scripts and the tracking pixel."""
    text = CHROME_TEXT[lang]
    tag = nonce(chrome_version)
    return (
        f'<aside class="newsletter-box"><h3>{esc(text.newsletter_title)}</h3>'
        f"<p>{esc(text.newsletter_text)}</p>"
        f'<form action="{home}newsletter/" method="post"><input type="email" name="email">'
        '<button type="submit">OK</button></form></aside>'
        f'<div class="donate-popup modal" role="dialog" hidden><h3>{esc(text.donate_title)}</h3>'
        f"<p>{esc(text.donate_text)}</p>"
        f'<a class="button" href="{home}donate/">{esc(text.donate_button)}</a></div>'
        f'<footer class="site-footer"><p>© 2016–2026 {esc(text.site_name)}. '
        f"{esc(text.footer)}</p></footer>"
        f'<script nonce="{tag}">window.courier={{"build":"{tag}","page":"{page_id}"}};'
        "document.querySelector('.cookie-accept').onclick=function(){"
        "document.getElementById('cookie-notice').remove();};</script>"
        f'<script async src="{TRACKER_SCRIPT}"></script>'
        f'<img class="tracking-pixel" src="{TRACKER_PIXEL}?p={page_id}" width="1" height="1" '
        'alt="" style="position:absolute;left:-9999px">'
    )
