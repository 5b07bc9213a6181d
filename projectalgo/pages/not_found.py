"""The page for an address that matches no page: says so, with the way back."""

import reflex as rx

from projectalgo.components.layout import layout
from projectalgo.state import AuthState, event_handler


class NotFoundState(AuthState):
    @event_handler
    async def open_not_found(self) -> None:
        """Who is signed in, for the top bar's links (a page load starts the tab empty)."""
        await self._current_user()


def not_found_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.heading("There is no page at this address", size="6"),
            rx.text("The link may be old or mistyped.", color_scheme="gray"),
            rx.cond(
                AuthState.signed_in,
                rx.link("Go to your dashboard", href="/dashboard"),
                rx.link("Sign in", href="/login"),
            ),
            spacing="3",
            id="not-found",
        )
    )
