"""A BillingGateway for the network failures localstripe cannot produce: Stripe carries out a confirmation
but its answer never arrives, and then, perhaps, Stripe cannot be reached at all for a while.

Everything else is the real StripeGateway talking to localstripe.
"""

from __future__ import annotations

from projectalgo.billing import CardSetup, Intent, PaymentUnavailableError
from projectalgo.integrations.stripe import StripeGateway


class AnswerLostGateway:
    def __init__(self, gateway: StripeGateway, *, down_after_confirm: bool = False) -> None:
        self._gateway = gateway
        self._down_after_confirm = down_after_confirm
        self.down = False  # while True, every call fails as a network error would

    def _reachable(self) -> None:
        if self.down:
            raise PaymentUnavailableError()

    def start_card_setup(self, *, user_id: int) -> tuple[str, str]:
        self._reachable()
        return self._gateway.start_card_setup(user_id=user_id)

    def card_setup(self, setup_id: str) -> CardSetup:
        self._reachable()
        return self._gateway.card_setup(setup_id)

    def create_payment(
        self, *, user_id: int, amount: int, currency: str, payment_method: str, idempotency_key: str
    ) -> tuple[Intent, str]:
        self._reachable()
        return self._gateway.create_payment(
            user_id=user_id,
            amount=amount,
            currency=currency,
            payment_method=payment_method,
            idempotency_key=idempotency_key,
        )

    def confirm_payment(self, intent_id: str) -> Intent:
        self._reachable()
        self._gateway.confirm_payment(intent_id)  # Stripe takes the payment...
        self.down = self._down_after_confirm
        raise PaymentUnavailableError()  # ...and its answer is lost on the way back

    def payment(self, intent_id: str) -> Intent:
        self._reachable()
        return self._gateway.payment(intent_id)
