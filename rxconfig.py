"""Reflex configuration. Everything else is read from the environment by projectalgo.settings."""

import os

import reflex as rx

from projectalgo.settings import cors_origins

# The production server (`reflex run --env prod`) serves the pages, the websocket and the API on one port.
port = int(os.environ.get("PORT", "3000"))
public_url = os.environ.get("PUBLIC_URL", f"http://localhost:{port}").rstrip("/")

config = rx.Config(
    app_name="projectalgo",
    # The app owns its SQL engine (projectalgo/db.py) and migrations (alembic/); Reflex's db helpers stay off.
    db_url=None,
    frontend_port=port,
    backend_port=port,
    api_url=public_url,
    deploy_url=public_url,
    # One CORS policy covers the whole backend (Reflex applies it); bots may post from any origin by default.
    cors_allowed_origins=list(cors_origins(os.environ)),
    show_built_with_reflex=False,
    telemetry_enabled=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(appearance="inherit", accent_color="teal", radius="medium")),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
