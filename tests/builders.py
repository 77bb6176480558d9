"""Builders of commits and log records shared by unit and integration tests."""

from __future__ import annotations

from schemas.codec import encode
from schemas.events import Causation, Commit, Event, ParticipantRegistered, PointsAwarded
from schemas.log import LogRecord

TOPIC = "gamify.participant-events"


def award_commit(
    pid: str,
    version: int,
    amount: int,
    balance_after: int,
    *,
    cid: str,
    key: str | None = None,
    tenant: str = "t",
) -> Commit:
    events: tuple[Event, ...] = (PointsAwarded(f"tx-{cid}", amount, balance_after),)
    if version == 0:
        events = (ParticipantRegistered(auto_created=True), *events)
    return Commit(
        cid,
        tenant,
        pid,
        version,
        "2026-02-14T10:00:00Z",
        Causation("points.award", idempotency_key=key),
        events,
    )


def records(*commits: Commit, start: int = 0, partition: int = 0) -> list[LogRecord]:
    return [LogRecord(partition, start + i, encode(c)) for i, c in enumerate(commits)]
