"""All SQL tables. Alembic migrations in alembic/versions are generated from this metadata.

Times are timezone-aware UTC datetimes (`projectalgo.clock.utcnow()`); sqlmodel stores them as UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

metadata = SQLModel.metadata

ROLES = ("member", "moderator", "admin")


class _Keyed(Protocol):
    @property
    def id(self) -> int | None: ...


def id_of(row: _Keyed) -> int:
    """The primary key of a row read from the database, or added and flushed (before that it has none)."""
    if row.id is None:
        raise ValueError(f"this {type(row).__name__} has no id yet: flush it first")
    return row.id


def table_of(model: type[SQLModel]) -> Table:
    """The table a table model maps to."""
    table: Table = model.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ but does not declare it
    return table


def max_length(model: type[SQLModel], column: str) -> int:
    """The declared length of one of the model's text columns (the model is the one place it is written)."""
    column_type = table_of(model).c[column].type
    if isinstance(column_type, TypeDecorator):  # sqlmodel's AutoString, around a String
        column_type = column_type.impl_instance
    if not isinstance(column_type, String) or column_type.length is None:
        raise TypeError(f"{model.__name__}.{column} is not text of a bounded length")
    return column_type.length


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    # Stored lower-cased, so the unique constraint makes emails unique case-insensitively.
    email: str = Field(max_length=254, unique=True)
    password_hash: str = Field(max_length=100)
    roles: list[str] = Field(default_factory=lambda: ["member"], sa_column=Column(JSON, nullable=False))
    # users and invitations point at each other: this key is added after both tables exist.
    invited_with_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("invitations.id", use_alter=True, name="fk_users_invited_with_id"), index=True
        ),
    )
    created_at: datetime
    last_sign_in_at: datetime | None = None
    disabled_at: datetime | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles


class Invitation(SQLModel, table=True):
    __tablename__ = "invitations"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    uses_remaining: int = Field(ge=0)
    created_at: datetime
    disabled_at: datetime | None = None


class LoginSession(SQLModel, table=True):
    __tablename__ = "login_sessions"

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 of the random token held by the browser; the token itself is never stored.
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class Attempt(SQLModel, table=True):
    """One attempt at something limited per key (projectalgo/throttle.py): a sign-in (key: the client address,
    subject: the email), a registration (the client address), a card set-up (the user)."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_kind_key_subject_at", "kind", "key", "subject", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    key: str = Field(max_length=64)
    subject: str = Field(default="", max_length=254)
    at: datetime


class PasswordReset(SQLModel, table=True):
    """A one-time link an admin issued so a member can set a new password. Only the token's SHA-256 is kept."""

    __tablename__ = "password_resets"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class Membership(SQLModel, table=True):
    """One paid (or granted) period; a user's access runs to the latest ends_at."""

    __tablename__ = "memberships"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    starts_at: datetime
    ends_at: datetime = Field(index=True)
    source: str = Field(max_length=16)  # "stripe" or "admin"
    note: str = Field(default="", max_length=200)
    created_at: datetime


class Payment(SQLModel, table=True):
    """One Stripe PaymentIntent for a yearly membership, created by the app for one user.

    `granted_at` is set once, by a conditional UPDATE in the transaction that adds the membership, so a
    PaymentIntent grants exactly one membership whichever path (webhook or retrieve) sees it succeed first.
    """

    __tablename__ = "payments"

    id: int | None = Field(default=None, primary_key=True)
    stripe_payment_intent_id: str = Field(max_length=255, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    amount: int  # in the currency's minor unit (cents)
    currency: str = Field(max_length=3)
    status: str = Field(max_length=32)  # see billing.PAYMENT_STATUSES
    method: str = Field(default="", max_length=64)  # e.g. "visa •••• 4242"
    billing_details: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    membership_id: int | None = Field(default=None, foreign_key="memberships.id")
    granted_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class StripeEvent(SQLModel, table=True):
    """A verified Stripe webhook event, kept so that a redelivery is recognised and not applied twice."""

    __tablename__ = "stripe_events"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=255, unique=True)
    type: str = Field(max_length=100)
    received_at: datetime


class BrokerageAccount(SQLModel, table=True):
    """A member's account at a broker; strategies trading on it share its wallet (counted once)."""

    __tablename__ = "brokerage_accounts"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_brokerage_accounts_owner_name"),
        # Names are unique per owner whatever their case (migration 0009).
        Index("uq_brokerage_accounts_owner_lower_name", "owner_id", text("lower(name)"), unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=60)
    exchange: str = Field(default="", max_length=60)
    notes: str = Field(default="", max_length=500)
    created_at: datetime
    archived_at: datetime | None = None


