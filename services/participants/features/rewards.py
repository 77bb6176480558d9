"""Rewards, participant side: a claim with a per-participant cap and optional points deduction.

The reward's code stock is another stream (services/rewards): the claim use case reserves a code
there first and passes it in ``ClaimReward.code_value``; this decider records the claim and the
debit on the participant stream, in one commit, or refuses:

* unknown or inactive reward -> UnknownDefinition (404);
* expired reward (``expires_at`` not after now) -> Refused (409);
* ``max_claims_per_user`` (default 1) reached -> Refused (409, "... cap reached");
* a reward with an inventory claimed without a reserved code -> Refused (409): codes come only
  from the stock stream, so no claim can bypass it;
* ``points_deduction`` and a balance below ``points_cost`` -> InsufficientPoints (400).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.events import PointsDeducted, RewardClaimed
from services.participants.commands import ClaimReward
from services.participants.domain import InsufficientPoints, Refused, UnknownDefinition, decider
from services.participants.engine import Catalog, Draft


def reward_of(catalog: Catalog, reward_id: str) -> dict[str, Any]:
    """The active reward with this id; UnknownDefinition if there is none."""
    reward = catalog.rewards.get(reward_id)
    if reward is None:
        raise UnknownDefinition("reward", reward_id)
    return reward


def inventory(reward: dict[str, Any]) -> list[str] | None:
    """The reward's distinct codes in order, or None when it hands out no codes.

    A reward has an inventory when its ``codes`` field is a list, even an empty one (nothing
    left to give); without ``codes`` (or with null) claims carry no code.
    """
    codes = reward.get("codes")
    if not isinstance(codes, list):
        return None
    return list(dict.fromkeys(codes))


def expired(reward: dict[str, Any], now: datetime) -> bool:
    """True when the reward has an ``expires_at`` that is not after ``now``."""
    raw = reward.get("expires_at")
    if not raw:
        return False
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment <= now


def cap(reward: dict[str, Any]) -> int:
    return int(reward.get("max_claims_per_user") or 1)


def cost(reward: dict[str, Any]) -> int:
    return int(reward.get("points_cost") or 0)


def claims_of(sections: dict[str, Any], reward_id: str) -> int:
    return int(sections.get("reward_claims", {}).get(reward_id, 0))


@decider(ClaimReward)
def claim(draft: Draft, command: ClaimReward) -> None:
    reward = reward_of(draft.catalog, command.reward_id)
    name = reward.get("name", reward["code"])
    if expired(reward, draft.now):
        raise Refused(f"Reward has expired: {name}")
    limit = cap(reward)
    if claims_of(draft.sections, command.reward_id) >= limit:
        raise Refused(f"Reward claim cap reached: at most {limit} per participant ({name})")
    if inventory(reward) is not None and not command.code_value:
        raise Refused(f"Reward {name} hands out codes: claim it through its stock")
    points = cost(reward) if command.points_deduction else 0
    if points > draft.balance:
        raise InsufficientPoints(draft.balance, points)
    draft.ensure_exists()
    claim_id = command.claim_id or draft.new_id()
    draft.add(
        RewardClaimed(
            claim_id=claim_id,
            reward_id=command.reward_id,
            reward_name=name,
            reward_type=reward.get("type", ""),
            code_value=command.code_value,
            points_deducted=points,
        )
    )
    if points > 0:
        draft.add(
            PointsDeducted(
                transaction_id=draft.new_id(),
                amount=points,
                balance_after=draft.balance - points,
                reason=f"reward:{reward['code']}",
                metadata={"reward_id": command.reward_id, "claim_id": claim_id},
            )
        )
