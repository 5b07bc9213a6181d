"""How a member's trading bot posts its snapshots: the request to paste into it, and the card that shows it to a
strategy without snapshots yet."""

import json

import reflex as rx

from projectalgo.snapshots import EXAMPLE_DATA

TOKEN_PLACEHOLDER = "<your strategy's token>"


def bot_snippet(public_url: str, token: str) -> str:
    """The exact request a bot sends, for the member to paste into their bot."""
    body = {"data": EXAMPLE_DATA}
    return (
        f"curl -X POST {public_url}/api/v1/strategy/ \\\n"
        f"  -H 'Authorization: Bearer {token}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{json.dumps(body)}'"
    )


def bot_instructions(snippet: rx.Var[str], token_text: rx.Component) -> rx.Component:
    """What a strategy without snapshots needs: a bot posting them, as in this example."""
    return rx.card(
        rx.vstack(
            rx.heading("No snapshots yet", size="4"),
            rx.text(
                "Charts appear as soon as your bot posts its first snapshot, like this (every few seconds or minutes):"
            ),
            rx.code_block(snippet, language="bash", wrap_long_lines=True, width="100%"),
            token_text,
            spacing="3",
            width="100%",
        ),
        id="bot-instructions",
        width="100%",
    )
