"""/reset/<token>: set a new password with a one-time link an admin issued (the app sends no email)."""

import reflex as rx
from reflex.event import EventSpec
from sqlalchemy.orm import Session

from projectalgo import forms, members
from projectalgo.components.layout import form_error, layout, new_password_inputs
from projectalgo.runtime import services
from projectalgo.state import AuthState, event_handler, failure_message, in_password_session, in_session


class ResetState(AuthState):
    usable: rx.Field[bool] = rx.field(False)
    error: rx.Field[str] = rx.field("")

    def _token(self) -> str:
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    @event_handler
    async def open_reset(self) -> None:
        self.error = ""
        token = self._token()
        self.usable = await in_session(lambda session: members.password_reset_usable(session, token))

    @event_handler
    async def reset_password(self, form: dict[str, str]) -> EventSpec | None:
        token, rounds = self._token(), services().settings.bcrypt_rounds

        def reset(session: Session) -> None:
            password, confirmation = (
                forms.form_text(form, name, max_length=members.PASSWORD_MAX_BYTES, label="The password")
                for name in ("password", "confirmation")
            )
            members.reset_password(
                session, token=token, password=password, confirmation=confirmation, bcrypt_rounds=rounds
            )

        try:
            await in_password_session(reset)
        except Exception as error:  # noqa: BLE001 - failure_message logs what is not a refusal
            self.error = failure_message(error)
            self.usable = await in_session(lambda session: members.password_reset_usable(session, token))
            return None
        # Every sign-in of that user has ended, this tab's too if it was theirs: start clean.
        self.session_token = ""
        await self._empty_tab()
        await self._forget_user()
        return rx.redirect("/login?reset=1")


def reset_page() -> rx.Component:
    return layout(
        rx.card(
            rx.vstack(
                rx.heading("Set a new password", size="6"),
                rx.cond(
                    ResetState.usable,
                    rx.form(
                        rx.vstack(
                            form_error(ResetState.error),
                            *new_password_inputs(),
                            rx.button("Set password", type="submit", width="100%"),
                            spacing="3",
                        ),
                        on_submit=ResetState.reset_password,
                        reset_on_submit=False,
                    ),
                    rx.callout(
                        "This reset link is not valid any more. Ask an admin for a new one.",
                        icon="info",
                        color_scheme="amber",
                        id="reset-problem",
                    ),
                ),
                spacing="3",
            ),
            max_width="30em",
            margin_x="auto",
        )
    )