class Strategy(SQLModel, table=True):
    __tablename__ = "strategies"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_strategies_owner_name"),
        Index("uq_strategies_owner_lower_name", "owner_id", text("lower(name)"), unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The owner is the account's owner, kept here too so names are unique per owner and lists need no join.
    owner_id: int = Field(foreign_key="users.id", index=True)
    account_id: int = Field(foreign_key="brokerage_accounts.id", index=True)
    name: str = Field(max_length=60)
    description: str = Field(default="", max_length=1000)
    symbol: str = Field(default="", max_length=32)
    created_at: datetime
    archived_at: datetime | None = None
    last_snapshot_at: datetime | None = None


class StrategyToken(SQLModel, table=True):
    """A bot's credential for one strategy. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "strategy_tokens"

    id: int | None = Field(default=None, primary_key=True)
    strategy_id: int = Field(foreign_key="strategies.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=24)
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class SnapshotRecord(SQLModel, table=True):
    """The embedded snapshot store (integrations/sqlstore.py). Decimals are kept as text: exact on SQLite too."""

    __tablename__ = "snapshots"

    strategy_id: int = Field(
        sa_column=Column(Integer, ForeignKey("strategies.id"), primary_key=True, autoincrement=False)
    )
    at_ms: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    account_id: int
    last_price: str = Field(max_length=64)
    margin_balance: str = Field(max_length=64)
    wallet_balance: str = Field(max_length=64)
    realised_pnl: str = Field(max_length=64)
    positions: str = Field(max_length=64)
    average_entry_price: str = Field(max_length=64)
    symbol: str = Field(max_length=32)


class AuditEntry(SQLModel, table=True):
    """One admin action, done or refused: who, what, to whom, when and why."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor_id: int | None = Field(
        default=None, foreign_key="users.id"
    )  # None: not signed in (a refusal) or the command line (a change)
    action: str = Field(max_length=64)
    target_user_id: int | None = Field(default=None, foreign_key="users.id")
    target: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=500)
    outcome: str = Field(max_length=16)  # "done" or "refused"


class RollupRecord(SQLModel, table=True):
    """A roll-up of the embedded snapshot store: one UTC hour or day of a strategy, holding its newest snapshot
    and the wallet/margin extremes (snapshots.Rollup). Decimals as text like SnapshotRecord; the merge compares
    extremes as NUMERIC, never as text (integrations/sqlstore.py)."""

    __tablename__ = "snapshot_rollups"

    strategy_id: int = Field(
        sa_column=Column(Integer, ForeignKey("strategies.id"), primary_key=True, autoincrement=False)
    )
    resolution: str = Field(primary_key=True, max_length=8)  # "hour" or "day"
    bucket_ms: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))  # the newest snapshot's
    account_id: int
    last_price: str = Field(max_length=64)
    margin_balance: str = Field(max_length=64)
    wallet_balance: str = Field(max_length=64)
    realised_pnl: str = Field(max_length=64)
    positions: str = Field(max_length=64)
    average_entry_price: str = Field(max_length=64)
    symbol: str = Field(max_length=32)
    wallet_min: str = Field(max_length=64)
    wallet_max: str = Field(max_length=64)
    margin_min: str = Field(max_length=64)
    margin_max: str = Field(max_length=64)


class InDoubtWrite(SQLModel, table=True):
    """A DynamoDB snapshot write answered "not stored" (503) that may have landed all the same: its answer was
    lost and DynamoDB could not be asked. It is deleted from DynamoDB if it did land (only if the item there is
    this write, by its snapshot_id), then here: integrations/dynamodb/in_doubt.py. Kept in the database, not in
    a worker's memory, so that a restart, or another worker, still settles it. No foreign key: the item it
    names is in DynamoDB, and recording it must not depend on anything else."""

    __tablename__ = "in_doubt_writes"
    __table_args__ = (UniqueConstraint("strategy_id", "at_ms", "snapshot_id", name="uq_in_doubt_writes_write"),)

    id: int | None = Field(default=None, primary_key=True)
    strategy_id: int
    at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    snapshot_id: str = Field(max_length=32)  # the uuid4 hex the write carried
    created_at: datetime


class FlowCorrection(SQLModel, table=True):
    """A member's word on a strategy's cash flows (analytics.py): `confirm` the flow found at at_ms (with a
    corrected amount, or none: as found), call it `not_a_flow`, or a `manual` flow added by hand at a date.
    `found` is the amount the member saw (none for a manual flow); amounts are decimals as text, as snapshots'.
    One confirm or not_a_flow per strategy and at_ms: a new word replaces the last (flows.py)."""

    __tablename__ = "flow_corrections"

    id: int | None = Field(default=None, primary_key=True)
    strategy_id: int = Field(foreign_key="strategies.id", index=True)
    kind: str = Field(max_length=16)  # "confirm", "not_a_flow" or "manual"
    at_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    found: str | None = Field(default=None, max_length=64)
    amount: str | None = Field(default=None, max_length=64)
    created_by: int = Field(foreign_key="users.id")
    created_at: datetime


