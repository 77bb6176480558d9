"""Pure fold of reward-stream commits (code reservations and releases), with the version check."""

from __future__ import annotations

from dataclasses import dataclass, replace

from schemas.events import Commit, RewardCodeReleased, RewardCodeReserved

APPLIED, CONFLICT = "applied", "conflict"
RESERVED, RELEASED = "reserved", "released"


@dataclass(frozen=True, slots=True)
class StockRow:
    """A reward's stock stream: its version and how many codes are held right now."""

    tenant: str
    reward_id: str
    version: int = 0
    reserved_count: int = 0
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class CodeRow:
    """The last thing that happened to one code: held for a claim, or released back to stock."""

    tenant: str
    reward_id: str
    code_value: str
    status: str
    claim_id: str
    participant_id: str | None
    idempotency_key: str | None
    updated_at: str


def apply_stock(
    row: StockRow | None, codes: dict[str, CodeRow], commit: Commit
) -> tuple[str, StockRow | None, list[CodeRow]]:
    """Fold ``commit`` if it was decided on the stream's version; else a conflict.

    ``codes`` holds the current rows of the codes the commit names (missing: never reserved);
    returns the verdict, the new stream row and the code rows that changed, in order. A release
    of a code that is not held changes nothing (the decision never asks for one).
    """
    if commit.expected_version != (row.version if row else 0):
        return CONFLICT, row, []
    if not commit.events:  # a keyed command that changed nothing: the version stays
        return APPLIED, row, []
    current = row or StockRow(commit.tenant, commit.participant_id)
    codes = dict(codes)
    held = current.reserved_count
    changed: list[CodeRow] = []
    for event in commit.events:
        if isinstance(event, RewardCodeReserved) and event.code_value is not None:
            before = codes.get(event.code_value)
            held += 0 if before is not None and before.status == RESERVED else 1
            after = CodeRow(
                commit.tenant,
                commit.participant_id,
                event.code_value,
                RESERVED,
                event.claim_id,
                event.participant_id,
                event.idempotency_key,
                commit.recorded_at,
            )
        elif isinstance(event, RewardCodeReleased) and event.code_value is not None:
            before = codes.get(event.code_value)
            if before is None or before.status != RESERVED:
                continue
            held -= 1
            after = replace(
                before, status=RELEASED, claim_id=event.claim_id, updated_at=commit.recorded_at
            )
        else:
            continue
        codes[event.code_value] = after
        changed.append(after)
    new_row = replace(
        current, version=current.version + 1, reserved_count=held, updated_at=commit.recorded_at
    )
    return APPLIED, new_row, changed
