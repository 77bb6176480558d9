"""Leaderboard reads over the scores table: the top N, one participant's rank, rank changes.

Ranking: higher score first; on equal scores the participant who reached the score first
(earlier ``changed_at``) ranks higher; then participant id ascending. Ranks are positions 1..N,
never shared. Text is compared by the database (SQLite: byte order; PostgreSQL: the column's
collation, byte order under ``C``), so every ordering here is done in SQL; ``ranking_key`` is
the same rule in Python under byte order.

Every read names one partition ``(tenant, metric, period, period_key)`` of the primary key, and
uses the ``_rank`` unique constraint (that partition, then ``score, changed_at,
participant_id``) as its index: the top N is the N-th best score (a backward index scan) and
then the rows at or above it; a rank is two counts of better rows (index ranges). No query reads
the whole partition except ``COUNT(*)`` for the total, an index-only count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.db import Database, row, rows
from projections.participants.features.leaderboards import (
    ALL_TIME,
    ALL_TIME_KEY,
    DAILY,
    PERIODS,
    metric_of,
    period_key,
    previous_period_key,
)
from projections.participants.schema import TableSql

__all__ = [
    "PERIODS",
    "Board",
    "Entry",
    "LeaderboardQueries",
    "Standing",
    "change_of",
    "default_period",
    "metric_of",
    "percentile",
    "ranking_key",
]

UP, DOWN, SAME, NEW = "up", "down", "same", "new"
PARTITION = "tenant = ? AND metric = ? AND period = ? AND period_key = ?"
_KEY = "(changed_at, participant_id)"  # the tie-break, compared as a row value
PIECES = 200  # range counts per statement (SQLite allows 500 SELECTs in a UNION)


@dataclass(frozen=True, slots=True)
class Entry:
    rank: int
    participant_id: str
    score: int
    change: str


@dataclass(frozen=True, slots=True)
class Board:
    """The top of one period of a metric, and how many participants scored in it."""

    period: str
    period_key: str
    entries: tuple[Entry, ...]
    total: int


@dataclass(frozen=True, slots=True)
class Standing:
    """One participant's place in one period of a metric."""

    participant_id: str
    period: str
    period_key: str
    rank: int
    score: int
    total: int
    percentile: float


def default_period(definition: dict[str, Any]) -> str:
    window = definition.get("time_window")
    return window if window in PERIODS else ALL_TIME


def ranking_key(score: int, changed_at: str, participant_id: str) -> tuple[int, str, str]:
    """Sort key of the ranking: ascending order of this key is rank order."""
    return (-score, changed_at, participant_id)


def percentile(rank: int, total: int) -> float:
    """Share of participants ranked at or below ``rank``, in percent, one decimal."""
    return round((total - rank + 1) / total * 100, 1) if total else 0.0


def change_of(rank: int, previous: int | None) -> str:
    if previous is None:
        return NEW
    return UP if rank < previous else DOWN if rank > previous else SAME


