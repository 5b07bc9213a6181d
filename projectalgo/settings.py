"""One validated, frozen Settings object built from the environment at start-up.

Variable names from the original app are kept (AWS_ACCESS_KEY, DYNAMODB_TABLE, STRIPE_SECRET_KEY, ...);
the standard AWS names are accepted too. Every variable is documented in `.env.example`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import overload
from urllib.parse import urlparse

ENVIRONMENTS = ("development", "test", "production")
# Stripe counts these currencies in whole units (or thousandths), not cents; the price is charged in cents.
NOT_CENT_CURRENCIES = "bhd bif clp djf gnf iqd jod jpy kmf krw kwd lyd mga omr pyg rwf tnd ugx vnd vuv xaf xof xpf"
# Outside production an unset SECRET_KEY_BASE is generated once per install and kept in this file (git-ignored,
# readable by its owner only), so no two installs ever share a secret.
DEFAULT_SECRET_KEY_FILE = ".secret_key_base"
SECRET_MIN_LENGTH = 32
PRODUCTION_MIN_BCRYPT_ROUNDS = 10
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SMTP_TLS_MODES = ("starttls", "ssl", "none")


class SettingsError(ValueError):
    """A missing or malformed setting; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    app_env: str
    database_url: str
    secret_key_base: str
    public_url: str
    bcrypt_rounds: int
    invite_default_uses: int
    # A sign-in ends after session_days in all, or after session_idle_minutes without use.
    session_days: int
    session_idle_minutes: int
    # Reverse proxies in front of the app whose X-Forwarded-For is believed (0: the socket's own address).
    trusted_proxy_hops: int
    # Snapshot store: DynamoDB when a table is named, the embedded SQL store otherwise.
    dynamodb_table: str | None
    dynamodb_region: str
    dynamodb_endpoint_url: str | None
    aws_access_key: str | None
    aws_secret_key: str | None
    # Stripe billing.
    stripe_publishable_key: str | None
    stripe_secret_key: str | None
    stripe_webhook_secret: str | None
    stripe_api_base: str | None
    stripe_js_url: str
    membership_price: Decimal
    membership_currency: str
    # A strategy is "stale" when its last snapshot is older than this, and "offline" past the second.
    stale_after_minutes: int
    offline_after_minutes: int
    # A wallet change not explained by realised PnL is a cash flow beyond both: dollars, and % of the wallet.
    flow_tolerance_usd: Decimal
    flow_tolerance_percent: Decimal
    # Snapshot ingestion: per-token rate limit (token bucket).
    ingest_rate_per_second: float
    ingest_burst: int
    # Origins whose pages may use the websocket and the API with credentials: PUBLIC_URL's, then any others
    # configured. The bot route takes posts from any origin, without credentials.
    cors_allowed_origins: tuple[str, ...]
    # Reflex's state manager uses Redis when this is set (several workers).
    redis_url: str | None
    # Backend worker processes `make prod` starts on this host; more than one needs REFLEX_REDIS_URL.
    workers: int
    # Logs (projectalgo/logs.py): one line per event, JSON lines or readable text; the app's own loggers' level.
    log_format: str
    log_level: str
    # Alerts' email (issue 17): none without a host (the channel is then hidden). TLS: "starttls", "ssl" or "none".
    smtp_host: str | None
    smtp_port: int
    smtp_tls: str
    smtp_user: str | None
    smtp_password: str | None
    smtp_from: str
    # Webhooks may call private, loopback and link-local addresses only when this is set (a trusted network).
    alert_webhooks_allow_private: bool
    # How often the worker holding the alerts' lease sweeps for silent bots and sends what is due.
    alert_sweep_seconds: int

    @property
    def snapshot_store(self) -> str:
        return "dynamodb" if self.dynamodb_table else "sql"

    @property
    def database_backend(self) -> str:
        return self.database_url.split(":", 1)[0].split("+", 1)[0]

    @property
    def stale_after_ms(self) -> int:
        return self.stale_after_minutes * 60_000

    @property
    def offline_after_ms(self) -> int:
        return self.offline_after_minutes * 60_000

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"


@overload
def _text(env: Mapping[str, str], *names: str, default: str) -> str: ...
@overload
def _text(env: Mapping[str, str], *names: str, default: str | None = None) -> str | None: ...
def _text(env: Mapping[str, str], *names: str, default: str | None = None) -> str | None:
    """The first non-empty value among `names` (aliases), else the default."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return default


def _decimal(env: Mapping[str, str], name: str, default: Decimal, low: Decimal, high: Decimal) -> Decimal:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite() or not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {raw!r}")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


@overload
def _url(env: Mapping[str, str], name: str, default: str, *, exact: bool = False) -> str: ...
@overload
def _url(env: Mapping[str, str], name: str, default: str | None = None, *, exact: bool = False) -> str | None: ...
def _url(env: Mapping[str, str], name: str, default: str | None = None, *, exact: bool = False) -> str | None:
    """An http(s) URL; without a trailing slash (a base to append paths to) unless `exact`."""
    value = _text(env, name, default=default)
    if value is not None:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/") if value and not exact else value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices`, whatever its case (kept in the case `choices` has)."""
    raw = _text(env, name, default=default)
    for choice in choices:
        if raw.casefold() == choice.casefold():
            return choice
    raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")


