"""/admin's tabs, each a table: users (with an admin's actions on each), invitations, payments, strategies
(with the page's one timer, which ages their statuses; "x minutes ago" is the browser's own) and the audit log.
On a phone every table stacks its rows into cards, each value after its column's name.
"""

from __future__ import annotations

import reflex as rx
from reflex.event import EventType
from reflex.vars import ObjectVar

from projectalgo import admin, memberships
from projectalgo.components.status import ago, local_minute, status_badge, status_timer
from projectalgo.components.tables import WHOLE_CARD, labelled_cell, stacked_table
from projectalgo.pages.admin.state import AdminState, AuditRow, InviteRow, OwnedStrategyRow, PaymentRow, UserRow
from projectalgo.state import AuthState


def _small_form(on_submit: EventType[dict[str, str]], *fields: rx.Component, label: str) -> rx.Component:
    return rx.form(
        rx.flex(*fields, rx.button(label, size="1", type="submit"), spacing="1", wrap="wrap", align="center"),
        on_submit=on_submit,
        reset_on_submit=True,
    )


def _reason_input(width: str = "8em", label: str = "Reason") -> rx.Component:
    return rx.input(
        name="reason",
        placeholder="reason",
        max_length=admin.REASON_MAX_LENGTH,
        width=width,
        size="1",
        aria_label=label,
    )


def _count_input(
    name: str, *, maximum: int, label: str | rx.Var[str], default: str | None = None, minimum: int = 0
) -> rx.Component:
    """A whole number the domain checks again (forms.form_number); the browser's limits only help the admin."""
    value = {"default_value": default} if default is not None else {}
    return rx.input(
        name=name, type="number", min=minimum, max=maximum, width="5em", size="1", aria_label=label, **value
    )


def role_buttons(user: ObjectVar[UserRow]) -> rx.Component:
    def toggle(has: rx.Var[bool], role: str) -> rx.Component:
        return rx.cond(
            has,
            rx.button(
                f"Remove {role}",
                size="1",
                variant="soft",
                color_scheme="gray",
                on_click=AdminState.set_role(user.id, role, False),
            ),
            rx.button(f"Make {role}", size="1", variant="soft", on_click=AdminState.set_role(user.id, role, True)),
        )

    return rx.flex(
        toggle(user.is_moderator, "moderator"),
        toggle(user.is_admin, "admin"),
        rx.cond(
            user.disabled,
            rx.button("Enable", size="1", variant="soft", on_click=AdminState.set_disabled(user.id, False)),
            rx.button(
                "Disable", size="1", variant="soft", color_scheme="red", on_click=AdminState.set_disabled(user.id, True)
            ),
        ),
        _small_form(
            AdminState.grant_membership,
            rx.input(type="hidden", name="user_id", value=user.id.to_string()),
            _count_input("days", minimum=1, maximum=memberships.MAX_GRANT_DAYS, label="Days", default="365"),
            _reason_input(),
            label="Grant days",
        ),
        rx.button(
            "Reset link",
            size="1",
            variant="soft",
            color_scheme="gray",
            on_click=AdminState.issue_reset_link(user.id),
        ),
        _small_form(
            AdminState.end_membership,
            rx.input(type="hidden", name="user_id", value=user.id.to_string()),
            _reason_input(label="Reason to end"),
            label="End membership",
        ),
        spacing="1",
        wrap="wrap",
    )


USER_COLUMNS = ("Name", "Email", "Roles", "Member until", "Created", "Last sign-in")


def user_row(user: ObjectVar[UserRow]) -> rx.Component:
    _, email, roles, until, created, signed_in = USER_COLUMNS
    return rx.table.row(
        rx.table.cell(
            rx.text.strong(user.name),
            rx.cond(user.disabled, rx.badge("disabled", color_scheme="red", margin_left="4px")),
        ),
        labelled_cell(email, user.email),
        labelled_cell(roles, user.roles),
        labelled_cell(until, local_minute(user.membership_ends_at, otherwise="—")),
        labelled_cell(created, local_minute(user.created_at, otherwise="—")),
        labelled_cell(signed_in, local_minute(user.last_sign_in_at, otherwise="—")),
        rx.cond(AuthState.is_admin, rx.table.cell(role_buttons(user), grid_column=WHOLE_CARD, padding_top="0.5em")),
        id=f"user-{user.id}",
    )


def users_section() -> rx.Component:
    return rx.vstack(
        rx.form(
            rx.flex(
                rx.input(
                    name="search",
                    placeholder="Search name or email",
                    aria_label="Search users",
                    max_length=admin.SEARCH_MAX_LENGTH,
                ),
                rx.button("Search", type="submit"),
                spacing="2",
            ),
            on_submit=AdminState.search_users,
        ),
        stacked_table((*USER_COLUMNS, ""), AdminState.users, user_row, id_="users-table", size="1"),
        rx.flex(
            rx.button("Previous", size="1", variant="soft", on_click=AdminState.change_page(-1)),
            rx.text(
                "Page ",
                AdminState.page,
                " · ",
                AdminState.total_users,
                rx.cond(AdminState.total_users == 1, " user", " users"),
                size="2",
            ),
            rx.button("Next", size="1", variant="soft", on_click=AdminState.change_page(1)),
            spacing="3",
            align="center",
        ),
        width="100%",
    )


