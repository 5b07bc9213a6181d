"""/accounts: the member's brokerage accounts (add, rename, archive, delete)."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from projectalgo import forms, strategies
from projectalgo.components.layout import form_error, layout, notice
from projectalgo.state import AuthState, CurrentUser, MemberActionsMixin, in_session


@dataclass
class AccountRow:
    id: int
    name: str
    exchange: str
    notes: str
    strategy_count: int
    created_at: str
    archived: bool


class AccountsState(MemberActionsMixin, AuthState):
    accounts: list[AccountRow] = []

    async def _reload(self, member: CurrentUser) -> None:
        views = await in_session(lambda session: strategies.list_accounts(session, member.actor))
        self.accounts = [
            AccountRow(v.id, v.name, v.exchange, v.notes, v.strategy_count, v.created_at.isoformat(), v.archived)
            for v in views
        ]

    @rx.event
    async def open_accounts(self) -> rx.event.EventSpec | None:
        return await self._open()

    @rx.event
    async def add_account(self, form: dict[str, str]) -> rx.event.EventSpec | None:
        return await self._act(
            lambda session, actor: strategies.create_account(
                session,
                actor,
                name=forms.form_text(form, "name", max_length=strategies.NAME_MAX_LENGTH, label="The name"),
                exchange=forms.form_text(
                    form, "exchange", max_length=strategies.EXCHANGE_MAX_LENGTH, label="The exchange"
                ),
                notes=forms.form_text(form, "notes", max_length=strategies.NOTES_MAX_LENGTH, label="The notes"),
            ),
            lambda account: f"Account {account.name!r} added.",
        )

    @rx.event
    async def rename_account(self, form: dict[str, str]) -> rx.event.EventSpec | None:
        return await self._act(
            lambda session, actor: strategies.rename_account(
                session,
                actor,
                forms.form_id(form, "account_id"),
                name=forms.form_text(form, "name", max_length=strategies.NAME_MAX_LENGTH, label="The name"),
            ),
            lambda _account: "Account renamed.",
        )

    @rx.event
    async def set_archived(self, account_id: int, archived: bool) -> rx.event.EventSpec | None:
        return await self._act(
            lambda session, actor: strategies.set_account_archived(
                session, actor, forms.parse_id(account_id), archived=forms.parse_flag(archived)
            ),
            lambda account: "Account archived." if account.archived_at else "Account restored.",
        )

    @rx.event
    async def delete_account(self, account_id: int) -> rx.event.EventSpec | None:
        return await self._act(
            lambda session, actor: strategies.delete_account(session, actor, forms.parse_id(account_id)),
            lambda _none: "Account deleted.",
        )


def add_account_form() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.input(
                name="name",
                placeholder="Account name, e.g. BitMEX main",
                required=True,
                max_length=strategies.NAME_MAX_LENGTH,
                aria_label="Account name",
                flex="2",
                min_width="12em",
            ),
            rx.input(
                name="exchange",
                placeholder="Exchange (optional)",
                max_length=strategies.EXCHANGE_MAX_LENGTH,
                aria_label="Exchange",
                flex="1",
                min_width="8em",
            ),
            rx.input(
                name="notes",
                placeholder="Notes (optional)",
                max_length=strategies.NOTES_MAX_LENGTH,
                aria_label="Notes",
                flex="2",
                min_width="8em",
            ),
            rx.button("Add account", type="submit"),
            spacing="2",
            wrap="wrap",
        ),
        on_submit=AccountsState.add_account,
        reset_on_submit=True,
    )


def rename_dialog(account: AccountRow) -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button("Rename", size="1", variant="soft")),
        rx.dialog.content(
            rx.dialog.title("Rename account"),
            rx.form(
                rx.input(type="hidden", name="account_id", value=account.id.to_string()),
                rx.input(
                    name="name",
                    default_value=account.name,
                    required=True,
                    max_length=strategies.NAME_MAX_LENGTH,
                    aria_label="New name",
                ),
                rx.flex(
                    rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                    rx.dialog.close(rx.button("Save", type="submit")),
                    spacing="2",
                    justify="end",
                    margin_top="1em",
                ),
                on_submit=AccountsState.rename_account,
            ),
        ),
    )


def account_row(account: AccountRow) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.text(account.name, weight="medium"),
            rx.cond(account.archived, rx.badge("archived", color_scheme="gray", margin_left="0.5em")),
        ),
        rx.table.cell(account.exchange),
        rx.table.cell(account.strategy_count),
        rx.table.cell(rx.moment(account.created_at, format="YYYY-MM-DD", local=True)),
        rx.table.cell(
            rx.flex(
                rename_dialog(account),
                rx.cond(
                    account.archived,
                    rx.button(
                        "Restore", size="1", variant="soft", on_click=AccountsState.set_archived(account.id, False)
                    ),
                    rx.button(
                        "Archive", size="1", variant="soft", on_click=AccountsState.set_archived(account.id, True)
                    ),
                ),
                rx.button(
                    "Delete",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=AccountsState.delete_account(account.id),
                ),
                spacing="2",
                wrap="wrap",
            )
        ),
    )


def accounts_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.heading("Brokerage accounts", size="7"),
            rx.text(
                "Strategies that trade on the same brokerage account share its wallet: the combined balance "
                "counts each account once.",
                color_scheme="gray",
            ),
            form_error(AccountsState.error),
            notice(AccountsState.notice),
            add_account_form(),
            rx.cond(
                AccountsState.accounts.length() > 0,
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *(rx.table.column_header_cell(h) for h in ("Name", "Exchange", "Strategies", "Created", ""))
                        )
                    ),
                    rx.table.body(rx.foreach(AccountsState.accounts, account_row)),
                    width="100%",
                    id="accounts-table",
                ),
                rx.text("No accounts yet: add the first one above.", color_scheme="gray"),
            ),
            spacing="4",
            width="100%",
        )
    )
