"""The HTTP policy around the whole app (pages, websocket, API): the bot route's open CORS, and security headers.

Pure ASGI: Reflex builds the top ASGI app itself and puts its credentialed CORS middleware (rxconfig's
cors_allowed_origins, PUBLIC_URL's origin first) outermost, so projectalgo.projectalgo wraps the finished app in
this one. The websocket's Origin check stays python-socketio's, on the same configured origins.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The package's __init__ builds the API and never imports this module, so this import is not circular.
from projectalgo.api import DOCS_URL, docs_html
from projectalgo.api.request_id import RequestId
from projectalgo.settings import Settings

# Trading bots post here from anywhere, browsers included; they authenticate with their token, never a cookie,
# so any origin may call it, and without credentials.
BOT_PATHS = frozenset({"/api/v1/strategy/", "/api/v1/strategy"})
BOT_CORS_HEADERS = (
    (b"access-control-allow-origin", b"*"),
    # A bot in a browser reads Retry-After on a 429 or 503.
    (b"access-control-expose-headers", b"Retry-After"),
)
BOT_PREFLIGHT_HEADERS = (
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"Authorization, Content-Type"),
    (b"access-control-max-age", b"600"),
)
# Stripe's own Stripe.js loads parts of itself from subdomains and shows 3-D Secure pages from hooks.stripe.com
# (Stripe's integration security guide); a stand-in (localstripe in the tests) is only its own origin.
STRIPE_JS_ORIGIN = "https://js.stripe.com"
STRIPE_JS_EXTRA_SCRIPTS = ("https://*.js.stripe.com",)
STRIPE_JS_EXTRA_FRAMES = ("https://*.js.stripe.com", "https://hooks.stripe.com")
STRIPE_API_BASE = "https://api.stripe.com"
HSTS_SECONDS = 365 * 24 * 3600


def _origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


# The directives that are the same on every page.
_LOCKED = {
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def content_security_policy(settings: Settings, script_hashes: Iterable[str] = ()) -> str:
    """The CSP of every answer: the app's own origin and websocket, Stripe.js when payments are configured."""
    own = urlparse(settings.public_url)
    websocket = f"{'wss' if own.scheme == 'https' else 'ws'}://{own.netloc}"
    # 'unsafe-eval': Reflex's front end runs rx.call_script's code and callbacks (the /membership page's Stripe.js
    # calls) with eval(); without it the card field never appears. The pages are one single-page app, so the first
    # page's CSP holds on every page reached from it: this cannot be limited to /membership.
    scripts = ["'self'", "'unsafe-eval'", *(f"'{h}'" for h in sorted(set(script_hashes)))]
    connects = ["'self'", websocket]
    frames: list[str] = []
    if settings.stripe_publishable_key:  # without it /membership never loads Stripe.js
        js = _origin(settings.stripe_js_url)
        official = js == STRIPE_JS_ORIGIN
        scripts += [js, *(STRIPE_JS_EXTRA_SCRIPTS if official else ())]
        frames += [js, *(STRIPE_JS_EXTRA_FRAMES if official else ())]
        connects.append(_origin(settings.stripe_api_base or STRIPE_API_BASE))
    directives = {
        "default-src": ["'self'"],
        "script-src": scripts,
        # Emotion (Reflex's styling), Radix and plotly.js write <style> elements and style attributes at run time,
        # hundreds per page and different each time: no hash or nonce can list them.
        "style-src": ["'self'", "'unsafe-inline'"],
        # plotly.js's "Download plot as a PNG" draws the chart through a blob: image.
        "img-src": ["'self'", "blob:"],
        "connect-src": connects,
        "frame-src": frames or ["'none'"],
        **_LOCKED,
    }
    return _serialize(directives)


def docs_content_security_policy(script_hashes: Iterable[str]) -> str:
    """The CSP of Swagger UI's page (/api/docs) alone: its own files, its one inline script by hash, and the API.

    A page of its own, not part of the single-page app: no websocket, no Stripe.js, no eval.
    """
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *(f"'{h}'" for h in sorted(set(script_hashes)))],
        # Swagger UI's React sets style attributes as it renders.
        "style-src": ["'self'", "'unsafe-inline'"],
        # swagger-ui.css draws its icons and arrows as data: SVG and PNG images.
        "img-src": ["'self'", "data:"],
        # The schema at /api/openapi.json, and "Try it out" calls to the API.
        "connect-src": ["'self'"],
        "frame-src": ["'none'"],
        **_LOCKED,
    }
    return _serialize(directives)


