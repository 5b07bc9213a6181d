"""Composition root: reads the settings once, builds the API and registers the pages."""

import reflex as rx

from projectalgo.api import build_api
from projectalgo.pages.login import login_page
from projectalgo.runtime import services

services()  # fail at start-up, not on the first request, when a setting is wrong

app = rx.App(api_transformer=build_api())
app.add_page(login_page, route="/", title="ProjectAlgo")
app.add_page(login_page, route="/login", title="Sign in · ProjectAlgo")
