"""Pure decisions on a reward's stock stream: reserve a free code for a claim, or release it.

The stream holds which inventory codes are taken; the inventory itself is the reward
definition's ``codes`` list. A code is free when no live reservation holds it, so a released
code is handed out again (first free code in inventory order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.events import Event, RewardCodeReleased, RewardCodeReserved
from services.participants.domain import Refused


class OutOfStock(Refused):
    """Every code of the reward's inventory is held: 409."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Reward out of stock: {name}")


@dataclass(frozen=True, slots=True)
class Held:
    """One code held for a claim."""

    code_value: str
    claim_id: str
    participant_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class StockState:
    """A reward stream at ``version``: the codes held right now."""

    version: int = 0
    held: tuple[Held, ...] = field(default_factory=tuple)

    def holding(self, participant_id: str, idempotency_key: str | None) -> Held | None:
        """The live reservation an earlier attempt of the same claim made, if any."""
        if idempotency_key is None:
            return None
        return next(
            (
                h
                for h in self.held
                if h.idempotency_key == idempotency_key and h.participant_id == participant_id
            ),
            None,
        )


def decide_reserve(
    state: StockState,
    inventory: Sequence[str],
    name: str,
    claim_id: str,
    participant_id: str,
    idempotency_key: str | None,
) -> tuple[list[Event], Held]:
    """Hold the first free code for a claim; reuse the code an earlier attempt held.

    A reservation carries the claim's idempotency key, so a retry of the same request (after a
    crash between the saga's steps, or concurrently) gets the same claim id and code and never
    takes a second code. Raises OutOfStock when every code is held.
    """
    earlier = state.holding(participant_id, idempotency_key)
    if earlier is not None:
        return [], earlier
    taken = {h.code_value for h in state.held}
    code = next((c for c in inventory if c not in taken), None)
    if code is None:
        raise OutOfStock(name)
    held = Held(code, claim_id, participant_id, idempotency_key)
    event = RewardCodeReserved(
        claim_id=claim_id,
        participant_id=participant_id,
        code_value=code,
        idempotency_key=idempotency_key,
    )
    return [event], held


def decide_release(state: StockState, claim_id: str, code_value: str) -> list[Event]:
    """Compensation: give the claim's code back; nothing when the claim no longer holds it."""
    if any(h.code_value == code_value and h.claim_id == claim_id for h in state.held):
        return [RewardCodeReleased(claim_id=claim_id, code_value=code_value)]
    return []
