"""/login and /logout."""

import reflex as rx
from reflex.event import EventSpec
from sqlalchemy.orm import Session

from projectalgo import forms, members
from projectalgo.components.layout import form_error, labelled_input, layout
from projectalgo.runtime import services
from projectalgo.state import AuthState, event_handler, failure_message, in_password_session, in_session

HOME = "/dashboard"


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect to another host after sign-in."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return HOME


class LoginState(AuthState):
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    @event_handler
    async def open_login(self) -> EventSpec | None:
        self.error = members.ACCOUNT_DISABLED if self.router.url.query_parameters.get("disabled") else ""
        query = self.router.url.query_parameters
        self.notice = (
            "Your account is ready. Sign in."
            if query.get("registered")
            else "Your new password is set. Sign in."
            if query.get("reset")
            else ""
        )
        if await self._current_user() is not None:
            return rx.redirect(safe_next(self.router.url.query_parameters.get("next")))
        return None

    @event_handler
    async def sign_in(self, form: dict[str, str]) -> EventSpec | None:
        client = self.router.session.client_ip or "unknown"
        settings = services().settings

        def authenticate(session: Session) -> str:
            email = forms.form_text(form, "email", max_length=members.EMAIL_MAX_LENGTH, label="The email")
            password = forms.form_text(form, "password", max_length=members.PASSWORD_MAX_BYTES, label="The password")
            user = members.authenticate(
                session, email=email, password=password, client=client, bcrypt_rounds=settings.bcrypt_rounds
            )
            return members.start_session(session, user=user, days=settings.session_days)

        try:
            token = await in_password_session(authenticate)
        except Exception as error:  # noqa: BLE001 - failure_message logs what is not a refusal
            self.error = failure_message(error)
            return None
        await self._empty_tab()  # whatever this tab showed was loaded for someone else, or for nobody
        self.error = ""
        self.session_token = token
        return rx.redirect(safe_next(self.router.url.query_parameters.get("next")))


def login_page() -> rx.Component:
    return layout(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.heading("Sign in", size="6"),
                    rx.text("ProjectAlgo is for members only. Ask a member for an invite link.", color_scheme="gray"),
                    rx.cond(LoginState.notice != "", rx.callout(LoginState.notice, icon="check", color_scheme="green")),
                    form_error(LoginState.error),
                    labelled_input("Email", name="email", type="email", auto_complete="email", required=True),
                    labelled_input(
                        "Password", name="password", type="password", auto_complete="current-password", required=True
                    ),
                    rx.button("Sign in", type="submit", width="100%"),
                    spacing="3",
                ),
                on_submit=LoginState.sign_in,
                reset_on_submit=False,
            ),
            max_width="28em",
            margin_x="auto",
        )
    )


class LogoutState(AuthState):
    @event_handler
    async def sign_out(self) -> EventSpec:
        token = self.session_token
        if token:
            await in_session(lambda session: members.end_session(session, token))
        self.session_token = ""
        await self._empty_tab()
        await self._forget_user()
        return rx.redirect("/login")


def logout_page() -> rx.Component:
    return layout(rx.text("Signing you out…"))