def _price(env: Mapping[str, str]) -> Decimal:
    raw = _text(env, "MEMBERSHIP_PRICE", default="499.00")
    try:
        price = Decimal(raw)
    except InvalidOperation:
        raise SettingsError(f"MEMBERSHIP_PRICE must be an amount like 499.00, got {raw!r}") from None
    if not price.is_finite() or price <= 0 or price != price.quantize(Decimal("0.01")):
        raise SettingsError(f"MEMBERSHIP_PRICE must be a positive amount with at most 2 decimals, got {raw!r}")
    return price


def public_url(env: Mapping[str, str]) -> str:
    """PUBLIC_URL: where browsers reach the app (pages, websocket, API, invite links); localhost:PORT by default."""
    port = _integer(env, "PORT", 3000, 1, 65_535)
    return _url(env, "PUBLIC_URL", default=f"http://localhost:{port}")


def _origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """PUBLIC_URL's origin, then CORS_ALLOWED_ORIGINS (comma-separated origins of other front ends, if any)."""
    extra = [o.strip().rstrip("/") for o in (_text(env, "CORS_ALLOWED_ORIGINS") or "").split(",") if o.strip()]
    for origin in extra:
        parsed = urlparse(origin)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or _origin(origin) != origin:
            raise SettingsError(
                f"CORS_ALLOWED_ORIGINS must be a comma-separated list of origins like https://example.com, got "
                f"{origin!r} (bots may post from any origin without it)"
            )
    own = _origin(public_url(env))
    return (own, *(o for o in extra if o != own))


def trusted_proxy_hops(env: Mapping[str, str]) -> int:
    """TRUSTED_PROXY_HOPS: how many reverse proxies append to X-Forwarded-For before the app (0: none)."""
    return _integer(env, "TRUSTED_PROXY_HOPS", 0, 0, 10)


def _secret_key_base(env: Mapping[str, str], app_env: str) -> str:
    """SECRET_KEY_BASE; outside production, generated on first start into SECRET_KEY_FILE when unset."""
    secret = _text(env, "SECRET_KEY_BASE")
    if secret is None:
        if app_env == "production":
            raise SettingsError("SECRET_KEY_BASE must be set to a random value in production")
        path = Path(_text(env, "SECRET_KEY_FILE") or DEFAULT_SECRET_KEY_FILE)
        secret = _install_secret(path)
        if len(secret) < SECRET_MIN_LENGTH:
            raise SettingsError(f"SECRET_KEY_FILE {str(path)!r} must hold at least {SECRET_MIN_LENGTH} characters")
    if len(secret) < SECRET_MIN_LENGTH:
        raise SettingsError(f"SECRET_KEY_BASE must be at least {SECRET_MIN_LENGTH} characters long")
    return secret


