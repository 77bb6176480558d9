"""Leaderboards on SQLite and PostgreSQL: scores folded by the real store, ranked by the queries.

Commits go through ``ParticipantStore.apply_batch`` like the live projector's; the rankings are
checked per period, against a Python ranking on random data with many ties, and a replay
(``projections.replay``, what ``gamify replay`` runs) must rebuild the same scores and swap
them in with their indexes.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
from eventsourcing.persistence import StoredEvent

from projections.db import Database, rows
from projections.leaderboards import LeaderboardQueries, percentile, ranking_key
from projections.participants.features.leaderboards import ADD, rebuild_metric
from projections.participants.schema import STATEMENTS, table_names
from projections.participants.store import ParticipantStore, participant_store
from projections.rebuild import swap_in
from projections.replay import READ_MODELS, ReplayOptions, replay
from projections.sources.sqlite import SqliteLogSource
from schemas.events import (
    DEFINITION,
    Causation,
    Commit,
    DefinitionCreated,
    DefinitionDeactivated,
    Event,
    EventTracked,
    ParticipantRegistered,
    PointsAwarded,
)
from services.adapters.sqlite_event_log import open_log_recorder
from tests.builders import TOPIC, records

NOW = datetime(2026, 2, 14, 12, 0, tzinfo=UTC)  # a Saturday in ISO week 2026-W07
TABLES = READ_MODELS["participants"]


class History:
    """Commits of several participants, with their versions, in log order."""

    def __init__(self) -> None:
        self.commits: list[Commit] = []
        self.versions: Counter[tuple[str, str]] = Counter()
        self.ids = itertools.count()

    def _add(self, tenant: str, pid: str, at: str, event: Event) -> None:
        version = self.versions[(tenant, pid)]
        events = (event,) if version else (ParticipantRegistered(auto_created=True), event)
        n = next(self.ids)
        self.commits.append(Commit(f"c{n}", tenant, pid, version, at, Causation("x"), events))
        self.versions[(tenant, pid)] += 1

    def award(self, pid: str, amount: int, at: str, tenant: str = "t") -> History:
        self._add(tenant, pid, at, PointsAwarded(f"tx{len(self.commits)}", amount, 0))
        return self

    def track(self, pid: str, name: str, at: str, tenant: str = "t") -> History:
        self._add(tenant, pid, at, EventTracked(f"e{len(self.commits)}", name, {}, at))
        return self

    def leaderboard(
        self, code: str, body: dict[str, object] | None = None, *, tenant: str = "t",
        active: bool = True,
    ) -> History:  # fmt: skip
        """A leaderboard definition (created, or deactivated if ``active`` is false)."""
        stream = f"leaderboard:{code}"
        version = self.versions[(tenant, stream)]
        event: Event = (
            DefinitionCreated("leaderboard", f"lb-{code}", code, body or {})
            if active
            else DefinitionDeactivated()
        )
        n = next(self.ids)
        self.commits.append(
            Commit(
                f"c{n}", tenant, stream, version, "2026-02-14T12:00:00Z", Causation("x"),
                (event,), stream=DEFINITION,
            )
        )  # fmt: skip
        self.versions[(tenant, stream)] += 1
        return self

    def apply(self, store: ParticipantStore, start: int = 0) -> None:
        stats = store.apply_batch(TOPIC, 0, records(*self.commits[start:], start=start))
        assert stats.applied == len(self.commits) - start


def sample(store: ParticipantStore) -> History:
    h = History().leaderboard("top").leaderboard("top", tenant="other")
    h.award("a", 50, "2026-02-13T09:00:00Z")  # yesterday
    h.award("b", 100, "2026-01-20T09:00:00Z")  # last month
    h.award("c", 40, "2026-02-14T07:00:00Z")
    h.award("e", 40, "2026-02-14T07:00:00Z")  # ties c at the same second: id order
    h.award("d", 15, "2026-02-14T08:00:00Z")
    h.award("d", 25, "2026-02-14T09:00:00Z")  # reaches 40 last
    h.award("a", 30, "2026-02-14T08:00:00Z")
    h.award("x", 1000, "2026-02-14T08:00:00Z", tenant="other")  # another tenant
    h.apply(store)
    return h


def board(queries: LeaderboardQueries, period: str, limit: int = 20, metric: str = "points"):
    found = queries.top("t", metric, period, NOW, limit)
    return [(e.participant_id, e.score, e.change) for e in found.entries], found.total


def test_points_are_ranked_per_period_with_ties_and_changes(
    db: Database, store: ParticipantStore
) -> None:
    sample(store)
    q = LeaderboardQueries(db)
    assert board(q, "all_time") == (
        [
            ("b", 100, "same"),
            ("a", 80, "same"),
            ("c", 40, "new"),  # their whole score came today: not on yesterday's board
            ("e", 40, "new"),
            ("d", 40, "new"),
        ],
        5,
    )
    assert board(q, "yearly")[0] == [
        ("b", 100, "new"),  # no scores in 2025
        ("a", 80, "new"),
        ("c", 40, "new"),
        ("e", 40, "new"),
        ("d", 40, "new"),
    ]
    # February: b scored in January (ranked 1st there), a only this month
    assert board(q, "monthly") == (
        [("a", 80, "new"), ("c", 40, "new"), ("e", 40, "new"), ("d", 40, "new")],
        4,
    )
    assert board(q, "weekly")[0] == board(q, "monthly")[0]
    # today: c and e reached 40 at 07:00 (id order), d at 09:00; a was first yesterday
    assert board(q, "daily") == (
        [("c", 40, "new"), ("e", 40, "new"), ("d", 40, "new"), ("a", 30, "down")],
        4,
    )
    assert board(q, "daily", limit=2) == ([("c", 40, "new"), ("e", 40, "new")], 4)
    top = q.top("t", "points", "daily", NOW, 20)
    assert (top.period, top.period_key) == ("daily", "2026-02-14")
    assert [e.rank for e in top.entries] == [1, 2, 3, 4]

    d = q.standing("t", "points", "daily", NOW, "d")
    assert d is not None
    assert (d.rank, d.score, d.total, d.percentile, d.period_key) == (3, 40, 4, 50.0, "2026-02-14")
    b = q.standing("t", "points", "all_time", NOW, "b")
    assert b is not None and (b.rank, b.percentile) == (1, 100.0)
    assert q.standing("t", "points", "daily", NOW, "b") is None  # no score today
    assert q.standing("t", "points", "all_time", NOW, "x") is None  # another tenant's
    assert q.standing("other", "points", "all_time", NOW, "x").rank == 1  # type: ignore[union-attr]
    # a week later nobody has scored yet; the board is empty
    later = datetime(2026, 2, 21, tzinfo=UTC)
    assert q.top("t", "points", "weekly", later, 20).entries == ()


def test_rank_changes_against_the_previous_period(db: Database, store: ParticipantStore) -> None:
    h = History()
    for pid, amount in (("p1", 30), ("p2", 20), ("p3", 10), ("p4", 5)):  # yesterday
        h.award(pid, amount, "2026-02-13T10:00:00Z")
    for pid, amount in (("p3", 50), ("p1", 40), ("p5", 30), ("p4", 5)):  # today
        h.award(pid, amount, "2026-02-14T10:00:00Z")
    h.leaderboard("top")  # defined after the awards, in the same batch
    h.apply(store)
    q = LeaderboardQueries(db)
    assert board(q, "daily")[0] == [
        ("p3", 50, "up"),  # 3rd yesterday
        ("p1", 40, "down"),  # 1st yesterday
        ("p5", 30, "new"),
        ("p4", 5, "same"),  # 4th both days
    ]


def test_events_are_ranked_by_name_and_in_total(db: Database, store: ParticipantStore) -> None:
    h = History()
    for _ in range(3):
        h.track("x", "login", "2026-02-14T10:00:00Z")
    h.track("y", "purchase", "2026-02-14T09:00:00Z")
    h.track("y", "login", "2026-02-14T11:00:00Z")
    h.track("y", "purchase", "2026-02-14T11:00:00Z")
    h.award("z", 10, "2026-02-14T11:00:00Z")
    h.leaderboard("logins", {"metric": "events", "event_name": "login"})
    h.leaderboard("purchases", {"metric": "events", "event_name": "purchase"})
    h.leaderboard("active", {"metric": "events"})
    h.apply(store)
    q = LeaderboardQueries(db)
    assert board(q, "daily", metric="event:login") == ([("x", 3, "new"), ("y", 1, "new")], 2)
    assert board(q, "all_time", metric="event:purchase") == ([("y", 2, "new")], 1)
    # both did 3 events; x got there at 10:00, y at 11:00
    assert board(q, "weekly", metric="events") == ([("x", 3, "new"), ("y", 3, "new")], 2)
    assert board(q, "all_time", metric="event:none") == ([], 0)


def test_sql_ranking_matches_the_rule_on_random_data_with_many_ties(db: Database, store) -> None:
    rnd = random.Random(7)
    now_key = ("t", "points", "daily", "2026-02-14")
    prev_key = ("t", "points", "daily", "2026-02-13")
    rows_by_key: dict[tuple[str, ...], list[tuple[str, int, str]]] = {now_key: [], prev_key: []}
    for key in rows_by_key:
        for i in range(rnd.randint(60, 90)):
            pid = f"p{i:03d}"
            if rnd.random() < 0.2:
                continue
            score = rnd.randint(1, 6)
            changed = f"{key[3]}T{rnd.choice(['08', '09', '10'])}:00:00Z"
            rows_by_key[key].append((pid, score, changed))
    with db.transaction(commit=True) as c:
        c.executemany(
            db.sql(STATEMENTS[ADD].format_map(table_names())),
            [(*key, pid, s, ch) for key, found in rows_by_key.items() for pid, s, ch in found],
        )
    q = LeaderboardQueries(db)

    def ordered(key: tuple[str, ...]) -> list[tuple[str, int, str]]:
        return sorted(rows_by_key[key], key=lambda r: ranking_key(r[1], r[2], r[0]))

    expected = ordered(now_key)
    before = {r[0]: rank for rank, r in enumerate(ordered(prev_key), 1)}
    total = len(expected)
    for limit in (1, 2, 7, total - 1, total, 100):
        got = q.top("t", "points", "daily", NOW, limit)
        assert got.total == total
        assert [(e.participant_id, e.score) for e in got.entries] == [
            (r[0], r[1]) for r in expected[:limit]
        ]
        for e in got.entries:
            prev = before.get(e.participant_id)
            want = (
                "new"
                if prev is None
                else "up"
                if e.rank < prev
                else "down"
                if e.rank > prev
                else "same"
            )
            assert e.change == want, (e, prev)
    for rank, (pid, score, _) in enumerate(expected, 1):
        s = q.standing("t", "points", "daily", NOW, pid)
        assert s is not None
        assert (s.rank, s.score, s.total) == (rank, score, total)
        assert s.percentile == percentile(rank, total)
    with db.transaction(commit=False) as c:
        for size in (1, 5, 40):
            pids = rnd.sample([r[0] for r in ordered(prev_key)], size) + ["nobody"]
            assert q.ranks_of(c, prev_key, pids) == {p: before[p] for p in pids if p in before}


def sqlite_log(path: Path, commits: list[Commit]) -> SqliteLogSource:
    """``commits`` as the records of an embedded log file at ``path``, and a reader of it."""
    recorder = open_log_recorder(str(path))
    for record in records(*commits):
        commit_id = orjson.loads(record.value)["commit_id"]
        recorder.insert_events([StoredEvent(commit_id, 1, "gamify.commit", record.value)])
    recorder.datastore.close()
    return SqliteLogSource(str(path), TOPIC)


def test_a_replay_rebuilds_the_same_scores_and_swaps_them_in(
    db: Database, store: ParticipantStore, database_url: str, tmp_path: Path
) -> None:
    h = sample(store)
    log = sqlite_log(tmp_path / "log.db", h.commits)
    try:
        replays_rebuild_the_same_scores(h, db, store, database_url, log)
    finally:
        log.close()


def replays_rebuild_the_same_scores(
    h: History, db: Database, store: ParticipantStore, database_url: str, log: SqliteLogSource
) -> None:
    def options(**kw: object) -> ReplayOptions:
        return ReplayOptions(
            database_url=database_url,
            topic=TOPIC,
            new_source=lambda: log,  # as `gamify replay` does on the embedded log
            end_offsets=log.end_offsets,
            settle_timeout=10,
            out=io.StringIO(),
            **kw,  # type: ignore[arg-type]
        )

    q = LeaderboardQueries(db)
    before = {p: board(q, p) for p in ("all_time", "daily", "weekly")}
    assert asyncio.run(replay(options(verify=True))).differences == []

    # a damaged row is found by --verify and fixed by a repair of that participant
    with db.transaction(commit=True) as c:
        c.execute(
            db.sql("UPDATE leaderboard_scores SET score = 1 WHERE participant_id = ?"), ("a",)
        )
    found = asyncio.run(replay(options(verify=True))).differences
    assert {(d.table, d.key[4]) for d in found} == {("leaderboard_scores", "a")}
    assert len(found) == 6  # all_time, 2026, 2026-02, 2026-W07 and two days
    asyncio.run(replay(options(tenant="t", participant="a")))
    assert asyncio.run(replay(options(verify=True))).differences == []

    for _ in range(2):  # twice: the second rebuild reuses the index names the first freed
        asyncio.run(replay(options()))
        assert {p: board(q, p) for p in before} == before
        assert scores_indexes(db) == {"leaderboard_scores_pkey", "leaderboard_scores_rank"}
    # the live tables still take new scores after the swaps
    h.award("e", 1, "2026-02-14T11:00:00Z").apply(store, start=len(h.commits) - 1)
    assert board(q, "daily")[0][0] == ("e", 41, "new")


def scores_indexes(db: Database) -> set[str]:
    """Index names of the live scores table (SQLite: its automatic ones, by origin)."""
    with db.transaction(commit=False) as c:
        if db.kind == "postgres":
            c.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = 'leaderboard_scores'"
            )
            return {r[0] for r in rows(c)}
        c.execute("SELECT name, origin FROM pragma_index_list('leaderboard_scores')")
        names = {r[0]: r[1] for r in rows(c)}
    assert set(names) == {
        "sqlite_autoindex_leaderboard_scores_1",
        "sqlite_autoindex_leaderboard_scores_2",
    }
    return {
        "leaderboard_scores_pkey" if o == "pk" else "leaderboard_scores_rank"
        for o in names.values()
    }


def test_swap_in_gives_every_index_of_a_rebuilt_table_its_live_name(db: Database) -> None:
    """Primary keys, named constraints and explicit indexes, on both databases."""
    for suffix in ("", "__rebuild"):
        participant_store(db, suffix=suffix).create_table()
    with db.transaction(commit=True) as c:
        c.execute(
            "CREATE INDEX leaderboard_scores__rebuild_extra ON leaderboard_scores__rebuild (score)"
        )
        c.execute("CREATE INDEX leaderboard_scores_extra ON leaderboard_scores (score)")
        swap_in(db, c, TABLES, "__rebuild", "participants", "participants__rebuild")
    with db.transaction(commit=False) as c:
        if db.kind == "postgres":
            c.execute(
                "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = current_schema()"
            )
        else:
            c.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'")
        found = rows(c)
    assert not [name for name, _ in found if "__rebuild" in name]
    mine = {name for name, table in found if table == "leaderboard_scores"}
    assert "leaderboard_scores_extra" in mine
    if db.kind == "postgres":
        assert mine == {
            "leaderboard_scores_pkey",
            "leaderboard_scores_rank",
            "leaderboard_scores_extra",
        }
        assert {name for name, table in found if table == "participants"} == {"participants_pkey"}
    # and the next rebuild can create its tables (and their index names) again
    participant_store(db, suffix="__rebuild").create_table()


def score_rows(db: Database) -> list[tuple[object, ...]]:
    with db.transaction(commit=False) as c:
        c.execute(
            "SELECT metric, period, participant_id, score, changed_at FROM leaderboard_scores"
        )
        return sorted(rows(c))


def test_a_new_leaderboard_ranks_history_from_before_it_was_defined(
    db: Database, store: ParticipantStore, database_url: str, tmp_path: Path
) -> None:
    h = History()
    h.award("a", 50, "2026-02-13T09:00:00Z").award("b", 30, "2026-02-14T07:00:00Z")
    h.award("a", 5, "2026-02-14T08:00:00Z").track("b", "login", "2026-02-14T09:00:00Z")
    h.apply(store)
    assert score_rows(db) == []  # no leaderboard: no scores written
    q = LeaderboardQueries(db)

    h.leaderboard("top")  # defined after the awards, in a batch of its own
    h.apply(store, start=4)
    assert board(q, "all_time") == ([("a", 55, "same"), ("b", 30, "new")], 2)
    assert board(q, "daily") == ([("b", 30, "new"), ("a", 5, "down")], 2)
    assert board(q, "all_time", metric="event:login") == ([], 0)  # no board ranks logins

    h.award("b", 40, "2026-02-14T10:00:00Z")  # now added as it is projected
    h.apply(store, start=5)
    assert board(q, "all_time")[0] == [("b", 70, "new"), ("a", 55, "same")]
    by_history = score_rows(db)
    with db.transaction(commit=True) as c:  # rebuilt from the history: the same rows
        rebuild_metric(c, lambda text: db.sql(text.format_map(table_names())), "t", "points")
    assert score_rows(db) == by_history

    h.leaderboard("logins", {"metric": "events", "event_name": "login"})
    h.apply(store, start=6)
    assert board(q, "all_time", metric="event:login") == ([("b", 1, "new")], 1)

    h.leaderboard("top", active=False)  # no active board ranks points: its rows go
    h.apply(store, start=7)
    assert {r[0] for r in score_rows(db)} == {"event:login"}

    path = tmp_path / "log.db"  # a replay of the embedded log folds it all: the same rows
    log = sqlite_log(path, h.commits)
    found = asyncio.run(
        replay(
            ReplayOptions(
                database_url=database_url, topic=TOPIC,
                new_source=lambda: SqliteLogSource(str(path), TOPIC),
                end_offsets=log.end_offsets, settle_timeout=10, out=io.StringIO(), verify=True,
            )
        )
    )  # fmt: skip
    assert found.differences == []
