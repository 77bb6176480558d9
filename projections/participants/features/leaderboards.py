"""Leaderboard scores: what each participant scored per metric and calendar period.

Every ``PointsAwarded`` adds its amount to metric ``points`` and every ``EventTracked`` adds 1
to metrics ``event:<event_name>`` and ``events`` (all tracked events), each for the five periods
that contain the commit's ``recorded_at`` (UTC): all_time ``all``, yearly ``2026``, monthly
``2026-02``, weekly (ISO) ``2026-W07`` and daily ``2026-02-14``.

Only metrics that an active leaderboard of the tenant ranks are stored (all five periods: a
read may ask for any of them). When a batch makes a metric active (a leaderboard is created,
re-activated or changes metric), its scores are rebuilt from the history read models in that
batch's transaction (``points_ledger`` awards, ``event_history``), after the batch's own rows,
whose score adds were left out; when no active leaderboard ranks a metric any more, its rows
are deleted. So the table always holds, for the active metrics, the whole history: a
leaderboard created later ranks what happened before it, and a replay that projects the
definition at another point in the log leaves the same rows. On PostgreSQL, batches that add
scores hold a shared advisory lock and batches that change leaderboards an exclusive one, so a
rebuild never misses a concurrent batch's rows (several projector processes).

Upserts add to the stored score (``score + excluded.score``) and set ``changed_at`` to the
commit time, so replaying the log rebuilds the same rows. The ranking order (higher score,
then earlier ``changed_at``, then participant id) is served by the ``_rank`` unique
constraint, a covering index declared inside CREATE TABLE (see ``projections.leaderboards``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from projections.db import rows
from projections.participants.projector import ParticipantRow, Write, writer
from projections.participants.schema import (
    Flush,
    Table,
    register_flush_hook,
    register_merge,
    register_statement,
    register_table,
)
from schemas.events import DEFINITION, Commit, EventTracked, PointsAwarded

POINTS = "points"
EVENTS = "events"  # every tracked event, whatever its name
EVENT_PREFIX = "event:"  # + event_name: one tracked event name
ALL_TIME, YEARLY, MONTHLY, WEEKLY, DAILY = "all_time", "yearly", "monthly", "weekly", "daily"
PERIODS = (ALL_TIME, YEARLY, MONTHLY, WEEKLY, DAILY)
ALL_TIME_KEY = "all"
LEADERBOARD = "leaderboard"  # the definition kind
SCORES_LOCK = 0x67616D6C62  # PostgreSQL advisory lock id ("gamlb"): score adds vs rebuilds

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

STATEMENT_ADD = (
    "INSERT INTO {leaderboard_scores} (tenant, metric, period, period_key, participant_id, "
    "score, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tenant, metric, period, period_key, participant_id) DO UPDATE SET "
    "score = {leaderboard_scores}.score + excluded.score, changed_at = excluded.changed_at"
)
ADD = register_statement("leaderboard_score_add", STATEMENT_ADD)
# Not a statement: what a commit adds to a metric, (tenant, metric, participant_id, amount,
# recorded_at). The flush hook keeps those of active metrics and expands them into ADD rows,
# one per period, so a batch computes no period keys for metrics that nothing ranks.
PENDING = "leaderboard_score_pending"


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
    return list(_period_keys(recorded_at))


@functools.lru_cache(maxsize=4096)
def _period_keys(recorded_at: str) -> tuple[tuple[str, str], ...]:
    moment = parse_instant(recorded_at)
    if moment is None:
        return ((ALL_TIME, ALL_TIME_KEY),)
    return tuple((period, period_key(period, moment)) for period in PERIODS)


def score_writes(commit: Commit, metrics: tuple[str, ...], amount: int) -> list[Write]:
    """Add ``amount`` to each metric of the commit's participant in every period of the commit.

    The writes are PENDING ones: the store's flush keeps those of active metrics and expands
    them (``expand_scores``) into ADD rows.
    """
    if amount == 0:
        return []
    return [
        Write(PENDING, (commit.tenant, metric, commit.participant_id, amount, commit.recorded_at))
        for metric in metrics
    ]


def expand_scores(pending: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """ADD rows of PENDING score writes, in order: one per period that contains the commit."""
    return [
        (tenant, metric, period, key, pid, amount, at)
        for tenant, metric, pid, amount, at in pending
        for period, key in _period_keys(at)
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


def metric_of(definition: dict[str, Any]) -> str:
    """The scores metric a leaderboard definition ranks (metric defaults to points)."""
    if definition.get("metric", POINTS) == "events":
        name = definition.get("event_name")
        return f"{EVENT_PREFIX}{name}" if name else EVENTS
    return POINTS


def active_metrics(
    c: Any, sql: Callable[[str], str], tenants: Iterable[str]
) -> dict[str, set[str]]:
    """Tenant -> the metrics its active leaderboards rank (as the transaction sees them)."""
    wanted = sorted(set(tenants))
    found: dict[str, set[str]] = {t: set() for t in wanted}
    for start in range(0, len(wanted), 300):
        chunk = wanted[start : start + 300]
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT tenant, body FROM {{definitions}} WHERE kind = ? AND is_active = ? AND tenant IN ({marks})"  # noqa: E501, S608
        c.execute(sql(query), (LEADERBOARD, True, *chunk))
        for tenant, body in rows(c):
            found[tenant].add(metric_of(orjson.loads(body)))
    return found


def rebuild_metric(c: Any, sql: Callable[[str], str], tenant: str, metric: str) -> int:
    """Replace ``metric``'s scores of ``tenant`` by a fold of the history; rows written.

    Equal to the adds the live fold makes, commit by commit in each participant's version order:
    the sum of the amounts (awards of ``amount > 0``; 1 per tracked event) per period, and
    ``changed_at`` of the last commit that added.
    """
    c.execute(
        sql("DELETE FROM {leaderboard_scores} WHERE tenant = ? AND metric = ?"), (tenant, metric)
    )
    if metric == POINTS:
        c.execute(
            sql(
                "SELECT participant_id, amount, created_at FROM {points_ledger} "
                "WHERE tenant = ? AND kind = ? AND amount > 0 ORDER BY participant_id, version, idx"
            ),
            (tenant, "award"),
        )
    elif metric == EVENTS:
        c.execute(
            sql(
                "SELECT participant_id, 1, recorded_at FROM {event_history} WHERE tenant = ? "
                "ORDER BY participant_id, version, idx"
            ),
            (tenant,),
        )
    else:
        c.execute(
            sql(
                "SELECT participant_id, 1, recorded_at FROM {event_history} "
                "WHERE tenant = ? AND event_name = ? ORDER BY participant_id, version, idx"
            ),
            (tenant, metric.removeprefix(EVENT_PREFIX)),
        )
    scores: dict[tuple[str, str, str], list[Any]] = {}
    for pid, amount, at in rows(c):
        for period, key in period_keys(at):
            found = scores.get((period, key, pid))
            if found is None:
                scores[(period, key, pid)] = [amount, at]
            else:
                found[0] += amount
                found[1] = at
    c.executemany(
        sql(STATEMENT_ADD),
        [(tenant, metric, p, k, pid, v[0], v[1]) for (p, k, pid), v in scores.items()],
    )
    return len(scores)


def _leaderboard_commits(commits: list[Commit]) -> list[Commit]:
    return [
        cm
        for cm in commits
        if cm.stream == DEFINITION and cm.participant_id.startswith(f"{LEADERBOARD}:")
    ]


def _settle_scores(flush: Flush) -> None:
    """Keep only adds to active metrics; after the writes, rebuild or drop metrics that changed."""
    adds = flush.grouped.pop(PENDING, None) or []
    changed = _leaderboard_commits(flush.commits)
    if not adds and not changed:
        return
    if flush.kind == "postgres":
        lock = "pg_advisory_xact_lock" if changed else "pg_advisory_xact_lock_shared"
        flush.c.execute(f"SELECT {lock}(%s)", (SCORES_LOCK,))
    before = active_metrics(
        flush.c, flush.sql, [p[0] for p in adds] + [cm.tenant for cm in changed]
    )
    if adds:
        flush.grouped[ADD] = expand_scores(p for p in adds if p[1] in before[p[0]])
    if changed:
        tenants = sorted({cm.tenant for cm in changed})

        def after() -> None:
            now = active_metrics(flush.c, flush.sql, tenants)
            for tenant in tenants:
                for metric in sorted(before[tenant] - now[tenant]):
                    flush.c.execute(
                        flush.sql(
                            "DELETE FROM {leaderboard_scores} WHERE tenant = ? AND metric = ?"
                        ),
                        (tenant, metric),
                    )
                for metric in sorted(now[tenant] - before[tenant]):
                    rebuild_metric(flush.c, flush.sql, tenant, metric)

        flush.after.append(after)


register_flush_hook(_settle_scores)
