"""/strategies: the member's strategies and their bot tokens (shown once, then only their prefix).

Its forms keep what was typed when the server refuses it and empty only on success, as on /accounts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar
from sqlalchemy.orm import Session

from projectalgo import forms, snapshots, strategies
from projectalgo.clock import iso
from projectalgo.components.bot import bot_snippet
from projectalgo.components.dialogs import with_confirmation
from projectalgo.components.layout import form_error, layout, notice
from projectalgo.components.status import local_minute
from projectalgo.components.tables import ROW_ACTION_SIZE, WHOLE_CARD, labelled_cell, stacked_table
from projectalgo.members import Actor
from projectalgo.models import id_of
from projectalgo.pages.group import announce_board_changed
from projectalgo.runtime import services
from projectalgo.state import AuthState, CurrentUser, MemberActionsMixin, event_handler, in_session

T = TypeVar("T")


@dataclass
class TokenRow:
    id: int
    prefix: str
    created_at: str
    last_used_at: str


@dataclass
class StrategyRow:
    id: int
    name: str
    description: str
    symbol: str
    account_id: str
    account_name: str
    last_snapshot_at: str
    archived: bool
    tokens: list[TokenRow] = field(default_factory=list)


@dataclass
class AccountOption:
    id: str
    name: str


class StrategiesState(MemberActionsMixin, AuthState):
    strategies: rx.Field[list[StrategyRow]] = rx.field(default_factory=list)
    account_options: rx.Field[list[AccountOption]] = rx.field(default_factory=list)
    # A token just created: shown once, cleared on dismiss and on every page load.
    new_token: rx.Field[str] = rx.field("")
    new_token_strategy: rx.Field[str] = rx.field("")
    # Strategies created by this tab: the create form's key, so it empties after each.
    created: rx.Field[int] = rx.field(0)
    saved: rx.Field[int] = rx.field(0)  # the edit dialogs' key, so they close after a save

    @rx.var
    def new_token_snippet(self) -> str:
        return bot_snippet(services().settings.public_url, self.new_token) if self.new_token else ""

    async def _reload(self, member: CurrentUser) -> None:
        actor = member.actor
        own, accounts = await in_session(
            lambda session: (strategies.list_strategies(session, actor), strategies.list_accounts(session, actor))
        )
        self.strategies = [
            StrategyRow(
                s.id,
                s.name,
                s.description,
                s.symbol,
                str(s.account_id),
                s.account_name,
                iso(s.last_snapshot_at),
                s.archived,
                [TokenRow(t.id, t.prefix, iso(t.created_at), iso(t.last_used_at)) for t in s.tokens],
            )
            for s in own
        ]
        self.account_options = [AccountOption(str(a.id), a.name) for a in accounts if not a.archived]

    @event_handler
    async def open_strategies(self) -> EventSpec | None:
        self.new_token = self.new_token_strategy = ""
        return await self._open()

    @event_handler
    async def create_strategy(self, form: dict[str, str]) -> EventSpec | None:
        def create(session: Session, actor: Actor) -> tuple[str, str]:
            strategy = strategies.create_strategy(
                session, actor, account_id=forms.form_id(form, "account_id"), **_fields(form)
            )
            return strategy.name, strategies.issue_token(session, actor, id_of(strategy))

        return await self._issue(create, lambda created: f"Strategy {created[0]!r} created.", created=True)

    @event_handler
    async def new_token_for(self, strategy_id: int) -> EventSpec | None:
        def issue(session: Session, actor: Actor) -> tuple[str, str]:
            strategy = strategies.get_strategy(session, actor, forms.parse_id(strategy_id))
            return strategy.name, strategies.issue_token(session, actor, id_of(strategy))

        return await self._issue(
            issue, lambda _issued: "New token created. The older ones still work until you revoke them."
        )

    async def _issue(
        self,
        work: Callable[[Session, Actor], tuple[str, str]],
        done: Callable[[tuple[str, str]], str],
        *,
        created: bool = False,
    ) -> EventSpec | None:
        """Run `work`, which returns a strategy's name and a new token of it, and show that token this once."""

        def show(issued: tuple[str, str]) -> None:
            self.new_token_strategy, self.new_token = issued
            if created:
                self.created += 1

        return await self._act(work, done, then=show)

    @event_handler
    def dismiss_token(self) -> None:
        self.new_token = self.new_token_strategy = ""

    @event_handler
    async def update_strategy(self, form: dict[str, str]) -> EventSpec | None:
        redirect = await self._act(
            lambda session, actor: strategies.update_strategy(
                session,
                actor,
                forms.form_id(form, "strategy_id"),
                account_id=forms.form_id(form, "account_id"),
                **_fields(form),
            ),
            lambda _strategy: "Strategy saved.",
            then=self._saved,
        )
        if self.error:
            self.refused_id = forms.lenient_form_id(form, "strategy_id")
        return redirect

    def _saved(self, _strategy: object) -> None:
        self.saved += 1

    @event_handler
    async def set_archived(self, strategy_id: int, archived: bool) -> EventSpec | None:
        redirect = await self._act(
            lambda session, actor: strategies.set_strategy_archived(
                session, actor, forms.parse_id(strategy_id), archived=forms.parse_flag(archived)
            ),
            lambda strategy: (
                "Strategy archived: its history stays, its tokens are refused, it left the group board."
                if strategy.archived_at
                else "Strategy restored."
            ),
        )
        if redirect is None and not self.error:  # an archived strategy leaves the group board: open boards read it
            await announce_board_changed()
        return redirect

    @event_handler
    async def revoke_token(self, token_id: int) -> EventSpec | None:
        return await self._act(
            lambda session, actor: strategies.revoke_token(session, actor, forms.parse_id(token_id)),
            lambda _none: "Token revoked: bots using it are refused from now on.",
        )


