"""Reward claims: one row per claim for GET /participants/{pid}/rewards; the claim counters.

``RewardClaimed`` adds 1 to the row's ``rewards_claimed`` (profile ``rewards_claimed``, state
``rewards.total_claimed``) and to ``sections["reward_claims"][reward_id]`` (the per-reward cap).
"""

from __future__ import annotations

from projections.participants.projector import (
    Draft,
    ParticipantRow,
    Write,
    evolver,
    history,
    writer,
)
from projections.participants.schema import Table, register_statement, register_table
from schemas.events import Commit, RewardClaimed

CLAIM_COLUMNS = (
    "tenant, participant_id, version, idx, claim_id, reward_id, name, type, code, "
    "points_deducted, claimed_at"
)

register_table(
    Table(
        "reward_claims",
        """CREATE TABLE IF NOT EXISTS {reward_claims} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    claim_id TEXT NOT NULL,
    reward_id TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    code TEXT,
    points_deducted BIGINT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id, version, idx))""",
        ("tenant", "participant_id", "version", "idx"),
        per_participant=True,
    )
)

INSERT = register_statement(
    "reward_claim_insert",
    f"INSERT INTO {{reward_claims}} ({CLAIM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
)


@evolver(RewardClaimed)
def _count(event: RewardClaimed, row: Draft, commit: Commit) -> None:
    row.rewards_claimed += 1  # the per-reward count: schemas.sections


@writer(RewardClaimed)
def _write(event: RewardClaimed, row: ParticipantRow, commit: Commit, idx: int) -> list[Write]:
    return [
        history(
            INSERT,
            commit,
            idx,
            event.claim_id,
            event.reward_id,
            event.reward_name,
            event.reward_type,
            event.code_value,
            event.points_deducted,
            commit.recorded_at,
        )
    ]
