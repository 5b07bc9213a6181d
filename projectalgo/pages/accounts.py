"""/accounts: the member's brokerage accounts (add, rename, archive, delete).

Forms keep what was typed when the server refuses it, and empty only on success: they are not reset on submit,
and each has a React key that the server changes on success (a new key mounts the form, or a dialog, afresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from projectalgo import forms, strategies
from projectalgo.components.dialogs import with_confirmation
from projectalgo.components.layout import form_error, layout, notice
from projectalgo.components.tables import ROW_ACTION_SIZE, WHOLE_CARD, labelled_cell, stacked_table
from projectalgo.state import AuthState, CurrentUser, MemberActionsMixin, event_handler, in_session

T = TypeVar("T")


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
    accounts: rx.Field[list[AccountRow]] = rx.field(default_factory=list)
    added: rx.Field[int] = rx.field(0)  # accounts added by this tab: the add form's key, so it empties after each
    renamed: rx.Field[int] = rx.field(0)  # the rename dialogs' key, so they close after a rename

    async def _reload(self, member: CurrentUser) -> None:
        views = await in_session(lambda session: strategies.list_accounts(session, member.actor))
        self.accounts = [
            AccountRow(v.id, v.name, v.exchange, v.notes, v.strategy_count, v.created_at.isoformat(), v.archived)
            for v in views
        ]

    @event_handler
    async def open_accounts(self) -> EventSpec | None:
        return await self._open()

    @event_handler
    async def add_account(self, form: dict[str, str]) -> EventSpec | None:
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
            then=self._added,
        )

    def _added(self, _account: object) -> None:
        self.added += 1

    @event_handler
    async def rename_account(self, form: dict[str, str]) -> EventSpec | None:
        redirect = await self._act(
            lambda session, actor: strategies.rename_account(
                session,
                actor,
                forms.form_id(form, "account_id"),
                name=forms.form_text(form, "name", max_length=strategies.NAME_MAX_LENGTH, label="The name"),
            ),
            lambda _account: "Account renamed.",
            then=self._renamed,
        )
        if self.error:
            self.refused_id = forms.lenient_form_id(form, "account_id")
        return redirect

    def _renamed(self, _account: object) -> None:
        self.renamed += 1

    @event_handler
    async def set_archived(self, account_id: int, archived: bool) -> EventSpec | None:
        return await self._act(
            lambda session, actor: strategies.set_account_archived(
                session, actor, forms.parse_id(account_id), archived=forms.parse_flag(archived)
            ),
            lambda account: "Account archived." if account.archived_at else "Account restored.",
        )

    @event_handler
    async def delete_account(self, account_id: int) -> EventSpec | None:
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
                flex="2 1 12em",
            ),
            rx.input(
                name="exchange",
                placeholder="Exchange (optional)",
                max_length=strategies.EXCHANGE_MAX_LENGTH,
                aria_label="Exchange",
                flex="1 1 8em",
            ),
            rx.input(
                name="notes",
                placeholder="Notes (optional)",
                max_length=strategies.NOTES_MAX_LENGTH,
                aria_label="Notes",
                flex="2 1 8em",
            ),
            rx.button("Add account", type="submit"),
            spacing="2",
            wrap="wrap",
        ),
        on_submit=AccountsState.add_account,
        key=f"add-account-{AccountsState.added}",
        width="100%",
    )


def rename_dialog(account: ObjectVar[AccountRow]) -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button("Rename", size=ROW_ACTION_SIZE, variant="soft")),
        rx.dialog.content(
            rx.dialog.title("Rename account"),
            rx.cond(AccountsState.refused_id == account.id, form_error(AccountsState.error)),
            rx.form(
                # A plain input: Radix's text field would draw an empty box around a hidden one.
                rx.el.input(type="hidden", name="account_id", value=account.id.to_string()),
                rx.input(
                    name="name",
                    default_value=account.name,
                    required=True,
                    max_length=strategies.NAME_MAX_LENGTH,
                    aria_label="New name",
                    margin_top="0.5em",
                ),
                rx.flex(
                    rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                    # Not a dialog.close: a refused name stays in the open dialog; a new key closes it on success.
                    rx.button("Save", type="submit"),
                    spacing="2",
                    justify="end",
                    margin_top="1em",
                ),
                on_submit=AccountsState.rename_account,
            ),
        ),
        key=f"rename-{account.id}-{AccountsState.renamed}",
    )


def delete_button(account: ObjectVar[AccountRow]) -> rx.Component:
    return with_confirmation(
        rx.button("Delete", size=ROW_ACTION_SIZE, variant="soft", color_scheme="red"),
        question=f"Delete the account “{account.name}”?",
        consequence=rx.cond(
            account.strategy_count > 0,  # type: ignore[operator]  # typed a plain Var by Reflex, a NumberVar at run time
            "It still has strategies, which can be archived but not deleted, so it will not be deleted: archive "
            "the account instead, or first move its strategies to another account.",
            "It is removed for good.",
        ),
        action="Delete account",
        on_confirm=AccountsState.delete_account(account.id),
    )


def account_row(account: ObjectVar[AccountRow]) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.text(account.name, weight="medium", as_="span"),
            rx.cond(account.archived, rx.badge("archived", color_scheme="gray", margin_left="0.5em")),
        ),
        labelled_cell("Exchange", account.exchange),
        labelled_cell("Strategies", account.strategy_count),
        labelled_cell("Created", rx.moment(account.created_at, format="YYYY-MM-DD", local=True)),
        rx.table.cell(
            rx.flex(
                rename_dialog(account),
                rx.cond(
                    account.archived,
                    rx.button(
                        "Restore",
                        size=ROW_ACTION_SIZE,
                        variant="soft",
                        on_click=AccountsState.set_archived(account.id, False),
                    ),
                    rx.button(
                        "Archive",
                        size=ROW_ACTION_SIZE,
                        variant="soft",
                        on_click=AccountsState.set_archived(account.id, True),
                    ),
                ),
                delete_button(account),
                spacing="2",
                wrap="wrap",
            ),
            grid_column=WHOLE_CARD,
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
                stacked_table(
                    ("Name", "Exchange", "Strategies", "Created", ""),
                    AccountsState.accounts,
                    account_row,
                    id_="accounts-table",
                ),
                rx.text("No accounts yet: add the first one above.", color_scheme="gray"),
            ),
            spacing="4",
            width="100%",
        )
    )
