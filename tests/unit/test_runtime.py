import pytest

from projectalgo.integrations.stripe import StripeGateway
from projectalgo.runtime import services
from tests.conftest import TEST_SECRET_KEY_BASE, TEST_STRIPE_PUBLISHABLE_KEY, TEST_STRIPE_SECRET_KEY


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """services() built from a controlled environment, and forgotten afterwards."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.setenv("SECRET_KEY_BASE", TEST_SECRET_KEY_BASE)
    services.cache_clear()
    yield monkeypatch
    services.cache_clear()


def test_without_a_stripe_secret_key_there_is_no_payment_gateway(environment):
    assert services().payments is None


def test_with_stripe_keys_the_gateway_is_built_once(environment):
    environment.setenv("STRIPE_SECRET_KEY", TEST_STRIPE_SECRET_KEY)
    environment.setenv("STRIPE_PUBLISHABLE_KEY", TEST_STRIPE_PUBLISHABLE_KEY)
    assert isinstance(services().payments, StripeGateway)
    assert services().payments is services().payments