class ShareLink(SQLModel, table=True):
    """A read-only link to one strategy's performance page, or to its owner's combined portfolio (no strategy).
    Only the SHA-256 of the link's token is stored; the link is shown once, when it is made. It shows
    percentages and curves, and amounts only if `show_amounts`; it stops at `expires_at` or when revoked."""

    __tablename__ = "share_links"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    strategy_id: int | None = Field(default=None, foreign_key="strategies.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=24)  # the token's first characters, to tell links apart in lists
    label: str = Field(default="", max_length=60)
    show_amounts: bool = False
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_viewed_at: datetime | None = None


class BoardEntry(SQLModel, table=True):
    """A strategy its owner put on the group board (/group): every signed-in member sees its returns, drawdown and
    status (percentages only), under `alias` or, if none, the owner's name. Leaving the board deletes the row."""

    __tablename__ = "board_entries"

    strategy_id: int = Field(
        sa_column=Column(Integer, ForeignKey("strategies.id"), primary_key=True, autoincrement=False)
    )
    alias: str = Field(default="", max_length=60)
    joined_at: datetime


class FlowPoint(SQLModel, table=True):
    """The cash flow of one interval between a strategy's consecutive raw snapshots, kept where it ends (at_ms): found
    at ingestion (Δwallet beyond Δrealised, analytics.unexplained_change) or `stated` by the bot (a snapshot's
    `cash_flow`, 0 included). Only non-zero found flows are kept. Coarse ranges read these instead of finding flows
    between hourly or daily points, where crumbs below the tolerance add up and a reset inside a bucket hides;
    `rebuild-rollups` finds them again (stated ones are kept). The amount is a decimal as text, as snapshots'."""

    __tablename__ = "flow_points"

    strategy_id: int = Field(
        sa_column=Column(Integer, ForeignKey("strategies.id"), primary_key=True, autoincrement=False)
    )
    at_ms: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    amount: str = Field(max_length=64)
    stated: bool = False


class AlertRule(SQLModel, table=True):
    """A member's alert rule (alerts.py), on one of their strategies or on all of them (no strategy). `threshold`
    is minutes without a snapshot ("silence"), a percent below the peak ("drawdown"), or dollars: the wallet (one
    strategy) or the combined equity (all) below it ("balance"), a day's loss beyond it ("daily_loss"); a decimal
    as text. A silence rule also says "back online" when the bot returns, if `notify_recovery`."""

    __tablename__ = "alert_rules"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    strategy_id: int | None = Field(default=None, foreign_key="strategies.id", index=True)
    kind: str = Field(max_length=16)
    threshold: str = Field(max_length=64)
    notify_recovery: bool = True
    paused: bool = False
    created_at: datetime
    updated_at: datetime


class AlertState(SQLModel, table=True):
    """Where a rule stands for one strategy (0: the combined equity of all the member's): `firing` from when its
    condition started until it clears (it fires once, then re-arms), and what the condition carries from one
    snapshot to the next (`data`: the peak, the day's opening, the accounts' wallets)."""

    __tablename__ = "alert_states"

    rule_id: int = Field(sa_column=Column(Integer, ForeignKey("alert_rules.id"), primary_key=True, autoincrement=False))
    strategy_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    firing: bool = False
    changed_at: datetime
    data: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AlertFiring(SQLModel, table=True):
    """One alert to one user, stored before any delivery (the outbox's message): a rule's condition starting (or a
    silent bot coming back), a test the member asked for, or a system alert to an admin (no rule). In the app it
    is unread until `read_at`."""

    __tablename__ = "alert_firings"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    rule_id: int | None = Field(default=None, foreign_key="alert_rules.id", index=True)
    strategy_id: int | None = None
    kind: str = Field(max_length=32)
    title: str = Field(max_length=200)
    body: str = Field(max_length=2000)
    created_at: datetime = Field(index=True)
    read_at: datetime | None = None


class AlertDelivery(SQLModel, table=True):
    """A firing's delivery on one channel ("app", "email" or "webhook"): pending until sent, retried with backoff,
    "failed" after the last attempt. Whoever sends claims it until `claimed_until`; the receiver gets the same
    `idempotency_key` on every attempt, so a resend after a crash is recognisable."""

    __tablename__ = "alert_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    firing_id: int = Field(foreign_key="alert_firings.id", index=True)
    channel: str = Field(max_length=16)
    idempotency_key: str = Field(max_length=64, unique=True)
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime
    claimed_until: datetime | None = None
    sent_at: datetime | None = None


class AlertAttempt(SQLModel, table=True):
    """One try at a delivery, and what came of it (the member sees each)."""

    __tablename__ = "alert_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="alert_deliveries.id", index=True)
    at: datetime
    ok: bool
    detail: str = Field(default="", max_length=500)


class AlertChannels(SQLModel, table=True):
    """A member's alert channels: email to their address (when the server has SMTP settings), and a webhook with
    a message format (`preset`: generic, discord, slack, telegram) signed with `webhook_secret` (HMAC-SHA256)."""

    __tablename__ = "alert_channels"

    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id"), primary_key=True, autoincrement=False))
    email_enabled: bool = True
    webhook_url: str = Field(default="", max_length=500)
    webhook_preset: str = Field(default="generic", max_length=16)
    webhook_secret: str = Field(default="", max_length=64)
    telegram_chat_id: str = Field(default="", max_length=64)


class Lease(SQLModel, table=True):
    """Work exactly one worker does at a time (the alerts' sweep): held by `holder` until `expires_at`, renewed
    while it lives; a worker that dies lets it expire, and another takes it."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=40)
    holder: str = Field(max_length=64)
    expires_at: datetime