def _serialize(directives: Mapping[str, Iterable[str]]) -> str:
    return "; ".join(f"{name} {' '.join(dict.fromkeys(sources))}" for name, sources in directives.items())


def security_headers(
    settings: Settings, script_hashes: Iterable[str] = (), csp: str | None = None
) -> list[tuple[str, str]]:
    """The headers every page and API answer carries; `csp` instead of the app's own CSP for a page of its own."""
    headers = [
        ("Content-Security-Policy", csp or content_security_policy(settings, script_hashes)),
        ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers without CSP level 2
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ]
    if urlparse(settings.public_url).scheme == "https":
        # Not includeSubDomains: other hosts of the operator's domain may not serve https.
        headers.append(("Strict-Transport-Security", f"max-age={HSTS_SECONDS}"))
    return headers


class _InlineScripts(HTMLParser):
    """The text of every <script> without a src in an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._current = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append("".join(self._current))
            self._current = None


def inline_script_hashes(directory: Path) -> tuple[str, ...]:
    """CSP hashes ("sha256-...") of the inline scripts in the built pages under `directory`.

    Reflex's production build writes a few inline scripts into each page (the colour-mode switch, React
    Router's start-up); they change only with a new build, so hashing the built files at start-up allows exactly
    those, not inline scripts in general.
    """
    hashes: set[str] = set()
    for page in sorted(directory.rglob("*.html")):
        hashes.update(html_inline_script_hashes(page.read_text(encoding="utf-8")))
    return tuple(sorted(hashes))


def html_inline_script_hashes(html: str) -> tuple[str, ...]:
    """CSP hashes ("sha256-...") of the inline scripts in one HTML document."""
    parser = _InlineScripts()
    parser.feed(html)
    parser.close()
    hashes = {
        "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        for script in parser.scripts
    }
    return tuple(sorted(hashes))


def _encoded(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


class HttpPolicy:
    """ASGI middleware: answers the bot route's preflights itself, and adds the security headers to every answer
    (those of `path_headers` on its paths, the same names with other values)."""

    def __init__(
        self,
        app: ASGIApp,
        headers: list[tuple[str, str]],
        path_headers: Mapping[str, list[tuple[str, str]]] | None = None,
    ) -> None:
        self.app = app
        self.headers = _encoded(headers)
        self._path_headers = {path: _encoded(own) for path, own in (path_headers or {}).items()}
        self._names = frozenset(name for name, _ in self.headers)
        # Whichever headers an answer gets, every name the policy sets replaces what is inside.
        for own in self._path_headers.values():
            self._names |= {name for name, _ in own}
        # The bot route's answer never carries a credentialed CORS allowance, whatever is inside says.
        self._bot_names = self._names | {name for name, _ in BOT_CORS_HEADERS} | {b"access-control-allow-credentials"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the websocket (Origin checked by python-socketio) and the lifespan
            await self.app(scope, receive, send)
            return
        extra: tuple[tuple[bytes, bytes], ...] = ()
        replaced = self._names
        headers = self._path_headers.get(scope["path"], self.headers)
        if scope["path"] in BOT_PATHS:
            request_headers = dict(scope["headers"])
            if scope["method"] == "OPTIONS" and b"access-control-request-method" in request_headers:
                await self._answer_preflight(send)
                return
            # Without an Origin, Reflex's credentialed CORS middleware leaves the request and its answer alone.
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"origin"]}
            extra, replaced = BOT_CORS_HEADERS, self._bot_names

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in replaced]
                message = {**message, "headers": [*kept, *headers, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _answer_preflight(self, send: Send) -> None:
        headers = [*self.headers, *BOT_PREFLIGHT_HEADERS, (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def wrap(app: ASGIApp, settings: Settings, script_hashes: Iterable[str] = ()) -> ASGIApp:
    """`app` (Reflex's whole ASGI app) inside the HTTP policy; the API docs page under a CSP of its own, which
    allows exactly the inline script of the page the API serves (hashed here, at start-up). Outermost, each API
    call's request id (api/request_id.py)."""
    docs_csp = docs_content_security_policy(html_inline_script_hashes(docs_html()))
    docs_headers = security_headers(settings, csp=docs_csp)
    return RequestId(HttpPolicy(app, security_headers(settings, script_hashes), {DOCS_URL: docs_headers}))
