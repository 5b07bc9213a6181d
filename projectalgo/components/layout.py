"""The shared page frame: a top bar with the product name and the page content below it."""

import reflex as rx


def navbar() -> rx.Component:
    return rx.hstack(
        rx.link(
            rx.hstack(rx.image(src="/logo.svg", height="28px", alt=""), rx.heading("ProjectAlgo", size="5")),
            href="/",
            underline="none",
        ),
        rx.spacer(),
        rx.color_mode.button(size="2", variant="ghost"),
        align="center",
        padding_x="1.5em",
        padding_y="0.75em",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        width="100%",
    )


def layout(*children: rx.Component) -> rx.Component:
    return rx.box(
        navbar(),
        rx.container(*children, size="3", padding_y="2em", padding_x="1em"),
        min_height="100vh",
    )
