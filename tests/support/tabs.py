"""A browser tab without a browser: a Socket.IO client that joins a strategy page the way a tab does (on /_event,
then the page's hydrate-and-load event carrying the sign-in token from browser storage), so the app checks it and
registers it for the strategy's live updates. Used by bench/fanout.py and the several-workers tests."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import socketio
from sqlalchemy import Engine

from projectalgo import members
from projectalgo.db import session_scope
from tests.factories import grant_membership, make_member, make_strategy

SESSION_VAR = "reflex___state____state.projectalgo___state____auth_state.session_token_rx_state_"
NAMESPACE = "/_event"  # the browser's socket.io-client takes it from the URL's path
SEQ = re.compile(r'"tail[^"]*":\{"seq":(\d+)')
# Set once the page's on_load handlers have run (Reflex flips it after them): the tab is registered for live
# updates by then. The first delta (hydrating) already holds every var, the figure too, but nothing is loaded.
HYDRATED = re.compile(r'"is_hydrated[^"]*":true')


def arrange(engine: Engine) -> tuple[int, str, str]:
    """A member with a strategy: its id, its bot token, and a sign-in token for the member's tabs."""
    member = make_member(engine)
    grant_membership(engine, member)
    strategy_id, token = make_strategy(engine, member, name="Fan-out")
    with session_scope(engine) as session:
        session_token = members.start_session(session, user=member, days=1)
    return strategy_id, token, session_token


async def join(
    url: str, strategy_id: int, session_token: str, arrivals: dict[int, float]
) -> tuple[socketio.AsyncClient, str]:
    """A tab on the strategy's page, and its client token; `arrivals` gets each live update's seq and when it came."""
    client = socketio.AsyncClient(reconnection=False)
    loaded = asyncio.Event()

    @client.on("event", namespace=NAMESPACE)
    async def on_event(update: object) -> None:
        text = update if isinstance(update, str) else json.dumps(update, separators=(",", ":"))
        if HYDRATED.search(text):
            loaded.set()
        if match := SEQ.search(text):
            arrivals.setdefault(int(match.group(1)), time.time() * 1000)

    client_token = str(uuid.uuid4())
    await client.connect(
        f"{url}?token={client_token}", socketio_path="_event", transports=["websocket"], namespaces=[NAMESPACE]
    )
    path = f"/strategies/{strategy_id}"
    await client.emit(
        "event",
        {
            "name": "reflex___state____state.hydrate_and_load",
            "payload": {"vars": {SESSION_VAR: session_token}},
            "router_data": {"pathname": path, "asPath": path, "query": {"strategy_id": str(strategy_id)}},
        },
        namespace=NAMESPACE,
    )
    await asyncio.wait_for(loaded.wait(), timeout=30)
    return client, client_token