def _install_secret(path: Path) -> str:
    """This install's own secret: read from `path`, or generated and written there, readable by its owner only."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise SettingsError(f"SECRET_KEY_FILE {str(path)!r} cannot be read: {error.strerror}") from None
    secret = secrets.token_urlsafe(48)
    try:
        # O_EXCL: when two processes start at once, one writes and the other reads what it wrote.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    except OSError as error:
        raise SettingsError(f"SECRET_KEY_FILE {str(path)!r} cannot be created: {error.strerror}") from None
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise SettingsError naming the first bad variable."""
    env = os.environ if env is None else env
    app_env = _text(env, "APP_ENV", default="development")
    if app_env not in ENVIRONMENTS:
        raise SettingsError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {app_env!r}")

    database_url = _text(env, "DATABASE_URL", default="sqlite:///projectalgo.db")
    if not database_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgresql+psycopg2:")):
        raise SettingsError(f"DATABASE_URL must be a sqlite:// or postgresql:// URL, got {database_url!r}")

    secret = _secret_key_base(env, app_env)
    bcrypt_rounds = _integer(env, "BCRYPT_ROUNDS", 12, 4, 16)
    if app_env == "production" and bcrypt_rounds < PRODUCTION_MIN_BCRYPT_ROUNDS:
        raise SettingsError(f"BCRYPT_ROUNDS must be at least {PRODUCTION_MIN_BCRYPT_ROUNDS} in production")

    aws_access_key = _text(env, "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
    aws_secret_key = _text(env, "AWS_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
    if bool(aws_access_key) != bool(aws_secret_key):
        raise SettingsError("AWS_ACCESS_KEY and AWS_SECRET_KEY must be set together")

    stripe_secret_key = _text(env, "STRIPE_SECRET_KEY")
    if stripe_secret_key and not stripe_secret_key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise SettingsError("STRIPE_SECRET_KEY must start with sk_test_, sk_live_, rk_test_ or rk_live_")
    stripe_publishable_key = _text(env, "STRIPE_PUBLISHABLE_KEY")
    if stripe_publishable_key and not stripe_publishable_key.startswith(("pk_test_", "pk_live_")):
        raise SettingsError("STRIPE_PUBLISHABLE_KEY must start with pk_test_ or pk_live_")
    if bool(stripe_secret_key) != bool(stripe_publishable_key):
        raise SettingsError("STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY must be set together")
    if (
        stripe_secret_key
        and stripe_publishable_key
        and ("_live_" in stripe_secret_key) != ("_live_" in stripe_publishable_key)
    ):
        raise SettingsError("STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY must both be test keys or both live keys")

    stripe_webhook_secret = _text(env, "STRIPE_WEBHOOK_SECRET")
    if app_env == "production" and stripe_secret_key and not stripe_webhook_secret:
        # Without the webhook a payment whose answer the app missed is only settled when its payer comes back.
        raise SettingsError("STRIPE_WEBHOOK_SECRET must be set in production when STRIPE_SECRET_KEY is")

    currency = _text(env, "MEMBERSHIP_CURRENCY", default="usd").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise SettingsError(f"MEMBERSHIP_CURRENCY must be a 3-letter ISO code, got {currency!r}")
    if currency in NOT_CENT_CURRENCIES.split():
        raise SettingsError(f"MEMBERSHIP_CURRENCY must be a currency with cents (usd, eur, ...), got {currency!r}")

    stale_after_minutes = _integer(env, "STALE_AFTER_MINUTES", 10, 1, 10_080)
    redis_url = _text(env, "REFLEX_REDIS_URL")
    workers = _integer(env, "WORKERS", 1, 1, 64)
    if workers > 1 and not redis_url:
        # Each worker would keep its own tabs' state, live registrations and rate limits: they must share Redis.
        raise SettingsError(f"WORKERS={workers} needs REFLEX_REDIS_URL: several workers share state through Redis")
    return Settings(
        app_env=app_env,
        database_url=database_url,
        secret_key_base=secret,
        public_url=public_url(env),
        bcrypt_rounds=bcrypt_rounds,
        invite_default_uses=_integer(env, "INVITE_DEFAULT_USES", 5, 0, 10_000),
        session_days=_integer(env, "SESSION_DAYS", 30, 1, 365),
        session_idle_minutes=_integer(env, "SESSION_IDLE_MINUTES", 24 * 60, 10, 365 * 24 * 60),
        trusted_proxy_hops=trusted_proxy_hops(env),
        dynamodb_table=_text(env, "DYNAMODB_TABLE"),
        dynamodb_region=_text(env, "DYNAMODB_REGION", "AWS_REGION", "AWS_DEFAULT_REGION", default="us-east-1"),
        dynamodb_endpoint_url=_url(env, "DYNAMODB_ENDPOINT_URL"),
        aws_access_key=aws_access_key,
        aws_secret_key=aws_secret_key,
        stripe_publishable_key=stripe_publishable_key,
        stripe_secret_key=stripe_secret_key,
        stripe_webhook_secret=stripe_webhook_secret,
        stripe_api_base=_url(env, "STRIPE_API_BASE"),
        # Kept exactly: Stripe.js lives at .../v3/ (with the slash), and so does localstripe's copy.
        stripe_js_url=_url(env, "STRIPE_JS_URL", default="https://js.stripe.com/v3/", exact=True),
        membership_price=_price(env),
        membership_currency=currency,
        stale_after_minutes=stale_after_minutes,
        offline_after_minutes=_integer(
            env, "OFFLINE_AFTER_MINUTES", max(60, stale_after_minutes), stale_after_minutes, 100_800
        ),
        flow_tolerance_usd=_decimal(env, "FLOW_TOLERANCE_USD", Decimal(1), Decimal(0), Decimal(1_000_000)),
        flow_tolerance_percent=_decimal(env, "FLOW_TOLERANCE_PERCENT", Decimal("0.1"), Decimal(0), Decimal(100)),
        ingest_rate_per_second=_integer(env, "INGEST_RATE_PER_SECOND", 10, 1, 100_000),
        ingest_burst=_integer(env, "INGEST_BURST", 50, 1, 1_000_000),
        cors_allowed_origins=cors_origins(env),
        redis_url=redis_url,
        workers=workers,
        log_format=_choice(env, "LOG_FORMAT", LOG_FORMATS, default="json" if app_env == "production" else "text"),
        log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS, default="INFO"),
        smtp_host=_text(env, "SMTP_HOST"),
        smtp_port=_integer(env, "SMTP_PORT", 587, 1, 65_535),
        smtp_tls=_choice(env, "SMTP_TLS", SMTP_TLS_MODES, default="starttls"),
        smtp_user=_text(env, "SMTP_USER"),
        smtp_password=_text(env, "SMTP_PASSWORD"),
        smtp_from=_text(env, "SMTP_FROM", default="ProjectAlgo <alerts@localhost>"),
        alert_webhooks_allow_private=_choice(env, "ALERT_WEBHOOKS_ALLOW_PRIVATE", ("false", "true"), "false") == "true",
        alert_sweep_seconds=_integer(env, "ALERT_SWEEP_SECONDS", 15, 1, 3600),
    )
