import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from projectalgo.settings import SettingsError, load_settings


def test_defaults_are_embedded_and_need_no_cloud_account():
    settings = load_settings({})
    assert settings.app_env == "development"
    assert settings.database_backend == "sqlite"
    assert settings.snapshot_store == "sql"
    assert settings.membership_price == Decimal("499.00")
    assert settings.invite_default_uses == 5
    assert settings.bcrypt_rounds == 12


def test_original_and_standard_aws_names_are_both_read():
    original = load_settings({"AWS_ACCESS_KEY": "a", "AWS_SECRET_KEY": "b", "DYNAMODB_REGION": "eu-west-1"})
    standard = load_settings({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_REGION": "eu-west-1"})
    assert (original.aws_access_key, original.aws_secret_key, original.dynamodb_region) == ("a", "b", "eu-west-1")
    assert (standard.aws_access_key, standard.aws_secret_key, standard.dynamodb_region) == ("a", "b", "eu-west-1")


def test_a_dynamodb_table_selects_the_dynamodb_store():
    assert load_settings({"DYNAMODB_TABLE": "snapshots"}).snapshot_store == "dynamodb"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"APP_ENV": "prod"}, "APP_ENV"),
        ({"BCRYPT_ROUNDS": "twelve"}, "BCRYPT_ROUNDS"),
        ({"BCRYPT_ROUNDS": "99"}, "BCRYPT_ROUNDS"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DYNAMODB_ENDPOINT_URL": "localhost:8000"}, "DYNAMODB_ENDPOINT_URL"),
        ({"AWS_ACCESS_KEY": "only-half"}, "AWS_ACCESS_KEY"),
        ({"STRIPE_SECRET_KEY": "pk_test_wrong_kind"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "sk_test_only_half"}, "STRIPE_PUBLISHABLE_KEY"),
        (
            {"STRIPE_SECRET_KEY": "sk_live_a", "STRIPE_PUBLISHABLE_KEY": "pk_test_b"},
            "both be test keys or both live keys",
        ),
        ({"MEMBERSHIP_CURRENCY": "jpy"}, "MEMBERSHIP_CURRENCY"),
        ({"MEMBERSHIP_PRICE": "4.999"}, "MEMBERSHIP_PRICE"),
        ({"MEMBERSHIP_PRICE": "NaN"}, "MEMBERSHIP_PRICE"),
        ({"SECRET_KEY_BASE": "short"}, "SECRET_KEY_BASE"),
        ({"APP_ENV": "production"}, "SECRET_KEY_BASE"),
        ({"SMTP_TLS": "tls"}, "SMTP_TLS"),
        ({"SMTP_PORT": "0"}, "SMTP_PORT"),
        ({"ALERT_WEBHOOKS_ALLOW_PRIVATE": "yes"}, "ALERT_WEBHOOKS_ALLOW_PRIVATE"),
    ],
)
def test_a_bad_setting_names_its_variable(env, variable):
    with pytest.raises(SettingsError, match=variable):
        load_settings(env)


def test_production_refuses_to_start_without_its_own_secret(tmp_path):
    with pytest.raises(SettingsError, match="SECRET_KEY_BASE"):
        load_settings({"APP_ENV": "production", "SECRET_KEY_FILE": str(tmp_path / "secret")})
    assert not (tmp_path / "secret").exists()  # production never falls back to a generated secret
    assert load_settings({"APP_ENV": "production", "SECRET_KEY_BASE": "x" * 40}).is_production


def test_no_two_installs_share_a_secret(tmp_path):
    """Unset outside production: each install generates its own secret once, readable only by its owner."""
    first, second = tmp_path / "one" / "secret", tmp_path / "two" / "secret"
    first.parent.mkdir()
    second.parent.mkdir()
    one = load_settings({"SECRET_KEY_FILE": str(first)}).secret_key_base
    two = load_settings({"SECRET_KEY_FILE": str(second)}).secret_key_base
    assert one != two and len(one) >= 32
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert load_settings({"SECRET_KEY_FILE": str(first)}).secret_key_base == one  # kept across restarts
    assert "secret_key_base" in Path(".gitignore").read_text()


def test_a_damaged_secret_file_is_named(tmp_path):
    (tmp_path / "secret").write_text("short\n")
    with pytest.raises(SettingsError, match="SECRET_KEY_FILE"):
        load_settings({"SECRET_KEY_FILE": str(tmp_path / "secret")})


