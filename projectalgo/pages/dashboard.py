"""/dashboard: the members' home page."""

import reflex as rx

from projectalgo.components.layout import layout
from projectalgo.state import AuthState


def dashboard_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.heading("Welcome, ", AuthState.user_name, size="7"),
            rx.text("Share your invite link from the bar above to bring people into the group.", color_scheme="gray"),
            spacing="3",
        )
    )
