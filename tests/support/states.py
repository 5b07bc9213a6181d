"""Call Reflex state event handlers directly, as a browser's websocket message would, against a real database."""

from __future__ import annotations

import asyncio
import inspect
import json
from concurrent.futures import ThreadPoolExecutor

import reflex as rx
from reflex.event import Event
from reflex.utils.format import format_event_handler

from projectalgo import members
from projectalgo.db import session_scope
from projectalgo.models import User
from projectalgo.runtime import services
from projectalgo.state import TabGuard


def signed_in_state(state_class: type[rx.State], user: User | None) -> rx.State:
    """A fresh state tree, signed in as `user` (or anonymous), returning the `state_class` substate."""
    root = rx.State(_reflex_internal_init=True)
    state = root.get_substate(state_class.get_full_name().split(".")[1:])
    if user is not None:
        with session_scope(services().engine) as session:
            state.session_token = members.start_session(session, user=user, days=1)
    return state


def root_of(state: rx.State) -> rx.State:
    while state.parent_state is not None:
        state = state.parent_state
    return state


async def preprocess(state: rx.State, handler: rx.event.EventHandler) -> None:
    """What Reflex runs before each event's handler: the app's middleware, TabGuard (the app adds it first:
    tests/unit/test_tab_security.py checks)."""
    await TabGuard().preprocess(None, root_of(state), Event(name=format_event_handler(handler)))


def call(state: rx.State, handler: rx.event.EventHandler, *args: object) -> object:
    """Run one event handler as Reflex does for a browser event (middlewares first), returning what it returned.

    It runs on its own event loop in a thread: Playwright's sync API keeps a loop running in the main thread.
    """

    # Reflex passes an event's arguments by name (the handler's signature names them), so a test does too.
    names = list(inspect.signature(handler.fn).parameters)[1:]
    payload = dict(zip(names, args, strict=False))
    assert len(payload) == len(args), f"{handler.fn.__qualname__} takes {names}, not {len(args)} arguments"

    async def event() -> object:
        await preprocess(state, handler)
        return await handler.fn(state, **payload)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, event()).result()


def browser_view(state: rx.State) -> str:
    """Everything of the state tree that is sent to the browser, as text."""
    return json.dumps(root_of(state).dict(), default=str)


def visit(state: rx.State, path: str, *, client_token: str = "tab-1", client_ip: str = "198.51.100.7") -> None:
    """Point the tab's router at `path` (as a page load does), from this browser tab and address."""
    route = rx.constants.RouteVar
    root_of(state)._update_router_vars(
        {
            route.PATH: path,
            route.ORIGIN: path,
            route.CLIENT_TOKEN: client_token,
            route.CLIENT_IP: client_ip,
            route.HEADERS: {"origin": "http://127.0.0.1:3999"},
        },
        {},
    )


def same_tab(state: rx.State, state_class: type[rx.State]) -> rx.State:
    """Another page's state of the same tab (the same state tree)."""
    return root_of(state).get_substate(state_class.get_full_name().split(".")[1:])
