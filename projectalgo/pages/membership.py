"""/membership: the price, what it gives, and the signed-in user's own membership."""

import reflex as rx

from projectalgo.components.layout import layout
from projectalgo.runtime import services
from projectalgo.state import AuthState


class MembershipState(AuthState):
    price: str = ""
    currency: str = ""

    @rx.event
    async def open_membership(self) -> rx.event.EventSpec | None:
        if await self._current_user() is None:
            return self._to_login()
        settings = services().settings
        self.price, self.currency = f"{settings.membership_price:,.2f}", settings.membership_currency.upper()
        return None


def membership_summary() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Your membership", size="4"),
            rx.cond(
                AuthState.membership_exempt,
                rx.text("Included with your role: you never need to pay.", id="membership-state"),
                rx.cond(
                    AuthState.membership_ends_at != "",
                    rx.text(
                        "Paid until ",
                        rx.moment(AuthState.membership_ends_at, format="LL, HH:mm", local=True),
                        id="membership-state",
                    ),
                    rx.text("You have no membership yet.", id="membership-state"),
                ),
            ),
            spacing="2",
        ),
        width="100%",
    )


def membership_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.heading("Membership", size="7"),
            rx.text(
                "A yearly membership (",
                rx.text.strong(MembershipState.price, " ", MembershipState.currency),
                " per year) gives you the live dashboard of your strategies, their history and charts, "
                "and an invite link for the people you trust.",
            ),
            membership_summary(),
            spacing="4",
            width="100%",
        )
    )