def _fields(form: object) -> dict[str, str]:
    """A strategy form's text fields (InputError when the browser sent something a form cannot)."""
    return {
        "name": forms.form_text(form, "name", max_length=strategies.NAME_MAX_LENGTH, label="The name"),
        "description": forms.form_text(
            form, "description", max_length=strategies.DESCRIPTION_MAX_LENGTH, label="The description"
        ),
        "symbol": forms.form_text(form, "symbol", max_length=snapshots.SYMBOL_MAX_LENGTH, label="The symbol"),
    }


def account_select(default: rx.Var | str = "", **trigger: object) -> rx.Component:
    return rx.select.root(
        # Never wider than its form: a long account name is cut short with an ellipsis instead.
        rx.select.trigger(placeholder="Brokerage account", aria_label="Brokerage account", max_width="100%", **trigger),
        rx.select.content(
            rx.foreach(StrategiesState.account_options, lambda a: rx.select.item(a.name, value=a.id)),
        ),
        name="account_id",
        required=True,
        default_value=default,
    )


def create_form() -> rx.Component:
    return rx.form(
        rx.flex(
            rx.input(
                name="name",
                placeholder="Strategy name",
                required=True,
                max_length=strategies.NAME_MAX_LENGTH,
                aria_label="Strategy name",
                flex="2 1 10em",
            ),
            account_select(min_width="12em"),
            rx.input(
                name="symbol",
                placeholder="Symbol (optional)",
                max_length=snapshots.SYMBOL_MAX_LENGTH,
                aria_label="Symbol",
                flex="1 1 7em",
            ),
            rx.input(
                name="description",
                placeholder="Description (optional)",
                max_length=strategies.DESCRIPTION_MAX_LENGTH,
                aria_label="Description",
                flex="3 1 10em",
            ),
            rx.button("Create strategy", type="submit"),
            spacing="2",
            wrap="wrap",
        ),
        on_submit=StrategiesState.create_strategy,
        key=f"create-strategy-{StrategiesState.created}",
        width="100%",
    )


def new_token_card() -> rx.Component:
    return rx.cond(
        StrategiesState.new_token != "",
        rx.callout.root(
            rx.callout.text(
                rx.text.strong("Token for ", StrategiesState.new_token_strategy),
                ": copy it now. It is shown only this once; we keep only a hash.",
            ),
            rx.flex(
                rx.code(StrategiesState.new_token, id="new-token", overflow_wrap="anywhere"),
                rx.button(
                    "Copy token",
                    size="1",
                    on_click=[rx.set_clipboard(StrategiesState.new_token), rx.toast.success("Token copied")],
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            rx.text("Your bot sends:", size="2"),
            rx.code_block(
                StrategiesState.new_token_snippet, language="bash", wrap_long_lines=True, width="100%", max_width="100%"
            ),
            rx.button("I have stored it", size="1", variant="soft", on_click=StrategiesState.dismiss_token),
            color_scheme="amber",
            width="100%",
            min_width="0",
            id="new-token-card",
        ),
    )


def edit_dialog(strategy: ObjectVar[StrategyRow]) -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button("Edit", size=ROW_ACTION_SIZE, variant="soft")),
        rx.dialog.content(
            rx.dialog.title("Edit strategy"),
            rx.cond(StrategiesState.refused_id == strategy.id, form_error(StrategiesState.error)),
            rx.form(
                rx.vstack(
                    rx.el.input(type="hidden", name="strategy_id", value=strategy.id.to_string()),
                    rx.input(
                        name="name",
                        default_value=strategy.name,
                        required=True,
                        max_length=strategies.NAME_MAX_LENGTH,
                        aria_label="Name",
                        width="100%",
                    ),
                    # Its own text must not widen the dialog past a phone's screen (contain: inline-size).
                    account_select(strategy.account_id, width="100%", contain="inline-size"),
                    rx.input(
                        name="symbol",
                        default_value=strategy.symbol,
                        placeholder="Symbol (optional)",
                        max_length=snapshots.SYMBOL_MAX_LENGTH,
                        aria_label="Symbol",
                        width="100%",
                    ),
                    rx.text_area(
                        name="description",
                        default_value=strategy.description,
                        placeholder="Description (optional)",
                        max_length=strategies.DESCRIPTION_MAX_LENGTH,
                        aria_label="Description",
                        width="100%",
                    ),
                    rx.flex(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                        # Not a dialog.close: a refused edit stays in the open dialog; a new key closes it on success.
                        rx.button("Save", type="submit"),
                        spacing="2",
                        justify="end",
                        width="100%",
                    ),
                    margin_top="0.5em",
                ),
                on_submit=StrategiesState.update_strategy,
            ),
        ),
        key=f"edit-{strategy.id}-{StrategiesState.saved}",
    )


