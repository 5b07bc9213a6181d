"""The HTTP policy (projectalgo/api/http_policy.py): which origins may use what, and the security headers.

Most tests build the app in this process as Reflex's server does (`projectalgo.projectalgo:app()`, Reflex's own
CORS middleware and python-socketio's Origin check included, the front end left out), on a database of their
own; the last ones ask the running app (`reflex run --env prod`), pages (the one e2e test here) and websocket
included.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import re
import socket
import sys
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest
import requests
from reflex.config import reload_config
from reflex_base.registry import RegistrationContext
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from projectalgo.api import http_policy
from projectalgo.db import make_engine
from projectalgo.migrations import upgrade_to_head
from projectalgo.runtime import services
from projectalgo.settings import load_settings
from tests.conftest import TEST_SECRET_KEY_BASE, TEST_STRIPE_PUBLISHABLE_KEY, TEST_STRIPE_SECRET_KEY
from tests.factories import make_member, make_strategy

OWN = "http://127.0.0.1:3999"  # PUBLIC_URL of the app built in this process
FOREIGN = "https://example.org"
LOCALSTRIPE = "http://127.0.0.1:4111"
BOT_ROUTE = "/api/v1/strategy/"
SNAPSHOT = {
    "last_price": 9321.5,
    "margin_balance": 10234.12,
    "wallet_balance": 10011.7,
    "realised_pnl": 120.5,
    "positions": 150,
    "symbol": "XBTUSD",
    "average_entry_price": 9300.25,
}
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (part.split() for part in csp.split(";") if part.strip())
    return {name: sources for name, *sources in parts}


def _settings(**env: str):
    return load_settings({"APP_ENV": "test", "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE} | env)


def _preflight(client, path: str, origin: str, method: str = "POST"):
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    return client.options(path, headers=headers)


def _assert_security_headers(headers) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, object]]:
    """The whole backend ASGI app as Reflex's server builds it, on a database of its own."""
    folder = tmp_path_factory.mktemp("http-policy")
    env = {
        "APP_ENV": "test",
        "PUBLIC_URL": OWN,
        "DATABASE_URL": f"sqlite:///{folder / 'app.db'}",
        "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE,
        "BCRYPT_ROUNDS": "4",
        # Reflex compiles the pages when the app is built: into this folder, not the project's .web.
        "REFLEX_WEB_WORKDIR": str(folder / "web"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CORS_ALLOWED_ORIGINS", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        upgrade_to_head(env["DATABASE_URL"])
        services.cache_clear()
        # A fresh module: the app and Reflex's config (rxconfig.py, cors_allowed_origins) read this environment.
        # Reflex allows one app per registration context: an earlier test may have imported the app already.
        with RegistrationContext.ensure_context().fork():
            module = sys.modules.get("projectalgo.projectalgo")
            module = importlib.reload(module) if module else importlib.import_module("projectalgo.projectalgo")
            engine = make_engine(env["DATABASE_URL"])
            with TestClient(module.app(), base_url=OWN) as client:
                yield client, engine
        engine.dispose()
        services().engine.dispose()
        services.cache_clear()
    reload_config()  # Reflex's config as the rest of the session's environment gives it


def test_a_bot_preflight_from_any_origin_is_allowed_without_credentials(in_process):
    client, _ = in_process
    for path in (BOT_ROUTE, BOT_ROUTE.rstrip("/")):
        answer = _preflight(client, path, FOREIGN)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers
        assert "POST" in answer.headers["access-control-allow-methods"]
        allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
        assert allowed >= {"authorization", "content-type"}
        _assert_security_headers(answer.headers)


def test_a_bot_post_from_any_origin_is_stored_and_answered_to_any_origin_without_credentials(in_process):
    client, engine = in_process
    member = make_member(engine)
    _, token = make_strategy(engine, member)
    for origin in (FOREIGN, OWN):
        answer = client.post(
            BOT_ROUTE, json={"data": SNAPSHOT}, headers={"Origin": origin, "Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 201, answer.text
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers
    refused = client.post(BOT_ROUTE, json={"data": SNAPSHOT}, headers={"Origin": FOREIGN, "Authorization": "Bearer x"})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in refused.headers


def test_every_other_route_gives_another_origin_no_cors_allowance(in_process):
    client, _ = in_process
    for path in ("/api/v1/health", "/api/v1/stripe/webhook", "/api/no-such-route", "/ping"):
        answer = client.get(path, headers={"Origin": FOREIGN})
        assert "access-control-allow-origin" not in answer.headers, path
        preflight = _preflight(client, path, FOREIGN, method="GET")
        assert preflight.status_code == 400, path
        assert "access-control-allow-origin" not in preflight.headers, path


def test_the_own_origin_keeps_its_credentialed_cors(in_process):
    client, _ = in_process
    answer = client.get("/api/v1/health", headers={"Origin": OWN})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == OWN
    assert answer.headers["access-control-allow-credentials"] == "true"
    preflight = _preflight(client, "/api/v1/health", OWN, method="GET")
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == OWN


def test_the_event_websocket_refuses_another_origin_and_accepts_its_own(in_process):
    client, _ = in_process
    path, upgrade = "/_event/?EIO=4&transport=websocket", {"Upgrade": "websocket"}
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(path, headers=upgrade | {"Origin": FOREIGN}),
    ):
        pass
    assert "not an accepted origin" in refused.value.reason.lower()
    with client.websocket_connect(path, headers=upgrade | {"Origin": OWN}) as socket_:
        assert socket_.receive_text().startswith("0{")  # Engine.IO's "open" packet


def test_every_answer_carries_the_security_headers_and_no_hsts_over_http(in_process):
    client, _ = in_process
    for answer in (
        client.get("/api/v1/health"),
        client.get("/api/no-such-route"),
        client.post(BOT_ROUTE, json={}),
        client.get("/ping"),
    ):
        _assert_security_headers(answer.headers)
        assert "strict-transport-security" not in answer.headers
        csp = _directives(answer.headers["content-security-policy"])
        assert csp["connect-src"] == ["'self'", "ws://127.0.0.1:3999"]
        assert csp["frame-src"] == ["'none'"]  # payments are not configured here: no Stripe.js


def test_the_csp_allows_stripe_js_where_the_settings_say_it_is():
    settings = _settings(
        PUBLIC_URL="http://127.0.0.1:3000",
        STRIPE_SECRET_KEY=TEST_STRIPE_SECRET_KEY,
        STRIPE_PUBLISHABLE_KEY=TEST_STRIPE_PUBLISHABLE_KEY,
        STRIPE_API_BASE=LOCALSTRIPE,
        STRIPE_JS_URL=f"{LOCALSTRIPE}/js.stripe.com/v3/",
    )
    csp = _directives(http_policy.content_security_policy(settings, ["sha256-abc="]))
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'", "'unsafe-eval'", "'sha256-abc='", LOCALSTRIPE]
    assert csp["frame-src"] == [LOCALSTRIPE]
    assert csp["connect-src"] == ["'self'", "ws://127.0.0.1:3000", LOCALSTRIPE]
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"]
    assert csp["img-src"] == ["'self'", "blob:"]
    assert csp["frame-ancestors"] == csp["object-src"] == csp["base-uri"] == ["'none'"]


def test_production_allows_stripes_own_origins_and_sends_hsts_over_https():
    settings = _settings(
        PUBLIC_URL="https://example.com",
        STRIPE_SECRET_KEY="sk_live_x",
        STRIPE_PUBLISHABLE_KEY="pk_live_x",
    )
    headers = dict(http_policy.security_headers(settings))
    csp = _directives(headers["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'", "'unsafe-eval'", "https://js.stripe.com", "https://*.js.stripe.com"]
    assert csp["frame-src"] == ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"]
    assert csp["connect-src"] == ["'self'", "wss://example.com", "https://api.stripe.com"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert headers["X-Frame-Options"] == "DENY"


def test_the_api_docs_page_loads_swagger_ui_from_the_app_itself_under_a_csp_of_its_own(in_process):
    client, _ = in_process
    _assert_api_docs_work(client.get, "ws://127.0.0.1:3999")
    # Only the files the page loads are served, not the rest of swagger-ui-dist (its demo page, source maps).
    for name in ("index.html", "swagger-initializer.js", "swagger-ui-bundle.js.map", "../__init__.py"):
        assert client.get(f"/api/docs/assets/{name}").status_code == 404, name
    assert client.post("/api/docs").status_code == 405
    assert "/api/docs" not in client.get("/api/openapi.json").json()["paths"]


def test_the_docs_csp_allows_only_its_own_origin_and_the_given_inline_scripts():
    csp = _directives(http_policy.docs_content_security_policy(["sha256-b=", "sha256-a=", "sha256-a="]))
    assert csp["default-src"] == csp["connect-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'", "'sha256-a='", "'sha256-b='"]  # no 'unsafe-eval', no 'unsafe-inline'
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["frame-ancestors"] == csp["frame-src"] == csp["object-src"] == csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]


def test_inline_script_hashes_are_exactly_those_of_the_built_pages(tmp_path):
    inline = "\n  window.__ready = 1 < 2 && 'a' !== \"b\";\n"
    (tmp_path / "login").mkdir()
    (tmp_path / "login" / "index.html").write_text(
        f'<html><head><script src="/assets/app.js"></script><script>{inline}</script></head>'
        '<body><script type="module">import("/x.js")</script></body></html>'
    )
    (tmp_path / "other.txt").write_text("<script>not a page</script>")
    expected = {
        "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        for text in (inline, 'import("/x.js")')
    }
    assert set(http_policy.inline_script_hashes(tmp_path)) == expected


# The running app: its pages come from the same server, so they carry the same headers.


def _inline_scripts(html: str) -> list[str]:
    return [body for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S) if "src=" not in attrs]


@pytest.mark.e2e  # the built pages' inline scripts: only a run with e2e tests builds them
def test_the_running_apps_pages_assets_and_api_carry_the_headers_and_csp(app_server, app_env):
    stripe = app_env["STRIPE_API_BASE"]
    for path in ("/login", "/dashboard", "/invite/some-code", "/strategies/1", "/payments.js", "/api/v1/health"):
        answer = requests.get(f"{app_server.url}{path}", timeout=10)
        assert answer.status_code == 200, path
        _assert_security_headers(answer.headers)
        assert "strict-transport-security" not in answer.headers
        csp = _directives(answer.headers["content-security-policy"])
        assert csp["connect-src"] == ["'self'", f"ws://{urlparse(app_server.url).netloc}", stripe]
        assert csp["script-src"][:2] == ["'self'", "'unsafe-eval'"] and csp["script-src"][-1] == stripe
        assert csp["frame-src"] == [stripe]
        if answer.headers["content-type"].startswith("text/html"):
            scripts = _inline_scripts(answer.text)
            assert scripts, path  # Reflex's build writes inline scripts into each page: each one is allowed
            for script in scripts:
                digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
                assert f"'sha256-{digest}'" in csp["script-src"], path


def _sha256(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def _assert_api_docs_work(get: Callable[[str], requests.Response], websocket: str) -> None:
    """/api/docs: Swagger UI's page, every file it loads from the app itself, and a CSP allowing exactly its
    inline script (hashed here from the HTML served); the app's other answers keep their own CSP."""
    answer = get("/api/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    _assert_security_headers(answer.headers)
    html = answer.text
    assert "://" not in html  # no other host, and no absolute address of this one
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"', html)
    assert len(assets) == 3, assets  # Swagger UI's script, its style sheet and its icon
    types = {"js": "text/javascript", "css": "text/css", "png": "image/png"}  # exact: nosniff
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        loaded = get(asset)
        assert loaded.status_code == 200 and loaded.content, asset
        assert loaded.headers["content-type"].startswith(types[asset.rsplit(".", 1)[-1]]), asset
    scripts = _inline_scripts(html)
    assert len(scripts) == 1 and "SwaggerUIBundle(" in scripts[0]
    schema_url = re.search(r"url: '([^']+)'", scripts[0]).group(1)
    assert get(schema_url).json()["info"]["title"] == "ProjectAlgo API"
    csp = _directives(answer.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'", f"'{_sha256(scripts[0])}'"]
    assert "data:" in csp["img-src"]  # swagger-ui.css's icons
    assert csp["connect-src"] == ["'self'"]
    # Per path: the rest of the app is not allowed Swagger UI's script, nor data: images.
    other = _directives(get("/api/v1/health").headers["content-security-policy"])
    assert f"'{_sha256(scripts[0])}'" not in other["script-src"] and "data:" not in other["img-src"]
    assert other["connect-src"][:2] == ["'self'", websocket]


def test_the_running_apps_api_docs_load_swagger_ui_from_the_app_itself(app_server):
    netloc = urlparse(app_server.url).netloc
    _assert_api_docs_work(lambda path: requests.get(f"{app_server.url}{path}", timeout=10), f"ws://{netloc}")


def _websocket_handshake(app_url: str, origin: str) -> str:
    """The status line the running app answers a browser's websocket upgrade from `origin` with."""
    url = urlparse(app_url)
    request = (
        "GET /_event/?EIO=4&transport=websocket HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as connection:
        connection.sendall(request.encode())
        return connection.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def test_the_running_apps_websocket_refuses_another_origin_and_accepts_its_own(app_server):
    assert _websocket_handshake(app_server.url, app_server.url).startswith("HTTP/1.1 101")
    refused = _websocket_handshake(app_server.url, FOREIGN)
    assert refused.startswith("HTTP/1.1 4"), refused


def test_the_running_app_answers_the_bot_preflight_with_star_and_a_page_preflight_not_at_all(app_server):
    bot = _preflight(requests, f"{app_server.url}{BOT_ROUTE}", FOREIGN)
    assert bot.status_code == 200 and bot.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in bot.headers
    page = _preflight(requests, f"{app_server.url}/dashboard", FOREIGN, method="GET")
    assert page.status_code == 400 and "access-control-allow-origin" not in page.headers