def test_production_refuses_a_weak_bcrypt_cost():
    production = {"APP_ENV": "production", "SECRET_KEY_BASE": "x" * 40}
    with pytest.raises(SettingsError, match="BCRYPT_ROUNDS must be at least 10"):
        load_settings(production | {"BCRYPT_ROUNDS": "4"})
    assert load_settings(production | {"BCRYPT_ROUNDS": "10"}).bcrypt_rounds == 10
    assert load_settings({"BCRYPT_ROUNDS": "4"}).bcrypt_rounds == 4  # tests and development may go faster


def test_only_the_public_origin_is_allowed_unless_more_are_configured():
    assert load_settings({"PUBLIC_URL": "https://example.com/"}).cors_allowed_origins == ("https://example.com",)
    assert load_settings({"PORT": "4100"}).cors_allowed_origins == ("http://localhost:4100",)
    extra = load_settings({"PUBLIC_URL": "https://example.com", "CORS_ALLOWED_ORIGINS": "https://example.org"})
    assert extra.cors_allowed_origins == ("https://example.com", "https://example.org")
    for bad in ("*", "https://example.org/path", "example.org"):
        with pytest.raises(SettingsError, match="CORS_ALLOWED_ORIGINS"):
            load_settings({"CORS_ALLOWED_ORIGINS": bad})


def test_production_payments_need_the_webhook_secret():
    keys = {"STRIPE_SECRET_KEY": "sk_live_a", "STRIPE_PUBLISHABLE_KEY": "pk_live_b"}
    production = {"APP_ENV": "production", "SECRET_KEY_BASE": "x" * 40} | keys
    with pytest.raises(SettingsError, match="STRIPE_WEBHOOK_SECRET"):
        load_settings(production)
    assert load_settings(production | {"STRIPE_WEBHOOK_SECRET": "whsec_c"}).stripe_webhook_secret == "whsec_c"
    assert load_settings(keys).stripe_webhook_secret is None  # development may go without


def test_the_stripe_js_url_is_kept_exactly_and_api_bases_lose_their_trailing_slash():
    settings = load_settings(
        {"STRIPE_API_BASE": "http://127.0.0.1:8420/", "STRIPE_JS_URL": "http://127.0.0.1:8420/js.stripe.com/v3/"}
    )
    assert settings.stripe_api_base == "http://127.0.0.1:8420"
    assert settings.stripe_js_url == "http://127.0.0.1:8420/js.stripe.com/v3/"
    assert load_settings({}).stripe_js_url == "https://js.stripe.com/v3/"


def test_rxconfig_takes_the_origins_and_proxy_hops_from_the_settings():
    """The websocket and Reflex's CORS accept only these origins; client addresses come through these proxies."""
    env = {**os.environ, "PUBLIC_URL": "https://example.com", "TRUSTED_PROXY_HOPS": "1", "PYTHONPATH": "."}
    script = "import rxconfig; print(list(rxconfig.config.cors_allowed_origins), rxconfig.config.trusted_proxy_hops)"
    printed = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert printed.strip() == "['https://example.com'] 1"


def test_make_run_listens_on_loopback_unless_host_says_otherwise():
    assert '--backend-host "${HOST:-127.0.0.1}"' in Path("scripts/run").read_text()


def test_offline_comes_after_stale():
    assert (load_settings({}).stale_after_ms, load_settings({}).offline_after_ms) == (600_000, 3_600_000)
    assert load_settings({"STALE_AFTER_MINUTES": "90"}).offline_after_minutes == 90
    with pytest.raises(SettingsError, match="OFFLINE_AFTER_MINUTES must be between 30"):
        load_settings({"STALE_AFTER_MINUTES": "30", "OFFLINE_AFTER_MINUTES": "20"})


class _Recording(dict):
    """An environment that notes every variable the settings ask it for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name: str, default: object = None) -> object:
        self.asked.add(name)
        return super().get(name, default)


def test_every_setting_is_documented_in_env_example(tmp_path):
    env = _Recording()
    env["SECRET_KEY_FILE"] = str(tmp_path / "secret")
    load_settings(env)
    documented = Path(".env.example").read_text()
    assert len(env.asked) > 25
    assert sorted(name for name in env.asked if name not in documented) == []


def test_several_workers_need_redis_to_share_what_they_know():
    with pytest.raises(SettingsError, match="WORKERS=3 needs REFLEX_REDIS_URL"):
        load_settings({"WORKERS": "3"})
    shared = load_settings({"WORKERS": "3", "REFLEX_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert (shared.workers, load_settings({}).workers) == (3, 1)
