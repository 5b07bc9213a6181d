"""Posted snapshots are checked and stored in batches: one worker-thread trip per batch, not per post.

Every post waiting while a batch is stored joins the next one. A batch resolves all its tokens in one
query and stores its snapshots with one `put_many` (one transaction on the embedded store). A thread trip
per post, each with its own query and commit, cost several times the request itself in CPU and GIL
hand-offs. Plain Python; the API route awaits `Ingestor.receive`, which counts every outcome (the admin page's
ingestion figures) and announces each stored snapshot to the live path (live.py), whatever way it came in.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from projectalgo import alert_checks, flows, snapshots, strategies
from projectalgo.analytics import DEFAULT_TOLERANCE, FlowTolerance
from projectalgo.clock import utcnow
from projectalgo.db import UNREACHABLE_ERRORS
from projectalgo.errors import DomainError, NotAllowedError, RateLimitedError, UnauthenticatedError, UnavailableError
from projectalgo.ingest_stats import IngestCounter, IngestStats
from projectalgo.live import Broadcast, LocalBroadcast
from projectalgo.ratelimit import Limiter
from projectalgo.settings import Settings
from projectalgo.snapshots import Snapshot, SnapshotInput, SnapshotStore, StoreUnavailableError

log = logging.getLogger("projectalgo.ingest")
# "Last used" and "last snapshot" are written at most once a second per token: one SQL write per
# snapshot would halve the embedded store's throughput, and a second is far below what anyone reads. A
# token's newest snapshot held back by that is written a second later, so the last post of a burst counts.
RECORD_USE_EVERY_SECONDS = 1.0
# Alert rules are checked at most this often per worker, over every snapshot stored since (alert_checks.on_stored):
# once per batch cost ingestion a fifth of its rate with 1,000 rules (bench/ingest.py --rules); a second later is
# still at once for an alert. Posts that stop leave none unchecked: the delayed write checks them.
CHECK_ALERTS_EVERY_SECONDS = 1.0


def _refused_token(owner: strategies.TokenOwner | None, token: str) -> DomainError:
    """Why a token may not post: unknown or revoked, its owner disabled, or its strategy archived."""
    error: DomainError
    if owner is None:
        reason = "unknown_token"
        error = UnauthenticatedError("This token is unknown or has been revoked.", code="invalid_token")
    elif owner.owner_disabled:
        reason = "owner_disabled"
        error = NotAllowedError(
            "The account this strategy belongs to is disabled; its owner should contact an admin.",
            code="owner_disabled",
        )
    else:
        reason = "strategy_archived"
        error = NotAllowedError("This strategy is archived; its owner can restore it.", code="strategy_archived")
    # What the pages show of a bot token, and only of one: text sent by mistake (a password) is not logged at all.
    is_bot_token = token.startswith(strategies.TOKEN_PREFIX) and len(token) > strategies.TOKEN_DISPLAY_LENGTH
    log.info(
        "ingest.refused reason=%s prefix=%s",
        reason,
        token[: strategies.TOKEN_DISPLAY_LENGTH] if is_bot_token else "none",
    )
    return error


@dataclass(frozen=True)
class Post:
    token: str
    snapshot: SnapshotInput
    received_ms: int  # the server's time, used when the bot sent none


@dataclass(frozen=True)
class Stored:
    owner: strategies.TokenOwner
    snapshot: Snapshot


Outcome = Stored | Exception  # a DomainError (a refusal, StoreUnavailableError), or what kept that snapshot out


def _failed() -> RuntimeError:
    return RuntimeError("storing the snapshot failed unexpectedly (see the log)")


STOPPING = "This server is stopping; post the snapshot again."
MISSING_TOKEN = "Send the strategy token as Authorization: Bearer <token> or data.strategy_access_token."


def _outcome_name(outcome: Outcome) -> str:
    """How the ingestion figures count an outcome: accepted, a refusal's code, or error."""
    if isinstance(outcome, Stored):
        return "accepted"
    return outcome.code if isinstance(outcome, DomainError) else "error"


