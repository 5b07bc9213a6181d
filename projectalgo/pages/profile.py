"""/profile: the signed-in user's own sign-in: change the password, sign out everywhere."""

import reflex as rx
from reflex.event import EventSpec
from sqlalchemy.orm import Session

from projectalgo import forms, members
from projectalgo.components.layout import form_error, labelled_input, layout, new_password_inputs, notice
from projectalgo.runtime import services
from projectalgo.state import (
    AuthState,
    CurrentUser,
    event_handler,
    failure_message,
    in_password_session,
    in_session,
    signed_in,
)


class ProfileState(AuthState):
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    @event_handler
    @signed_in
    async def open_profile(self, _user: CurrentUser) -> None:
        self.error = self.notice = ""

    @event_handler
    @signed_in
    async def change_password(self, user: CurrentUser, form: dict[str, str]) -> None:
        """The current password is required; every other sign-in of the user ends, this one stays."""
        client = self.router.session.client_ip or "unknown"
        rounds = services().settings.bcrypt_rounds

        def change(session: Session) -> None:
            current, password, confirmation = (
                forms.form_text(form, name, max_length=members.PASSWORD_MAX_BYTES, label="The password")
                for name in ("current", "password", "confirmation")
            )
            members.change_password(
                session,
                user_id=user.id,
                current=current,
                password=password,
                confirmation=confirmation,
                client=client,
                bcrypt_rounds=rounds,
                keep_login_session_id=user.login_session_id,
            )

        try:
            await in_password_session(change)
        except Exception as error:  # noqa: BLE001 - failure_message logs what is not a refusal
            self.error, self.notice = failure_message(error), ""
            return None
        self.error, self.notice = "", "Password changed. Your other sign-ins have ended."
        return None

    @event_handler
    async def sign_out_everywhere(self) -> EventSpec:
        user = await self._current_user()
        if user is not None:
            await in_session(lambda session: members.end_all_sessions(session, user.id))
        self.session_token = ""
        await self._empty_tab()
        await self._forget_user()
        return rx.redirect("/login")


def profile_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.heading("Your profile", size="7"),
            rx.text(AuthState.user_name, " · ", AuthState.user_email, color_scheme="gray"),
            rx.card(
                rx.form(
                    rx.vstack(
                        rx.heading("Change password", size="4"),
                        form_error(ProfileState.error),
                        notice(ProfileState.notice),
                        labelled_input(
                            "Current password",
                            name="current",
                            type="password",
                            auto_complete="current-password",
                            required=True,
                        ),
                        *new_password_inputs(),
                        rx.button("Change password", type="submit"),
                        spacing="3",
                    ),
                    on_submit=ProfileState.change_password,
                    reset_on_submit=True,
                ),
                width="100%",
                max_width="30em",
            ),
            rx.card(
                rx.vstack(
                    rx.heading("Sign out everywhere", size="4"),
                    rx.text(
                        "Ends every sign-in of yours, on every device, this one included.",
                        size="2",
                        color_scheme="gray",
                    ),
                    rx.button(
                        "Sign out everywhere",
                        color_scheme="red",
                        variant="soft",
                        on_click=ProfileState.sign_out_everywhere,
                        id="sign-out-everywhere",
                    ),
                    spacing="3",
                ),
                width="100%",
                max_width="30em",
            ),
            spacing="4",
        )
    )
