"""`mirror serve-unsubscribe`: the web end of the digest's unsubscribe links.

Runs on the ops host beside the store, behind the outlet's reverse proxy:

    GET  /unsubscribe?token=T    a page with a confirmation button; changes nothing
                                 (link scanners and previews fetch URLs from mail)
    POST /unsubscribe            token in the form field `token` or in the query (RFC 8058
                                 one-click: body `List-Unsubscribe=One-Click`); records
                                 the unsubscribe with its time and says so
    GET  /confirm?token=T        mail-in's double opt-in: a page with a button; changes
                                 nothing
    POST /confirm                token in the form field `token` (or the query): subscribes
                                 the address the token carries, if valid and unexpired

A bad or missing token changes nothing and gets 400. Replays are harmless: the first
time is kept. No cookie, no login, no script; every page forbids every request it does
not need (CSP) and sends no referrer. Nothing identifying is logged: no access log, no
address, no token.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from mirror.digest import subscribers
from mirror.digest.tokens import token_subscriber
from mirror.errors import StoreError, SubscriberError
from mirror.mailin.tokens import Confirmation, confirmation
from mirror.store import Store

MAX_BODY_BYTES = 4096  # a POST body larger than this is refused (413)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
INVALID_LINK = (
    "This unsubscribe link is not valid: nothing was changed. Use the link from your "
    "latest email.\nЭта ссылка для отписки недействительна, ничего не изменено. "
    "Воспользуйтесь ссылкой из последнего письма.\n"
)
STORE_DOWN = (
    "The subscriber list cannot be reached right now: nothing was changed. Please try "
    "again later.\nСписок подписчиков сейчас недоступен, ничего не изменено. Попробуйте "
    "позже.\n"
)
INVALID_CONFIRMATION = (
    "This confirmation link is not valid or has expired: nothing was changed. Write to us "
    "again to subscribe.\nЭта ссылка подтверждения недействительна или устарела, ничего не "
    "изменено. Напишите нам снова, чтобы подписаться.\n"
)
log = logging.getLogger("mirror.unsubscribe")


class _Settings:
    """What the handlers need: the store, the token secret, the outlet's name, a clock."""

    def __init__(
        self,
        store_path: Path,
        secret: bytes,
        previous: tuple[bytes, ...],
        publication: str,
        now: Callable[[], datetime],
    ) -> None:
        self.store_path = store_path
        self.secret = secret
        self.previous = previous  # secrets before a rotation: their links still work
        self.publication = publication
        self.now = now

    def subscriber(self, token: str) -> int | None:
        return token_subscriber(self.secret, token, previous=self.previous)

    def confirmation(self, token: str) -> Confirmation | None:
        for key in (self.secret, *self.previous):
            carried = confirmation(key, token, now=self.now())
            if carried is not None:
                return carried
        return None


SETTINGS = web.AppKey("unsubscribe_settings", _Settings)


def make_app(
    store_path: Path,
    secret: bytes,
    *,
    publication: str,
    previous: tuple[bytes, ...] = (),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> web.Application:
    """The unsubscribe web app over the store at `store_path` (which must exist)."""
    if not store_path.is_file():
        raise StoreError(f"no store at {store_path}")
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = _Settings(store_path, secret, previous, publication, now)
    app.router.add_get("/unsubscribe", confirm_page)
    app.router.add_post("/unsubscribe", unsubscribe)
    app.router.add_get("/confirm", subscribe_page)
    app.router.add_post("/confirm", subscribe)
    app.on_response_prepare.append(_security_headers)
    return app


def serve_unsubscribe(
    store_path: Path,
    secret: bytes,
    *,
    publication: str,
    previous: tuple[bytes, ...] = (),
    host: str = "127.0.0.1",
    port: int = 8080,
) -> None:
    """Serve the app on host:port until interrupted (no access log, no banner)."""
    app = make_app(store_path, secret, publication=publication, previous=previous)
    web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=5)


async def confirm_page(request: web.Request) -> web.Response:
    """GET: the confirmation button for a valid token; nothing changes."""
    settings = request.app[SETTINGS]
    token = request.query.get("token", "")
    if settings.subscriber(token) is None:
        return _plain(INVALID_LINK, 400)
    return _page(settings.publication, _confirm_html(token))