class Ingestor:
    def __init__(
        self,
        engine: Engine,
        store: SnapshotStore,
        limiter: Limiter,
        clock: Callable[[], float] = time.monotonic,
        *,
        stats: IngestCounter | None = None,
        broadcast: Broadcast | None = None,
        flow_tolerance: FlowTolerance = DEFAULT_TOLERANCE,
        settings: Settings | None = None,
        check_alerts_every: float = CHECK_ALERTS_EVERY_SECONDS,
    ) -> None:
        self._engine = engine
        self._settings = settings  # alert rules are evaluated with the app's settings (None: not evaluated)
        self._flow_tolerance = flow_tolerance
        self._store = store
        self._limiter = limiter
        self._clock = clock
        self.stats = stats or IngestStats()
        self._broadcast = broadcast or LocalBroadcast()
        # token id -> when its use was last written, and its newest stored snapshot not written yet; only the
        # ingest thread touches them (a batch, or the delayed write of what a batch held back)
        self._recorded_at: dict[int, float] = {}
        self._unrecorded: dict[int, Stored] = {}
        # Snapshots stored since the alert rules were last checked, and when that was (the ingest thread's too).
        self._check_alerts_every = check_alerts_every
        self._unchecked: list[Snapshot] = []
        self._checked_at = -math.inf
        self._delayed_write: asyncio.TimerHandle | None = None
        self._waiting: list[tuple[Post, asyncio.Future[Outcome]]] = []
        # One thread stores one batch at a time: the next batch gathers meanwhile, and the store's
        # writes never wait for each other within this process.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")
        self._storing = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def receive(self, raw: bytes, header_token: str | None, now: datetime) -> Snapshot:
        """A bot's post from reading its body to the live push: read and check it, store it with whatever else is
        waiting, and announce it. Raises a DomainError to refuse (counted, as is every stored snapshot)."""
        try:
            if self._stopping:
                raise UnavailableError(STOPPING, retry_after_seconds=1, code="stopping")
            body = snapshots.read_body(raw)
            token = header_token or snapshots.body_token(body)
            if token is None:
                raise UnauthenticatedError(MISSING_TOKEN, code="missing_token")
            accepted = snapshots.validate(body, now)
        except DomainError as refusal:
            await self.count_refusal(refusal.code)
            raise
        try:
            stored = (await self.submit(Post(token, accepted, snapshots.epoch_ms(now)))).snapshot
        except StoreUnavailableError as refusal:
            log.warning("ingest.store_unavailable error=%s", refusal)
            raise
        try:
            await self._broadcast.publish(stored)
        except Exception:  # stored all the same: the bot gets its 201, open tabs catch up when they resync
            log.exception("live.publish_failed strategy_id=%s", stored.strategy_id)
        return stored

    async def stop(self) -> None:
        """The server is stopping: refuse new posts (503, so bots post again, to another worker or after the
        restart), finish storing what was accepted, and write the uses held back."""
        self._stopping = True
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._delayed_write is not None:
            self._delayed_write.cancel()
            self._delayed_write = None
        await asyncio.get_running_loop().run_in_executor(self._thread, self._record_use_now)
        log.info("ingest.stopped")

    def _record_use_now(self) -> None:
        self._recorded_at.clear()  # nothing is held back any more: every token's newest use is written
        self._record_use([])
        self._checked_at = -math.inf  # and every snapshot stored is checked against the alert rules
        self._check_alerts([])

    async def count_refusal(self, code: str) -> None:
        """Count a post refused before ingestion could read it (by HTTP's rules)."""
        await asyncio.to_thread(self._count, code)

    async def submit(self, post: Post) -> Stored:
        """Store one post with whatever else is waiting. Raises a DomainError (a refusal, or
        StoreUnavailableError), or the error that kept this one snapshot from being stored."""
        outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((post, outcome))
        if not self._storing:
            self._storing = True
            self._task = asyncio.create_task(self._store_waiting())  # held: the loop keeps only weak references
        result = await outcome
        if isinstance(result, Exception):
            raise result
        return result

    async def _store_waiting(self) -> None:
        try:
            while self._waiting:
                # A post whose request is gone (the bot hung up) is not stored: the bot will send it again.
                batch = [(post, outcome) for post, outcome in self._waiting if not outcome.done()]
                self._waiting = []
                if not batch:
                    continue
                try:
                    posts = [post for post, _ in batch]
                    outcomes = await asyncio.get_running_loop().run_in_executor(self._thread, self.process, posts)
                except Exception:
                    log.exception("ingest.batch_failed posts=%d", len(batch))
                    outcomes = [_failed() for _ in batch]
                except BaseException:  # shut down while storing: no post is left waiting for an answer
                    for _, outcome in batch + self._waiting:
                        outcome.cancel()
                    raise
                for (_, outcome), result in zip(batch, outcomes, strict=True):
                    if not outcome.done():  # the bot may have hung up meanwhile
                        outcome.set_result(result)
        finally:
            self._storing = False
            self._write_held_back_use_later()

    def _write_held_back_use_later(self) -> None:
        """Once the posts stop, write the use a batch held back and check the snapshots not checked yet against the
        alert rules (a second later, on the ingest thread)."""
        if (self._unrecorded or self._unchecked) and self._delayed_write is None:
            loop = asyncio.get_running_loop()
            self._delayed_write = loop.call_later(RECORD_USE_EVERY_SECONDS, self._write_held_back_use)

    def _write_held_back_use(self) -> None:
        self._delayed_write = None
        if self._storing:
            return  # a batch is being stored: it writes what is due, and schedules the rest
        loop = asyncio.get_running_loop()
        written = loop.run_in_executor(self._thread, self._write_held_back_now)
        written.add_done_callback(lambda _done: self._write_held_back_use_later())

    def _write_held_back_now(self) -> None:
        self._record_use([])
        self._check_alerts([])

    def process(self, posts: list[Post]) -> list[Outcome]:
        """Resolve the tokens, apply the rate limits, store what is accepted (blocking: a worker thread)."""
        try:
            with self._engine.connect() as connection:
                owners = strategies.resolve_tokens(connection, {post.token for post in posts})
        except UNREACHABLE_ERRORS as error:
            return [StoreUnavailableError(f"the token lookup failed: {error}") for _ in posts]
        outcomes: list[Outcome | None] = []
        accepted: list[tuple[int, strategies.TokenOwner, Snapshot]] = []  # (index in posts, owner, snapshot)
        for index, post in enumerate(posts):
            owner = owners.get(post.token)
            if owner is None or owner.owner_disabled or owner.strategy_archived:
                outcomes.append(_refused_token(owner, post.token))
                continue
            try:
                wait = self._limiter.acquire(owner.token_id)
            except StoreUnavailableError as refusal:  # the shared limiter (Redis) cannot be asked: bots retry
                outcomes.append(refusal)
                continue
            if wait:
                outcomes.append(
                    RateLimitedError(
                        "Too many snapshots for this token; slow down.", retry_after_seconds=math.ceil(wait)
                    )
                )
            else:
                at_ms = post.snapshot.at_ms or post.received_ms
                accepted.append((index, owner, post.snapshot.for_strategy(owner.strategy_id, owner.account_id, at_ms)))
                outcomes.append(None)  # answered once stored
        if accepted:
            try:
                results = self._store.put_many([snapshot for _, _, snapshot in accepted])
            except Exception:  # a store's own bug: the accepted posts fail, the refused keep their answers
                log.exception("ingest.store_failed snapshots=%d", len(accepted))
                results = [_failed() for _ in accepted]
            for (index, owner, _), result in zip(accepted, results, strict=True):
                outcomes[index] = Stored(owner, result) if isinstance(result, Snapshot) else result
            self._record_flows(
                [
                    (result, posts[index].snapshot.cash_flow)
                    for (index, _, _), result in zip(accepted, results, strict=True)
                    if isinstance(result, Snapshot)
                ]
            )
            self._check_alerts([result for result in results if isinstance(result, Snapshot)])
        self._record_use([outcome for outcome in outcomes if isinstance(outcome, Stored)])
        answered = [outcome for outcome in outcomes if outcome is not None]
        for outcome in answered:
            self._count(_outcome_name(outcome))
        return answered

    def _record_flows(self, stored: list[tuple[Snapshot, Decimal | None]]) -> None:
        """Keep the flow of each interval the stored snapshots end (flows.record_flow_points). The snapshots are
        stored whatever happens here: a failure is logged, and `rebuild-rollups` finds the flows again (what a bot
        stated in the failed batch is lost)."""
        if not stored:
            return
        try:
            with Session(self._engine) as session, session.begin():
                flows.record_flow_points(session, self._store, stored, self._flow_tolerance)
        except Exception:
            log.exception("ingest.flow_points_failed strategies=%s", sorted({s.strategy_id for s, _ in stored}))

    def _check_alerts(self, stored: list[Snapshot]) -> None:
        """Evaluate the alert rules of the stored snapshots' strategies (alert_checks.on_stored), after their flow
        points: those of every snapshot stored since the last check, once CHECK_ALERTS_EVERY_SECONDS have passed.
        The snapshots are stored whatever happens here: a failure is logged."""
        if self._settings is None:
            return
        self._unchecked.extend(stored)
        now = self._clock()
        if not self._unchecked or now - self._checked_at < self._check_alerts_every:
            return
        unchecked, self._unchecked, self._checked_at = self._unchecked, [], now
        try:
            with Session(self._engine) as session, session.begin():
                alert_checks.on_stored(session, self._store, unchecked, self._settings, utcnow())
        except Exception:
            log.exception("ingest.alerts_failed strategies=%s", sorted({s.strategy_id for s in unchecked}))

    def _count(self, outcome: str) -> None:
        try:
            self.stats.count(outcome)
        except Exception:  # the figures are only figures: a failure to count never fails a post
            log.warning("ingest.count_failed outcome=%s", outcome, exc_info=True)

    def _record_use(self, stored: list[Stored]) -> None:
        """Write each token's last use, at most once a second per token, from its newest stored snapshot (one
        held back earlier included); a failure only loses that note."""
        for item in stored:
            held = self._unrecorded.get(item.owner.token_id)
            if held is None or item.snapshot.at_ms > held.snapshot.at_ms:
                self._unrecorded[item.owner.token_id] = item
        now = self._clock()
        due = {
            token_id: item
            for token_id, item in self._unrecorded.items()
            if now - self._recorded_at.get(token_id, -math.inf) >= RECORD_USE_EVERY_SECONDS
        }
        if not due:
            return
        for token_id in due:
            del self._unrecorded[token_id]
        try:
            with Session(self._engine) as session, session.begin():
                strategies.record_uses(session, [(item.owner, item.snapshot.created_at) for item in due.values()])
        except Exception:
            log.exception("ingest.record_use_failed strategies=%s", sorted({i.owner.strategy_id for i in due.values()}))
            return
        self._recorded_at.update(dict.fromkeys(due, now))