class LeaderboardQueries(TableSql):
    """Leaderboard reads (synchronous: call from a thread), with a small top-N cache.

    ``top(..., version=v)`` may answer from the cache: an entry is reused for at most
    ``cache_seconds`` and only while the caller's ``version`` (the projector positions it knows)
    is unchanged, so a write this process has seen projected is never hidden by the cache.
    """

    def __init__(
        self,
        db: Database,
        *,
        suffix: str = "",
        cache_seconds: float = 30.0,
        cache_size: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(db, suffix=suffix)
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self.clock = clock
        self._cache: dict[Hashable, tuple[float, Board]] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------
    # top N

    def top(
        self,
        tenant: str,
        metric: str,
        period: str,
        now: datetime,
        limit: int,
        *,
        version: Hashable | None = None,
    ) -> Board:
        """The best ``limit`` participants of the period containing ``now``, with rank changes."""
        key = period_key(period, now)
        if version is None or self.cache_seconds <= 0:
            return self._top(tenant, metric, period, key, now, limit)
        ident = (tenant, metric, period, key, limit, version)
        at = self.clock()
        with self._lock:
            cached = self._cache.get(ident)
        if cached is not None and cached[0] > at:
            return cached[1]
        board = self._top(tenant, metric, period, key, now, limit)
        with self._lock:
            if len(self._cache) >= self.cache_size:
                self._evict(at)
            self._cache[ident] = (at + self.cache_seconds, board)
        return board

    def _evict(self, at: float) -> None:
        for ident in [i for i, (expires, _) in self._cache.items() if expires <= at]:
            del self._cache[ident]
        while len(self._cache) >= self.cache_size:
            del self._cache[next(iter(self._cache))]  # the oldest entry

    def _top(
        self, tenant: str, metric: str, period: str, key: str, now: datetime, limit: int
    ) -> Board:
        part = (tenant, metric, period, key)
        with self.db.transaction(commit=False) as c:
            # The limit-th best score: rows scoring less cannot be in the top (index scan).
            c.execute(
                self.sql(
                    f"SELECT score FROM {{leaderboard_scores}} WHERE {PARTITION} "  # noqa: S608
                    "ORDER BY score DESC LIMIT 1 OFFSET ?"
                ),
                (*part, limit - 1),
            )
            floor = row(c)
            c.execute(
                self.sql(
                    "SELECT participant_id, score FROM {leaderboard_scores} "  # noqa: S608
                    f"WHERE {PARTITION} AND score >= ? "
                    "ORDER BY score DESC, changed_at, participant_id LIMIT ?"
                ),
                (*part, floor[0] if floor else -(2**63), limit),
            )
            found = rows(c)
            total = self._total(c, part)
            pids = [f[0] for f in found]
            changes = self._changes(c, tenant, metric, period, now, pids)
        entries = tuple(
            Entry(rank, pid, score, changes[pid]) for rank, (pid, score) in enumerate(found, 1)
        )
        return Board(period, key, entries, total)

    def _changes(
        self,
        c: Any,
        tenant: str,
        metric: str,
        period: str,
        now: datetime,
        pids: Sequence[str],
    ) -> dict[str, str]:
        """Each participant's change against their rank in the previous period of the type.

        all_time has no previous period: a participant whose whole all-time score was scored
        today (UTC) had no place yesterday and is ``new``; everyone else is ``same``.
        """
        if not pids:
            return {}
        marks = ", ".join("?" * len(pids))
        before = previous_period_key(period, now)
        if before is None:
            c.execute(
                self.sql(
                    "SELECT a.participant_id FROM {leaderboard_scores} a "  # noqa: S608
                    "JOIN {leaderboard_scores} d ON d.tenant = a.tenant AND d.metric = a.metric "
                    "AND d.participant_id = a.participant_id AND d.period = ? "
                    "AND d.period_key = ? AND d.score = a.score "
                    "WHERE a.tenant = ? AND a.metric = ? AND a.period = ? AND a.period_key = ? "
                    f"AND a.participant_id IN ({marks})"
                ),
                (DAILY, period_key(DAILY, now), tenant, metric, period, ALL_TIME_KEY, *pids),
            )
            new = {f[0] for f in rows(c)}
            return {pid: NEW if pid in new else SAME for pid in pids}
        ranks = self.ranks_of(c, (tenant, metric, period, before), pids)
        return {pid: change_of(rank, ranks.get(pid)) for rank, pid in enumerate(pids, 1)}

    def ranks_of(self, c: Any, part: tuple[str, ...], pids: Sequence[str]) -> dict[str, int]:
        """Ranks of several participants in one partition, in one pass over the index.

        The participants are put in rank order; each rank is the previous one plus one plus
        the rows strictly between the two (counted by index ranges), so the index entries read
        are at most the rank of the last one, however many participants are asked for.
        """
        marks = ", ".join("?" * len(pids))
        c.execute(
            self.sql(
                "SELECT participant_id, score, changed_at FROM {leaderboard_scores} "  # noqa: S608
                f"WHERE {PARTITION} AND participant_id IN ({marks}) "
                "ORDER BY score DESC, changed_at, participant_id"
            ),
            (*part, *pids),
        )
        found = rows(c)  # in rank order, by the database's own text comparison
        pieces: list[tuple[int, str, tuple[Any, ...]]] = []
        for i, (pid, score, changed_at) in enumerate(found):
            if i == 0:
                pieces.append((i, "score > ?", (score,)))
                pieces.append((i, f"score = ? AND {_KEY} < (?, ?)", (score, changed_at, pid)))
                continue
            b_pid, b_score, b_changed = found[i - 1]
            if b_score == score:
                pieces.append(
                    (
                        i,
                        f"score = ? AND {_KEY} > (?, ?) AND {_KEY} < (?, ?)",
                        (score, b_changed, b_pid, changed_at, pid),
                    )
                )
            else:
                pieces.append((i, f"score = ? AND {_KEY} > (?, ?)", (b_score, b_changed, b_pid)))
                pieces.append((i, "score < ? AND score > ?", (b_score, score)))
                pieces.append((i, f"score = ? AND {_KEY} < (?, ?)", (score, changed_at, pid)))
        between = [0] * len(found)
        for start in range(0, len(pieces), PIECES):
            chunk = pieces[start : start + PIECES]
            c.execute(
                self.sql(
                    " UNION ALL ".join(
                        f"SELECT {i}, COUNT(*) FROM {{leaderboard_scores}} "  # noqa: S608
                        f"WHERE {PARTITION} AND {where}"
                        for i, where, _ in chunk
                    )
                ),
                [v for _, _, args in chunk for v in (*part, *args)],
            )
            for i, count in rows(c):
                between[int(i)] += int(count)
        ranks: dict[str, int] = {}
        rank = 0
        for (pid, _, _), gap in zip(found, between, strict=True):
            rank += gap + 1
            ranks[pid] = rank
        return ranks

    # ----------------------------------------------------------------------------------------
    # one participant

    def standing(
        self, tenant: str, metric: str, period: str, now: datetime, participant_id: str
    ) -> Standing | None:
        """The participant's rank in the period containing ``now``; None if they have no score."""
        key = period_key(period, now)
        part = (tenant, metric, period, key)
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT score, changed_at FROM {leaderboard_scores} "  # noqa: S608
                    f"WHERE {PARTITION} AND participant_id = ?"
                ),
                (*part, participant_id),
            )
            mine = row(c)
            if mine is None:
                return None
            score, changed_at = mine
            c.execute(
                self.sql(
                    f"SELECT COUNT(*) FROM {{leaderboard_scores}} WHERE {PARTITION} AND score > ?"  # noqa: S608
                ),
                (*part, score),
            )
            above = row(c)[0]  # type: ignore[index]
            c.execute(
                self.sql(
                    "SELECT COUNT(*) FROM {leaderboard_scores} "  # noqa: S608
                    f"WHERE {PARTITION} AND score = ? "
                    "AND (changed_at, participant_id) < (?, ?)"
                ),
                (*part, score, changed_at, participant_id),
            )
            tied_ahead = row(c)[0]  # type: ignore[index]
            total = self._total(c, part)
        rank = int(above) + int(tied_ahead) + 1
        return Standing(
            participant_id, period, key, rank, int(score), total, percentile(rank, total)
        )

    def _total(self, c: Any, part: tuple[str, ...]) -> int:
        c.execute(
            self.sql(f"SELECT COUNT(*) FROM {{leaderboard_scores}} WHERE {PARTITION}"),  # noqa: S608
            part,
        )
        return int(row(c)[0])  # type: ignore[index]
