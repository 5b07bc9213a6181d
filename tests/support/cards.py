"""The browser's part of a payment, done the way localstripe's Stripe.js does it (publishable key only)."""

from __future__ import annotations

import json

import requests

from tests.conftest import TEST_STRIPE_PUBLISHABLE_KEY

VISA = "4242424242424242"
DECLINED_AT_SETUP = "4000000000000002"  # localstripe (like Stripe) refuses to set this card up
DECLINED_AT_CHARGE = "4000000000000341"  # sets up fine, then its charge is declined
THREE_D_SECURE = "4000002500003155"  # asks for 3-D Secure at set-up and again at payment


def enter_card(localstripe_url: str, setup_client_secret: str, number: str) -> requests.Response:
    """Complete a card set-up as Stripe.js's confirmCardSetup(secret, {payment_method: {card}}) does, with the
    payer completing 3-D Secure when Stripe asks for it."""
    setup_id = setup_client_secret.split("_secret_")[0]
    url = f"{localstripe_url}/v1/setup_intents/{setup_id}/confirm"
    body = {
        "key": TEST_STRIPE_PUBLISHABLE_KEY,
        "use_stripe_sdk": True,
        "client_secret": setup_client_secret,
        "payment_method_data": {
            "type": "card",
            "card": {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"},
            "billing_details": {"address": {"postal_code": "12345"}},
        },
    }
    response = requests.post(url, data=json.dumps(body), timeout=10)
    if response.ok and response.json()["status"] == "requires_action":
        del body["payment_method_data"]
        response = requests.post(url, data=json.dumps(body), timeout=10)
    return response


def authenticate(localstripe_url: str, payment_client_secret: str, *, success: bool = True) -> requests.Response:
    """Complete (or fail) 3-D Secure for a PaymentIntent as Stripe.js's confirmCardPayment(secret) does."""
    intent_id = payment_client_secret.split("_secret_")[0]
    body = {"key": TEST_STRIPE_PUBLISHABLE_KEY, "client_secret": payment_client_secret}
    url = f"{localstripe_url}/v1/payment_intents/{intent_id}/_authenticate?success={str(success).lower()}"
    return requests.post(url, data=json.dumps(body), timeout=10)
