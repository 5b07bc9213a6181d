"""/invite/<code>: who invited you, how many uses are left, and the registration form."""

import reflex as rx
from reflex.event import EventSpec
from sqlalchemy.orm import Session

from projectalgo import forms, members
from projectalgo.components.layout import form_error, labelled_input, layout, new_password_inputs
from projectalgo.runtime import services
from projectalgo.state import AuthState, event_handler, failure_message, in_password_session, in_session


class InviteState(AuthState):
    found: rx.Field[bool] = rx.field(False)
    usable: rx.Field[bool] = rx.field(False)
    inviter_name: rx.Field[str] = rx.field("")
    uses_remaining: rx.Field[int] = rx.field(0)
    reason: rx.Field[str] = rx.field("")
    error: rx.Field[str] = rx.field("")

    def _code(self) -> str:
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    async def _describe(self) -> None:
        code = self._code()
        view = await in_session(lambda session: members.describe_invite(session, code))
        self.found = view is not None
        self.usable = bool(view and view.usable)
        self.inviter_name = view.inviter_name if view else ""
        self.uses_remaining = view.uses_remaining if view else 0
        self.reason = (
            view.reason if view else "This invitation link is not valid. Check it with the person who sent it."
        )

    @event_handler
    async def open_invite(self) -> None:
        self.error = ""
        await self._current_user()
        await self._describe()

    @event_handler
    async def register(self, form: dict[str, str]) -> EventSpec | None:
        settings = services().settings
        code = self._code()
        client = self.router.session.client_ip or "unknown"

        def register(session: Session) -> None:
            members.register(
                session,
                code=code,
                name=forms.form_text(form, "name", max_length=members.NAME_MAX_LENGTH, label="The name"),
                email=forms.form_text(form, "email", max_length=members.EMAIL_MAX_LENGTH, label="The email"),
                password=forms.form_text(form, "password", max_length=members.PASSWORD_MAX_BYTES, label="The password"),
                confirmation=forms.form_text(
                    form, "confirmation", max_length=members.PASSWORD_MAX_BYTES, label="The confirmation"
                ),
                client=client,
                bcrypt_rounds=settings.bcrypt_rounds,
                default_uses=settings.invite_default_uses,
            )

        try:
            await in_password_session(register)
        except Exception as error:  # noqa: BLE001 - failure_message logs what is not a refusal
            self.error = failure_message(error)
            await self._describe()
            return None
        return rx.redirect("/login?registered=1")


def registration_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            form_error(InviteState.error),
            labelled_input(
                "Name", name="name", auto_complete="name", required=True, max_length=members.NAME_MAX_LENGTH
            ),
            labelled_input(
                "Email",
                name="email",
                type="email",
                auto_complete="email",
                required=True,
                max_length=members.EMAIL_MAX_LENGTH,
            ),
            *new_password_inputs(),
            rx.button("Create account", type="submit", width="100%"),
            spacing="3",
        ),
        on_submit=InviteState.register,
        reset_on_submit=False,
    )


def invite_page() -> rx.Component:
    return layout(
        rx.card(
            rx.vstack(
                rx.heading("Join ProjectAlgo", size="6"),
                rx.cond(
                    InviteState.usable,
                    rx.vstack(
                        rx.text(
                            InviteState.inviter_name,
                            " invited you. This invitation has ",
                            InviteState.uses_remaining,
                            rx.cond(InviteState.uses_remaining == 1, " use", " uses"),
                            " left.",
                            id="invite-summary",
                        ),
                        registration_form(),
                        width="100%",
                    ),
                    rx.vstack(
                        rx.callout(InviteState.reason, icon="info", color_scheme="amber", id="invite-problem"),
                        rx.text("Already a member? ", rx.link("Sign in", href="/login"), "."),
                    ),
                ),
                spacing="3",
            ),
            max_width="30em",
            margin_x="auto",
        )
    )
