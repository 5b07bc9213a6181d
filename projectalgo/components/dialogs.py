"""Dialogs shared by the pages."""

import reflex as rx
from reflex.event import EventType


def with_confirmation(
    trigger: rx.Component,
    *,
    question: rx.Var | str,
    consequence: rx.Component | str,
    action: str,
    on_confirm: EventType[()],
    color_scheme: str = "red",
) -> rx.Component:
    """`trigger` asks first: a dialog naming what goes and what follows, with Cancel and `action`."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(trigger),
        rx.alert_dialog.content(
            rx.alert_dialog.title(question),
            rx.alert_dialog.description(consequence),
            rx.flex(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button(action, color_scheme=color_scheme, on_click=on_confirm)),
                spacing="3",
                justify="end",
                margin_top="1em",
            ),
        ),
    )
