"""Commands a participant accepts: what a caller asks for, already validated."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """Credit points; creates the participant on first use."""

    participant_id: str
    amount: int
    reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeductPoints:
    """Debit points if the balance allows it."""

    participant_id: str
    amount: int
    reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


Command = RegisterParticipant | UpdateParticipant | AwardPoints | DeductPoints

COMMAND_NAMES: dict[type, str] = {
    RegisterParticipant: "participants.register",
    UpdateParticipant: "participants.update",
    AwardPoints: "points.award",
    DeductPoints: "points.deduct",
}


def from_body(name: str, body: dict[str, Any]) -> Command:
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
    if name in ("points.award", "points.deduct"):
        cls_ = AwardPoints if name == "points.award" else DeductPoints
        return cls_(pid, body["amount"], body.get("reason"), body.get("metadata") or {})
    raise KeyError(name)
