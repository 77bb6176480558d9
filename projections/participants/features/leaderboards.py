"""Leaderboard scores: what each participant scored per metric and calendar period.

Every ``PointsAwarded`` adds its amount to metric ``points`` and every ``EventTracked`` adds 1
to metrics ``event:<event_name>`` and ``events`` (all tracked events), each for the five periods
that contain the commit's ``recorded_at`` (UTC): all_time ``all``, yearly ``2026``, monthly
``2026-02``, weekly (ISO) ``2026-W07`` and daily ``2026-02-14``. Scores do not depend on
leaderboard definitions, so a leaderboard created later ranks the whole history.

Upserts add to the stored score (``score + excluded.score``) and set ``changed_at`` to the
commit time, so replaying the log rebuilds the same rows. The ranking order (higher score,
then earlier ``changed_at``, then participant id) is served by the ``_rank`` unique
constraint, a covering index declared inside CREATE TABLE (see ``projections.leaderboards``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from projections.participants.projector import ParticipantRow, Write, writer
from projections.participants.schema import (
    Table,
    register_merge,
    register_statement,
    register_table,
)
from schemas.events import Commit, EventTracked, PointsAwarded

POINTS = "points"
EVENTS = "events"  # every tracked event, whatever its name
EVENT_PREFIX = "event:"  # + event_name: one tracked event name
ALL_TIME, YEARLY, MONTHLY, WEEKLY, DAILY = "all_time", "yearly", "monthly", "weekly", "daily"
PERIODS = (ALL_TIME, YEARLY, MONTHLY, WEEKLY, DAILY)
ALL_TIME_KEY = "all"

register_table(
    Table(
        "leaderboard_scores",
        """CREATE TABLE IF NOT EXISTS {leaderboard_scores} (
    tenant TEXT NOT NULL,
    metric TEXT NOT NULL,
    period TEXT NOT NULL,
    period_key TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    score BIGINT NOT NULL,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (tenant, metric, period, period_key, participant_id),
    CONSTRAINT {leaderboard_scores}_rank
        UNIQUE (tenant, metric, period, period_key, score, changed_at, participant_id))""",
        ("tenant", "metric", "period", "period_key", "participant_id"),
        per_participant=True,
    )
)

ADD = register_statement(
    "leaderboard_score_add",
    (
        "INSERT INTO {leaderboard_scores} (tenant, metric, period, period_key, participant_id, "
        "score, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (tenant, metric, period, period_key, participant_id) DO UPDATE SET "
        "score = {leaderboard_scores}.score + excluded.score, changed_at = excluded.changed_at"
    ),
)


def event_metric(event_name: str) -> str:
    return f"{EVENT_PREFIX}{event_name}"


def parse_instant(stamp: str) -> datetime | None:
    """``stamp`` (ISO 8601) as an aware UTC datetime; a naive one is taken as UTC."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def period_key(period: str, moment: datetime) -> str:
    """The key of the ``period`` that contains ``moment`` (converted to UTC)."""
    day = moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
    return _key(period, day)


def previous_period_key(period: str, moment: datetime) -> str | None:
    """The key of the period just before the one containing ``moment``; None for all_time."""
    day = moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
    if period == ALL_TIME:
        return None
    if period == DAILY:
        return _key(DAILY, day - timedelta(days=1))
    if period == WEEKLY:
        return _key(WEEKLY, day - timedelta(days=7))
    if period == MONTHLY:
        return _key(MONTHLY, day.replace(day=1) - timedelta(days=1))
    if period == YEARLY:
        return str(day.year - 1)
    raise ValueError(f"unknown period {period!r}")


def _key(period: str, day: date) -> str:
    if period == ALL_TIME:
        return ALL_TIME_KEY
    if period == YEARLY:
        return f"{day.year:04d}"
    if period == MONTHLY:
        return f"{day.year:04d}-{day.month:02d}"
    if period == WEEKLY:
        iso = day.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    if period == DAILY:
        return day.isoformat()
    raise ValueError(f"unknown period {period!r}")


def period_keys(recorded_at: str) -> list[tuple[str, str]]:
    """(period, key) of every period containing the instant; only all_time if unreadable."""
    moment = parse_instant(recorded_at)
    if moment is None:
        return [(ALL_TIME, ALL_TIME_KEY)]
    return [(period, period_key(period, moment)) for period in PERIODS]


def score_writes(commit: Commit, metrics: tuple[str, ...], amount: int) -> list[Write]:
    """Add ``amount`` to each metric of the commit's participant in every period of the commit."""
    if amount == 0:
        return []
    return [
        Write(
            ADD,
            (
                commit.tenant,
                metric,
                period,
                key,
                commit.participant_id,
                amount,
                commit.recorded_at,
            ),
        )
        for metric in metrics
        for period, key in period_keys(commit.recorded_at)
    ]


@writer(PointsAwarded)
def _points(event: PointsAwarded, row: ParticipantRow, commit: Commit, idx: int) -> list[Write]:
    return score_writes(commit, (POINTS,), event.amount)


@writer(EventTracked)
def _events(event: EventTracked, row: ParticipantRow, commit: Commit, idx: int) -> list[Write]:
    return score_writes(commit, (event_metric(event.event_name), EVENTS), 1)


def _merge_adds(params: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One upsert per score row of a batch: scores summed, the last changed_at kept.

    Equal to applying the adds one by one (the upsert adds and overwrites changed_at), so live
    batches and replay batches of any size leave the same rows; far fewer statements.
    """
    merged: dict[tuple[Any, ...], list[Any]] = {}
    for p in params:
        key = p[:5]
        if key in merged:
            merged[key][5] += p[5]
            merged[key][6] = p[6]
        else:
            merged[key] = list(p)
    return [tuple(v) for v in merged.values()]


register_merge(ADD, _merge_adds)
