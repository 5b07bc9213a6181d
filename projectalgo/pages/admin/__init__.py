"""/admin: users and roles, invitations, memberships and payments, strategies and the audit log.

Admins see every tab; moderators users and strategies, read-only. The page is this module (its tabs and the
reset link dialog), state.py (AdminState: what it shows and every change, checked on the server) and
sections.py (one table per tab). On a phone the tabs wrap, so nothing is wider than the screen.
"""

from __future__ import annotations

import reflex as rx

from projectalgo.components.layout import form_error, layout, notice
from projectalgo.pages.admin.alerts import alerts_section
from projectalgo.pages.admin.sections import (
    audit_section,
    invites_section,
    payments_section,
    strategies_section,
    users_section,
)
from projectalgo.pages.admin.share_links import share_links_section
from projectalgo.pages.admin.state import AdminState
from projectalgo.state import AuthState


def reset_link_dialog() -> rx.Component:
    """The password reset link just issued, with a copy button; closing it (or any other click) forgets it."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Password reset link"),
            rx.dialog.description(
                "For ",
                rx.text.strong(AdminState.reset_link_for),
                ". Hand it over yourself (no email is sent): it works once, for a limited time, and is shown "
                "only now. Setting a new password with it signs them out everywhere.",
                size="2",
            ),
            rx.flex(
                rx.code(AdminState.reset_link, id="reset-link", word_break="break-all"),
                rx.button(
                    rx.icon("copy", size=14),
                    "Copy",
                    size="1",
                    variant="soft",
                    on_click=[rx.set_clipboard(AdminState.reset_link), rx.toast("Link copied.")],
                ),
                spacing="2",
                align="center",
                margin_y="1em",
            ),
            rx.flex(
                rx.dialog.close(rx.button("Done", on_click=AdminState.close_reset_link)),
                justify="end",
            ),
        ),
        open=AdminState.reset_link != "",
        on_open_change=lambda _open: AdminState.close_reset_link(),
    )


def admin_page() -> rx.Component:
    sections = [("users", "Users", users_section()), ("strategies", "Strategies", strategies_section())]
    admin_only = [
        ("invites", "Invites", invites_section()),
        ("payments", "Payments", payments_section()),
        ("share-links", "Share links", share_links_section()),
        ("alerts", "Alerts", alerts_section()),
        ("audit", "Audit log", audit_section()),
    ]
    # Nothing of the page (not even its empty tables) is drawn for anyone but staff: a member sent away sees the
    # placeholder until the redirect lands. The data itself is guarded on the server (state.py).
    return layout(
        rx.cond(
            AuthState.is_moderator,
            _staff_view(sections, admin_only),
            rx.text("Checking your access…", color_scheme="gray", id="admin-access-check"),
        )
    )


def _staff_view(
    sections: list[tuple[str, str, rx.Component]], admin_only: list[tuple[str, str, rx.Component]]
) -> rx.Component:
    return rx.vstack(
        rx.heading("Admin", size="7"),
        rx.cond(~AuthState.is_admin, rx.text("Moderators see users and strategies, read-only.", color_scheme="gray")),
        form_error(AdminState.error),
        notice(AdminState.notice),
        reset_link_dialog(),
        rx.tabs.root(
            rx.tabs.list(
                *(rx.tabs.trigger(label, value=key) for key, label, _ in sections),
                *(rx.cond(AuthState.is_admin, rx.tabs.trigger(label, value=key)) for key, label, _ in admin_only),
                flex_wrap="wrap",  # every tab in sight on a phone, not scrolled off the edge
            ),
            *(rx.tabs.content(body, value=key, padding_top="1em") for key, _, body in sections + admin_only),
            default_value="users",
            width="100%",
        ),
        spacing="4",
        width="100%",
    )