async def unsubscribe(request: web.Request) -> web.Response:
    """POST: record the unsubscribe of the token's subscriber (again: no change)."""
    settings = request.app[SETTINGS]
    token = await _posted_token(request)
    subscriber_id = settings.subscriber(token)
    if subscriber_id is None:
        return _plain(INVALID_LINK, 400)
    try:
        await asyncio.to_thread(_record, settings.store_path, subscriber_id, settings.now())
    except StoreError:
        log.error("an unsubscribe could not be recorded: the store is unavailable")
        return _plain(STORE_DOWN, 503)
    return _page(settings.publication, DONE_HTML)


async def subscribe_page(request: web.Request) -> web.Response:
    """GET: the subscribe button for a valid, unexpired confirmation; nothing changes."""
    settings = request.app[SETTINGS]
    token = request.query.get("token", "")
    if settings.confirmation(token) is None:
        return _plain(INVALID_CONFIRMATION, 400)
    return _page(settings.publication, SUBSCRIBE_HTML.format(token=html.escape(token, quote=True)))


async def subscribe(request: web.Request) -> web.Response:
    """POST: subscribe the address a valid, unexpired confirmation carries (again: no
    change)."""
    settings = request.app[SETTINGS]
    carried = settings.confirmation(await _posted_token(request))
    if carried is None:
        return _plain(INVALID_CONFIRMATION, 400)
    try:
        await asyncio.to_thread(_subscribe, settings.store_path, carried, settings.now())
    except StoreError:
        log.error("a subscription could not be recorded: the store is unavailable")
        return _plain(STORE_DOWN, 503)
    except SubscriberError:
        return _plain(INVALID_CONFIRMATION, 400)
    return _page(settings.publication, SUBSCRIBED_HTML)


def _subscribe(store_path: Path, carried: Confirmation, at: datetime) -> None:
    """Subscribe, and owe the welcome (mail-in sends it at its next run, or `sync`)."""
    with Store(store_path) as store, store.transaction():
        before = store.subscriber_id(carried.address)
        again = before is not None and store.is_subscribed(before)  # a second POST
        added = subscribers.add(store, carried.address, carried.language, at=at, watch=())
        if not again:
            store.owe_welcome(added.id, at)
    log.info("subscriber %d confirmed on the web", added.id)


async def _posted_token(request: web.Request) -> str:
    """The form's `token` field, else the query's (RFC 8058 one-click posts)."""
    form = await request.post()
    value = form.get("token")
    if isinstance(value, str) and value:
        return value
    return request.query.get("token", "")


def _record(store_path: Path, subscriber_id: int, at: datetime) -> None:
    """Record the unsubscribe in its own connection (this runs in a worker thread)."""
    with Store(store_path) as store:
        store.unsubscribe(subscriber_id, at)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value


def _plain(text: str, status: int) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/plain", charset="utf-8")


def _page(publication: str, main: str) -> web.Response:
    title = html.escape(publication)
    body = PAGE.format(title=title, main=main)
    return web.Response(text=body, content_type="text/html", charset="utf-8")


def _confirm_html(token: str) -> str:
    return CONFIRM_HTML.format(token=html.escape(token, quote=True))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>body{{font:1.1em/1.5 sans-serif;max-width:34em;margin:2em auto;padding:0 1em}}
button{{font:inherit;padding:.4em 1.2em}}</style></head>
<body><h1>{title}</h1>
{main}
</body></html>
"""
CONFIRM_HTML = """<p>Stop receiving the email digest?</p>
<p lang="ru">Больше не получать рассылку?</p>
<form method="post">
<input type="hidden" name="token" value="{token}">
<button type="submit">Unsubscribe · Отписаться</button>
</form>"""
DONE_HTML = """<p>You are unsubscribed: no more digests will be sent to you.</p>
<p lang="ru">Вы отписались: письма больше не будут приходить.</p>"""
SUBSCRIBE_HTML = """<p>Receive the news by email?</p>
<p lang="ru">Получать новости по почте?</p>
<form method="post">
<input type="hidden" name="token" value="{token}">
<button type="submit">Subscribe · Подписаться</button>
</form>"""
SUBSCRIBED_HTML = """<p>You are subscribed: the next digest will come to you.</p>
<p lang="ru">Вы подписаны: следующий выпуск придёт вам.</p>"""
