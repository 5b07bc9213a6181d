"""/login: sign in."""

import reflex as rx

from projectalgo.components.layout import layout


def login_page() -> rx.Component:
    return layout(
        rx.card(
            rx.vstack(
                rx.heading("Sign in", size="6"),
                rx.text("ProjectAlgo is for members only. Ask a member for an invite link.", color_scheme="gray"),
                spacing="3",
            ),
            max_width="28em",
            margin_x="auto",
        )
    )