INVITE_COLUMNS = ("Code", "Owner", "Uses left", "Registrations")


def invite_row(invite: ObjectVar[InviteRow]) -> rx.Component:
    code, owner, uses, registrations = INVITE_COLUMNS
    return rx.table.row(
        labelled_cell(code, rx.code(invite.code, size="1")),
        labelled_cell(owner, invite.owner),
        labelled_cell(uses, invite.uses_remaining, id=f"invite-uses-{invite.id}"),
        labelled_cell(registrations, invite.registrations),
        rx.table.cell(
            rx.flex(
                _small_form(
                    AdminState.set_invite_uses,
                    rx.input(type="hidden", name="invitation_id", value=invite.id.to_string()),
                    _count_input("uses", maximum=admin.MAX_INVITE_USES, label=f"Uses for {invite.code}"),
                    _reason_input(),
                    label="Set uses",
                ),
                rx.cond(
                    invite.disabled,
                    rx.button(
                        "Enable", size="1", variant="soft", on_click=AdminState.set_invite_disabled(invite.id, False)
                    ),
                    rx.button(
                        "Disable",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=AdminState.set_invite_disabled(invite.id, True),
                    ),
                ),
                spacing="2",
                wrap="wrap",
            ),
            grid_column=WHOLE_CARD,
        ),
    )


def invites_section() -> rx.Component:
    return rx.vstack(
        stacked_table((*INVITE_COLUMNS, ""), AdminState.invites, invite_row, id_="invites-table", size="1"),
        rx.text("Extra invitation for a user:", size="2"),
        _small_form(
            AdminState.create_invite,
            rx.select.root(
                rx.select.trigger(placeholder="User", aria_label="Invitation owner"),
                rx.select.content(
                    rx.foreach(AdminState.users, lambda u: rx.select.item(u.email, value=u.id.to_string()))
                ),
                name="user_id",
            ),
            _count_input("uses", maximum=admin.MAX_INVITE_USES, label="Uses", default="5"),
            _reason_input("10em"),
            label="Create invitation",
        ),
        width="100%",
    )


PAYMENT_COLUMNS = ("Date", "User", "Amount", "Status", "Stripe id")


def payment_row(payment: ObjectVar[PaymentRow]) -> rx.Component:
    date, user, amount, status, stripe_id = PAYMENT_COLUMNS
    return rx.table.row(
        labelled_cell(date, local_minute(payment.created_at, otherwise="—")),
        labelled_cell(user, payment.user_email),
        labelled_cell(amount, payment.amount),
        labelled_cell(status, payment.status),
        labelled_cell(stripe_id, rx.code(payment.stripe_id, size="1")),
    )


def payments_section() -> rx.Component:
    return stacked_table(PAYMENT_COLUMNS, AdminState.payments, payment_row, id_="payments-table", size="1")


STRATEGY_COLUMNS = ("Strategy", "Owner", "Account", "Last snapshot", "Status")


def strategy_row(strategy: ObjectVar[OwnedStrategyRow]) -> rx.Component:
    """A strategy's name links to its page for admins only: strategies.get_strategy shows a moderator nothing."""
    _, owner, account, last, status = STRATEGY_COLUMNS
    return rx.table.row(
        rx.table.cell(
            rx.cond(
                AuthState.is_admin,
                rx.link(strategy.name, href=f"/strategies/{strategy.id}"),
                rx.text.strong(strategy.name),
            ),
            id=f"admin-strategy-{strategy.id}",
        ),
        labelled_cell(owner, strategy.owner_email),
        labelled_cell(account, strategy.account_name),
        labelled_cell(
            last,
            rx.cond(strategy.last_snapshot_at != "", ago(strategy.last_snapshot_at), "never"),
            id=f"admin-last-snapshot-{strategy.id}",
        ),
        labelled_cell(status, status_badge(strategy.status), id=f"admin-status-{strategy.id}"),
    )


def strategies_section() -> rx.Component:
    return rx.vstack(
        rx.flex(
            rx.text("Ingestion, last hour:", size="2", weight="medium"),
            rx.foreach(AdminState.ingest_figures, lambda f: rx.badge(f.outcome, ": ", f.count, variant="soft")),
            spacing="2",
            wrap="wrap",
            id="ingest-figures",
        ),
        stacked_table(STRATEGY_COLUMNS, AdminState.strategies, strategy_row, id_="admin-strategies-table", size="1"),
        # Mounted once the page has loaded for a moderator or an admin: nobody else's tab sends it.
        rx.cond(AuthState.is_moderator, status_timer(AdminState.refresh_statuses)),
        width="100%",
    )


AUDIT_COLUMNS = ("When", "Who", "What", "To", "Reason", "Outcome")


def audit_row(entry: ObjectVar[AuditRow]) -> rx.Component:
    values: tuple[rx.Component | rx.Var, ...] = (
        local_minute(entry.at, otherwise="—"),
        entry.actor,
        entry.action,
        entry.target,
        entry.reason,
        entry.outcome,
    )
    return rx.table.row(*(labelled_cell(label, value) for label, value in zip(AUDIT_COLUMNS, values, strict=True)))


def audit_section() -> rx.Component:
    return stacked_table(AUDIT_COLUMNS, AdminState.audit, audit_row, id_="audit-table", size="1")
