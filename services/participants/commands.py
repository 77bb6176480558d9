"""Commands a participant accepts: what a caller asks for, already validated."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# A field left out of a PATCH is not the same as a field set to null.
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()


@dataclass(frozen=True, slots=True)
class RegisterParticipant:
    """Create a participant, or update the given profile fields if it exists (upsert)."""

    participant_id: str
    display_name: Any = UNSET
    avatar_url: Any = UNSET
    attributes: Any = UNSET


@dataclass(frozen=True, slots=True)
class UpdateParticipant:
    """Change profile fields of an existing participant; ``attributes`` is merged."""

    participant_id: str
    display_name: Any = UNSET
    avatar_url: Any = UNSET
    attributes: Any = UNSET


@dataclass(frozen=True, slots=True)
class AwardPoints:
    """Credit points (times the tier multiplier); creates the participant on first use.

    ``expires_at`` (ISO-8601 UTC with Z) makes the credit an expiring lot (docs/points-expiry.md).
    """

    participant_id: str
    amount: int
    reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_at: str | None = None


@dataclass(frozen=True, slots=True)
class DeductPoints:
    """Debit points if the balance allows it."""

    participant_id: str
    amount: int
    reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


COMMAND_NAMES: dict[type, str] = {
    RegisterParticipant: "participants.register",
    UpdateParticipant: "participants.update",
    AwardPoints: "points.award",
    DeductPoints: "points.deduct",
}


def from_body(name: str, body: dict[str, Any]) -> Any:
    """Build the named command from a body already validated against its JSON Schema."""
    pid = body["participant_id"]
    if name in ("participants.register", "participants.update"):
        cls = RegisterParticipant if name == "participants.register" else UpdateParticipant
        return cls(
            pid,
            display_name=body.get("display_name", UNSET),
            avatar_url=body.get("avatar_url", UNSET),
            attributes=body.get("attributes", UNSET),
        )
    if name == "points.award":
        return AwardPoints(
            pid,
            body["amount"],
            body.get("reason"),
            body.get("metadata") or {},
            body.get("expires_at"),
        )
    if name == "points.deduct":
        return DeductPoints(pid, body["amount"], body.get("reason"), body.get("metadata") or {})
    if name == "events.track":
        return TrackEvent(
            pid, body["event_name"], body.get("properties") or {}, body.get("timestamp")
        )
    if name == "badges.award":
        return AwardBadge(pid, body["badge_code"], body.get("metadata") or {})
    if name == "tiers.assign":
        return AssignTier(pid, body["tier_code"], body.get("reason"))
    if name == "streaks.record":
        return RecordStreak(pid, body["streak_code"], body.get("timestamp"))
    if name == "rewards.claim":
        return ClaimReward(pid, body["reward_id"], bool(body.get("points_deduction", False)))
    raise KeyError(name)


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """Record a custom event; rules and challenges react to it."""

    participant_id: str
    event_name: str
    properties: dict[str, Any] = field(default_factory=dict)
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class AwardBadge:
    """Award a badge by code; a badge already earned is not earned again."""

    participant_id: str
    badge_code: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AssignTier:
    """Put the participant in a tier by code (manual assignment)."""

    participant_id: str
    tier_code: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordStreak:
    """One tick of a streak at ``timestamp`` (default: now); deduplicated per period."""

    participant_id: str
    streak_code: str
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimReward:
    """Claim a reward; ``code_value`` is the code reserved on the reward's stock, if any."""

    participant_id: str
    reward_id: str
    points_deduction: bool = False
    claim_id: str = ""
    code_value: str | None = None


@dataclass(frozen=True, slots=True)
class ExpirePoints:
    """Expire what is left of one expiring credit (``lot_id``: its award's transaction id) if
    it is still open and due. Sent by the scheduler under the key ``expire:<lot_id>``."""

    participant_id: str
    lot_id: str


@dataclass(frozen=True, slots=True)
class EvaluateParticipant:
    """Run the consequence rules (tier upgrades, badge unlocks) on an existing participant now.

    What its next award or event would decide, without one: for definitions created or changed
    after the participant qualified (POST /admin/{tiers|badges}/{id}/evaluate). Never creates.
    """

    participant_id: str


COMMAND_NAMES.update(
    {
        EvaluateParticipant: "definitions.evaluate",
        ExpirePoints: "points.expire",
        TrackEvent: "events.track",
        AwardBadge: "badges.award",
        AssignTier: "tiers.assign",
        RecordStreak: "streaks.record",
        ClaimReward: "rewards.claim",
    }
)

Command = (
    RegisterParticipant
    | UpdateParticipant
    | AwardPoints
    | DeductPoints
    | TrackEvent
    | AwardBadge
    | AssignTier
    | RecordStreak
    | ClaimReward
    | EvaluateParticipant
    | ExpirePoints
)

# Commands whose decision depends on the definitions: their input is kept on the log.
RE_DECIDABLE = frozenset(
    {
        "points.award",
        "points.deduct",
        "events.track",
        "badges.award",
        "tiers.assign",
        "streaks.record",
        "rewards.claim",
    }
)
_CLASSES = {name: cls for cls, name in COMMAND_NAMES.items()}


def command_input(command: Command) -> dict[str, Any] | None:
    """The command's input as the log keeps it (``causation.input``), or None.

    Its fields by name, as validated at the boundary (so ``command_from_input`` rebuilds the
    same command). None for profile commands: they decide nothing from the definitions, their
    events already hold what changed, and personal data is not copied a second time.
    """
    if COMMAND_NAMES[type(command)] not in RE_DECIDABLE:
        return None
    return {f.name: getattr(command, f.name) for f in fields(command)}  # type: ignore[arg-type]


def command_from_input(name: str, data: dict[str, Any]) -> Command:
    """The command ``name`` recorded with ``data`` (``command_input``); KeyError/TypeError if
    the name is unknown or the data does not fit the command."""
    cls = _CLASSES[name]
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[no-any-return]
