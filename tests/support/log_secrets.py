"""What an app under test must never write to its log: the secret values the tests use, and anything shaped like
a secret (projectalgo.logs.SECRET_SHAPES: bearer tokens, Authorization values, whole bot tokens, Stripe keys and
client secrets, passwords in URLs)."""

from __future__ import annotations

from collections.abc import Mapping

from projectalgo.logs import SECRET_SHAPES


def shared_secrets() -> dict[str, str]:
    """The secret values every test shares, by name (imported here: tests.conftest imports this module)."""
    from tests.conftest import TEST_SECRET_KEY_BASE, TEST_STRIPE_SECRET_KEY, TEST_STRIPE_WEBHOOK_SECRET
    from tests.factories import PASSWORD
    from tests.support.cards import DECLINED_AT_CHARGE, THREE_D_SECURE, VISA

    return {
        "SECRET_KEY_BASE": TEST_SECRET_KEY_BASE,
        "Stripe secret key": TEST_STRIPE_SECRET_KEY,
        "Stripe webhook secret": TEST_STRIPE_WEBHOOK_SECRET,
        "the factories' password": PASSWORD,
        "a card number": VISA,
        "a declined card's number": DECLINED_AT_CHARGE,
        "a 3-D Secure card's number": THREE_D_SECURE,
    }


def leaks(log_text: str, secrets: Mapping[str, str]) -> list[str]:
    """The names of the `secrets` in `log_text`, then any text in it shaped like a secret."""
    named = [name for name, value in secrets.items() if value and value in log_text]
    shaped = [f"{match.group()!r}" for pattern, _ in SECRET_SHAPES for match in pattern.finditer(log_text)]
    return named + shaped
