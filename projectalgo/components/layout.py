"""The shared page frame: a top bar (with the member's own invite link when signed in) above the content."""

import reflex as rx

from projectalgo.components.alerts_bell import alert_toasts, bell
from projectalgo.members import PASSWORD_MAX_BYTES, PASSWORD_MIN_LENGTH
from projectalgo.state import AuthState


def invite_box() -> rx.Component:
    """The signed-in member's own invite link, how many uses it has left, and a copy button."""
    return rx.hstack(
        rx.text("Your invite link", size="1", color_scheme="gray", white_space="nowrap"),
        rx.code(AuthState.invite_link, id="invite-link", size="1", overflow_wrap="anywhere"),
        rx.icon_button(
            rx.icon("copy", size=14),
            size="1",
            variant="soft",
            title="Copy invite link",
            aria_label="Copy invite link",
            on_click=[rx.set_clipboard(AuthState.invite_link), rx.toast.success("Invite link copied")],
        ),
        rx.badge(
            "uses left ",
            AuthState.invite_uses_left,
            "/",
            AuthState.invite_uses_default,
            id="invite-uses",
            color_scheme="teal",
            variant="soft",
        ),
        align="center",
        spacing="2",
        wrap="wrap",
    )


MEMBER_LINKS = (
    ("Dashboard", "/dashboard"),
    ("Group", "/group"),
    ("Strategies", "/strategies"),
    ("Accounts", "/accounts"),
    ("Alerts", "/alerts"),
    ("Membership", "/membership"),
)


def _desktop_bar() -> rx.Component:
    return rx.flex(
        rx.cond(
            AuthState.signed_in,
            rx.flex(
                *(rx.link(label, href=href, size="2") for label, href in MEMBER_LINKS),
                rx.cond(AuthState.is_moderator, rx.link("Admin", href="/admin", size="2")),
                spacing="3",
                wrap="wrap",
            ),
        ),
        rx.spacer(),
        rx.cond(
            AuthState.signed_in,
            rx.flex(
                invite_box(),
                rx.link(AuthState.user_name, href="/profile", weight="medium", id="signed-in-name"),
                rx.link("Sign out", href="/logout"),
                align="center",
                spacing="4",
                wrap="wrap",
            ),
        ),
        rx.color_mode.button(size="2", variant="ghost"),
        align="center",
        spacing="4",
        wrap="wrap",
        flex="1",
        display=rx.breakpoints(initial="none", md="flex"),
    )


def _menu_link(label: str | rx.Var, href: str) -> rx.Component:
    return rx.menu.item(rx.link(label, href=href, width="100%", underline="none", color="inherit"))


def _phone_menu() -> rx.Component:
    """On a phone the links fold into one menu button, so the header stays one line high."""
    return rx.flex(
        rx.spacer(),
        rx.color_mode.button(size="2", variant="ghost"),
        rx.cond(
            AuthState.signed_in,
            rx.menu.root(
                rx.menu.trigger(
                    rx.icon_button(rx.icon("menu", size=20), variant="ghost", size="3", aria_label="Menu", id="menu")
                ),
                rx.menu.content(
                    *(_menu_link(label, href) for label, href in MEMBER_LINKS),
                    rx.cond(AuthState.is_moderator, _menu_link("Admin", "/admin")),
                    rx.menu.separator(),
                    _menu_link(AuthState.user_name, "/profile"),
                    rx.menu.item(
                        "Copy invite link (",
                        AuthState.invite_uses_left,
                        " left)",
                        on_click=[rx.set_clipboard(AuthState.invite_link), rx.toast.success("Invite link copied")],
                    ),
                    _menu_link("Sign out", "/logout"),
                ),
            ),
        ),
        align="center",
        spacing="3",
        flex="1",
        display=rx.breakpoints(initial="flex", md="none"),
    )


def navbar() -> rx.Component:
    return rx.flex(
        rx.link(
            rx.hstack(rx.image(src="/logo.svg", height="28px", alt=""), rx.heading("ProjectAlgo", size="5")),
            href="/",
            underline="none",
        ),
        _desktop_bar(),
        _phone_menu(),
        rx.cond(AuthState.signed_in, bell()),
        align="center",
        spacing="4",
        padding_x=rx.breakpoints(initial="1em", md="1.5em"),
        padding_y="0.75em",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        width="100%",
    )


def layout(*children: rx.Component) -> rx.Component:
    return rx.box(
        navbar(),
        rx.container(*children, size="3", padding_y=rx.breakpoints(initial="1em", md="2em"), padding_x="1em"),
        rx.cond(AuthState.signed_in, alert_toasts()),
        min_height="100vh",
    )


def form_error(message: rx.Var[str]) -> rx.Component:
    return rx.cond(
        message != "",
        # A long unbroken name in a message wraps instead of running off a phone's screen.
        rx.callout(
            message, icon="triangle_alert", color_scheme="red", role="alert", width="100%", overflow_wrap="anywhere"
        ),
    )


def notice(message: rx.Var[str]) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="check", color_scheme="green", role="status", width="100%", overflow_wrap="anywhere"),
    )


def labelled_input(label: str, **props: object) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", size="2", weight="medium", html_for=props.get("id", props.get("name"))),
        rx.input(id=props.get("id", props.get("name")), width="100%", **props),
        spacing="1",
        width="100%",
    )


def new_password_inputs() -> tuple[rx.Component, ...]:
    """A new password and its confirmation (fields "password" and "confirmation"), as accounts checks them."""
    return tuple(
        labelled_input(
            label,
            name=name,
            type="password",
            auto_complete="new-password",
            required=True,
            min_length=PASSWORD_MIN_LENGTH,
            max_length=PASSWORD_MAX_BYTES,
        )
        for label, name in (
            (f"New password (at least {PASSWORD_MIN_LENGTH} characters)", "password"),
            ("Confirm the new password", "confirmation"),
        )
    )


def figure_card(label: str, value: rx.Var[str], id_: str, **props: object) -> rx.Component:
    """One figure in a grid of them: its label above, the value large (a long one wraps)."""
    return rx.card(
        rx.text(label, size="1", color_scheme="gray"),
        rx.text(value, size="4", weight="bold", id=id_, overflow_wrap="anywhere", **props),
    )