def token_chip(token: ObjectVar[TokenRow], strategy_name: rx.Var[str]) -> rx.Component:
    return rx.flex(
        rx.code(token.prefix, "…", size="1"),
        rx.text(
            "created ",
            local_minute(token.created_at, otherwise="never"),
            " · last used ",
            local_minute(token.last_used_at, otherwise="never"),
            size="1",
            color_scheme="gray",
            as_="span",
        ),
        with_confirmation(
            rx.button(
                "Revoke",
                size=ROW_ACTION_SIZE,
                variant="soft",
                color_scheme="red",
                title="Revoke token",
                aria_label=f"Revoke token {token.prefix}",
            ),
            question=f"Revoke token {token.prefix}… of “{strategy_name}”?",
            consequence="Bots using it will be refused from now on. This cannot be undone.",
            action="Revoke token",
            on_confirm=StrategiesState.revoke_token(token.id),
        ),
        align="center",
        spacing="2",
        wrap="wrap",
        class_name="token-chip",
    )


def archive_button(strategy: ObjectVar[StrategyRow]) -> rx.Component:
    return with_confirmation(
        rx.button("Archive", size=ROW_ACTION_SIZE, variant="soft", color_scheme="gray"),
        question=f"Archive the strategy “{strategy.name}”?",
        consequence="Its bots' tokens are refused until you restore it. Its history stays.",
        action="Archive strategy",
        on_confirm=StrategiesState.set_archived(strategy.id, True),
        color_scheme="orange",
    )


def strategy_row(strategy: ObjectVar[StrategyRow]) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.link(strategy.name, href=f"/strategies/{strategy.id}", weight="medium"),
            rx.cond(strategy.archived, rx.badge("archived", color_scheme="gray", margin_left="0.5em")),
            rx.text(strategy.description, size="1", color_scheme="gray"),
        ),
        labelled_cell("Account", strategy.account_name),
        labelled_cell("Symbol", strategy.symbol),
        labelled_cell(
            "Last snapshot",
            rx.cond(strategy.last_snapshot_at != "", rx.moment(strategy.last_snapshot_at, from_now=True), "never"),
        ),
        labelled_cell(
            "Tokens",
            rx.flex(
                rx.foreach(strategy.tokens, lambda token: token_chip(token, strategy.name)),
                direction="column",
                spacing="1",
            ),
            grid_column=WHOLE_CARD,  # each token's dates and button on one line of a stacked row
        ),
        rx.table.cell(
            rx.flex(
                edit_dialog(strategy),
                rx.button(
                    "New token",
                    size=ROW_ACTION_SIZE,
                    variant="soft",
                    on_click=StrategiesState.new_token_for(strategy.id),
                ),
                rx.cond(
                    strategy.archived,
                    rx.button(
                        "Restore",
                        size=ROW_ACTION_SIZE,
                        variant="soft",
                        on_click=StrategiesState.set_archived(strategy.id, False),
                    ),
                    archive_button(strategy),
                ),
                spacing="2",
                wrap="wrap",
            ),
            grid_column=WHOLE_CARD,
        ),
    )


def strategies_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.heading("Strategies", size="7"),
            form_error(StrategiesState.error),
            notice(StrategiesState.notice),
            new_token_card(),
            rx.cond(
                StrategiesState.account_options.length() > 0,
                create_form(),
                rx.text("First add a ", rx.link("brokerage account", href="/accounts"), " for your strategies."),
            ),
            rx.cond(
                StrategiesState.strategies.length() > 0,
                stacked_table(
                    ("Strategy", "Account", "Symbol", "Last snapshot", "Tokens", ""),
                    StrategiesState.strategies,
                    strategy_row,
                    id_="strategies-table",
                    # Six columns, the tokens' dates among them: stacked up to small laptops, not only phones.
                    stack_below="62em",
                ),
                rx.text("No strategies yet.", color_scheme="gray"),
            ),
            spacing="4",
            width="100%",
        )
    )
