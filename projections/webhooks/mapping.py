"""Pure mapping of the log's participant events to webhook payloads (types, ids, data).

One source for the webhook message shapes: schemas/asyncapi.yaml documents what this returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.events import (
    PARTICIPANT,
    BadgeEarned,
    ChallengeCompleted,
    Commit,
    Event,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    PointsExpired,
    RewardClaimed,
    StreakBroken,
    StreakExtended,
    TierChanged,
)

# Namespace of webhook event ids: uuid5(NAMESPACE, "<commit_id>/<event index>/<type>").
NAMESPACE = uuid.UUID("6f1d7a52-8c1e-4c55-9a43-3b0f4c7d2e91")

JSON = dict[str, Any]


def _participant_created(e: ParticipantRegistered) -> JSON:
    return {"display_name": e.display_name, "auto_created": e.auto_created}


def _points(e: PointsAwarded | PointsDeducted) -> JSON:
    return {
        "transaction_id": e.transaction_id,
        "amount": e.amount,
        "balance_after": e.balance_after,
        "reason": e.reason,
        "metadata": dict(e.metadata),
    }


def _expired(e: PointsExpired) -> JSON:
    return {
        "transaction_id": e.transaction_id,
        "amount": e.amount,
        "balance_after": e.balance_after,
        "lot_id": e.lot_id,
        "expires_at": e.expires_at,
    }


def _tier(e: TierChanged) -> JSON:
    previous = (
        None if e.previous_code is None else {"code": e.previous_code, "level": e.previous_level}
    )
    return {
        "tier": {"code": e.code, "name": e.name, "level": e.level, "color": e.color},
        "previous_tier": previous,
        "manual": e.manual,
    }


def _badge(e: BadgeEarned) -> JSON:
    return {"badge": {"code": e.code, "name": e.name, "rarity": e.rarity}, "manual": e.manual}


def _streak_extended(e: StreakExtended) -> JSON:
    return {
        "streak_code": e.code,
        "count": e.count,
        "longest": e.longest,
        "period": e.period,
        "new_record": e.new_record,
    }


def _streak_broken(e: StreakBroken) -> JSON:
    return {"streak_code": e.code, "previous_count": e.previous_count}


def _challenge(e: ChallengeCompleted) -> JSON:
    return {"challenge_code": e.code, "window": e.window}


def _reward(e: RewardClaimed) -> JSON:
    return {
        "claim_id": e.claim_id,
        "reward_id": e.reward_id,
        "reward_name": e.reward_name,
        "reward_type": e.reward_type,
        "code_value": e.code_value,
        "points_deducted": e.points_deducted,
    }


# Log event class -> (webhook type, data builder).
MAPPING: dict[type[Event], tuple[str, Callable[[Any], JSON]]] = {
    ParticipantRegistered: ("participant.created", _participant_created),
    PointsAwarded: ("points.awarded", _points),
    PointsDeducted: ("points.deducted", _points),
    PointsExpired: ("points.expired", _expired),
    TierChanged: ("tier.changed", _tier),
    BadgeEarned: ("badge.earned", _badge),
    StreakExtended: ("streak.extended", _streak_extended),
    StreakBroken: ("streak.broken", _streak_broken),
    ChallengeCompleted: ("challenge.completed", _challenge),
    RewardClaimed: ("reward.claimed", _reward),
}
EVENT_TYPES: tuple[str, ...] = tuple(t for t, _ in MAPPING.values())
# Payload fields that carry personal data (docs/erasure.md) and their erased value: queued
# deliveries of an erased participant are rewritten with these before they are sent.
PERSONAL_FIELDS: dict[str, Any] = {"display_name": None, "reason": None, "metadata": {}}
ALL = "*"  # a subscription to every type


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One webhook payload: ``as_json()`` is the body ``{id, type, occurred_at, tenant_id, data}``."""

    id: str
    type: str
    occurred_at: str
    tenant_id: str
    data: JSON

    def as_json(self) -> JSON:
        return {
            "id": self.id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "tenant_id": self.tenant_id,
            "data": self.data,
        }


def event_id(commit_id: str, index: int, type_: str) -> str:
    """The webhook event's id: the same for one log event on every retry and every replay."""
    return str(uuid.uuid5(NAMESPACE, f"{commit_id}/{index}/{type_}"))


def webhook_events(commit: Commit) -> list[WebhookEvent]:
    """The webhook payloads of an applied participant commit, in the commit's event order.

    ``occurred_at`` is when the commit was recorded (``YYYY-MM-DDTHH:MM:SSZ``); ``data`` always
    names the ``participant_id``. Other streams (definitions, reward stock) give none.
    """
    if commit.stream != PARTICIPANT:
        return []
    found = []
    for index, event in enumerate(commit.events):
        mapped = MAPPING.get(type(event))
        if mapped is None:
            continue
        type_, build = mapped
        found.append(
            WebhookEvent(
                id=event_id(commit.commit_id, index, type_),
                type=type_,
                occurred_at=commit.recorded_at,
                tenant_id=commit.tenant,
                data={"participant_id": commit.participant_id, **build(event)},
            )
        )
    return found


def subscribed(events: list[str], type_: str) -> bool:
    """Whether a subscription to ``events`` receives ``type_``."""
    return ALL in events or type_ in events
