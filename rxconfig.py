"""Reflex configuration. Everything else is read from the environment by projectalgo.settings."""

import os

import reflex as rx

from projectalgo.settings import cors_origins, public_url, trusted_proxy_hops

# The production server (`reflex run --env prod`) serves the pages, the websocket and the API on one port.
port = int(os.environ.get("PORT", "3000"))
url = public_url(os.environ)

config = rx.Config(
    app_name="projectalgo",
    # The app owns its SQL engine (projectalgo/db.py) and migrations (alembic/); Reflex's db helpers stay off.
    db_url=None,
    frontend_port=port,
    backend_port=port,
    api_url=url,
    deploy_url=url,
    # The websocket and every route but the bot's accept only these origins (the bot route allows any origin,
    # without credentials: projectalgo/api/http_policy.py).
    cors_allowed_origins=list(cors_origins(os.environ)),
    # Client addresses (sign-in throttling) come from X-Forwarded-For only through this many trusted proxies.
    trusted_proxy_hops=trusted_proxy_hops(os.environ),
    show_built_with_reflex=False,
    telemetry_enabled=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(appearance="inherit", accent_color="teal", radius="medium")),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
