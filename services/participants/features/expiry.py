"""Point expiry, participant side: the scheduler's ExpirePoints closes one due lot.

A lot is an expiring credit (schemas.sections ``point_lots``). The decision re-reads it on the
participant's current state, at the commit's time, so it is safe whatever happened since the
scheduler found it: a lot already closed (spent, or expired by another scheduler) or not due
yet decides nothing; an open due lot expires its unspent remainder only. Tiers, badges and
``total_earned`` never move (expiry lowers ``balance`` alone). Docs: docs/points-expiry.md.
"""

from __future__ import annotations

from schemas.events import PointsExpired
from schemas.sections import due_lots
from services.participants.commands import ExpirePoints
from services.participants.domain import decider
from services.participants.engine import Draft


@decider(ExpirePoints)
def expire(draft: Draft, command: ExpirePoints) -> None:
    if not draft.exists:
        return
    lot = next((x for x in due_lots(draft.sections, draft.at) if x["id"] == command.lot_id), None)
    if lot is None:
        return
    amount = min(int(lot["remaining"]), draft.balance)  # never below zero, whatever the log holds
    draft.add(
        PointsExpired(
            transaction_id=draft.new_id(),
            lot_id=lot["id"],
            amount=amount,
            balance_after=draft.balance - amount,
            expires_at=lot["expires_at"],
        )
    )
