"""Evaluation: who qualifies for a tier or badge now, and the command that gives it to them.

Definitions created or changed after participants already qualify do not reach them until their
next award or event (consequences are decided with a command). ``EvaluateParticipant`` is that
command without a cause: it runs the consequence rules (tier upgrades, badge unlocks) on the
participant as it is, exactly what its next award would decide.
"""

from __future__ import annotations

from typing import Any

from services.participants.commands import EvaluateParticipant
from services.participants.domain import decider
from services.participants.engine import Draft, settle
from services.participants.features import badges, tiers

EVALUATED_KINDS = ("tier", "badge")


def evaluation_key(definition_id: str, version: int) -> str:
    """The idempotency key of one definition version's evaluation on each participant.

    Per participant stream (keys are scoped to tenant + participant), so evaluating the same
    version twice replays; a changed definition (a new version) is evaluated again.
    """
    return f"evaluate:{definition_id}:{version}"


def unevaluable(kind: str, definition: dict[str, Any], is_active: bool) -> str | None:
    """Why ``definition`` cannot be evaluated (the 409 detail), or None if it can."""
    if kind not in EVALUATED_KINDS:
        return f"only tiers and badges are evaluated, not {kind}s"
    if not is_active:
        return f"the {kind} {definition['code']} is inactive: it awards nothing"
    if definition.get("award_type", "automatic") != "automatic":
        return f"the {kind} {definition['code']} is manual: it is only given through the API"
    if kind == "badge" and not definition.get("criteria_config"):
        return f"the badge {definition['code']} has no criteria_config: nobody qualifies"
    return None


def qualifies(
    kind: str, definition: dict[str, Any], total_earned: int, sections: dict[str, Any]
) -> bool:
    """True if a participant with ``total_earned`` and ``sections`` qualifies and lacks it.

    A tier: its threshold is reached and the tier held (if any) is of a lower level. A badge:
    not earned yet and every criterion holds (the rules of automatic unlocks).
    """
    if kind == "tier":
        held = sections.get("tier")
        below = held is None or int(held["level"]) < int(definition.get("level", 0))
        return below and tiers.min_points(definition) <= total_earned
    if kind == "badge":
        earned = definition["code"] in sections.get("badges", {})
        return not earned and badges.criteria_met(definition, sections, total_earned)
    return False


@decider(EvaluateParticipant)
def evaluate(draft: Draft, command: EvaluateParticipant) -> None:
    """The consequence rules on the participant as it is; never creates one."""
    if draft.exists:
        settle(draft)
