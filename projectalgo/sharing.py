"""Share links (issue 16): read-only links to one strategy's performance, or to its owner's combined portfolio,
for people without an account. What a link shows is decided here, on the server, at every read and push.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from projectalgo.models import ShareLink, Strategy


def links_showing(session: Session, strategy_id: int, link_ids: Collection[int], *, now: datetime) -> set[int]:
    """Those of the links that show the strategy now: not revoked, not expired, and made for this strategy, or for
    the portfolio of its owner while the strategy is not archived."""
    strategy = session.get(Strategy, strategy_id)
    if strategy is None or not link_ids:
        return set()
    for_portfolio = (
        col(ShareLink.strategy_id).is_(None) & (col(ShareLink.owner_id) == strategy.owner_id)
        if strategy.archived_at is None
        else false()
    )
    query = select(col(ShareLink.id)).where(
        col(ShareLink.id).in_(link_ids),
        col(ShareLink.revoked_at).is_(None),
        col(ShareLink.expires_at) > now,
        or_(col(ShareLink.strategy_id) == strategy_id, for_portfolio),
    )
    return set(session.scalars(query))
