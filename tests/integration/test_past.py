"""The past read back from the log: snapshots shorten the fold and never change its answer."""

from __future__ import annotations

import asyncio

import pytest

from projections import runner
from projections.db import Database, rows
from projections.participants import snapshots
from projections.participants.projector import ParticipantRow, apply_commit
from projections.participants.queries import ParticipantQueries
from projections.participants.store import participant_store
from projections.past import PastQueries, history, participant_as_of
from schemas.events import Causation, Commit, ParticipantRegistered, PointsAwarded
from services.adapters.memory_event_log import InMemoryEventLog


def moment(second: int) -> str:
    return f"2026-04-01T10:00:{second:02d}Z"


def awards(n: int) -> list[Commit]:
    """``n`` awards of 10 to ``hero`` (the first registers it), one per second from second 1,
    each after a commit of another participant."""
    found = []
    for i in range(n):
        for pid, version in ((f"other-{i}", 0), ("hero", i)):
            first = (ParticipantRegistered(auto_created=True),) if version == 0 else ()
            award = PointsAwarded(f"t-{pid}-{i}", 10, 10 * (version + 1))
            found.append(
                Commit(
                    f"c-{pid}-{i}",
                    "acme",
                    pid,
                    version,
                    moment(i + 1),
                    Causation("points.award"),
                    (*first, award),
                )
            )
    return found


async def test_as_of_from_a_snapshot_equals_the_fold_from_the_first_commit(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On both read-model stores (the ``db`` fixture: SQLite and PostgreSQL)."""
    monkeypatch.setattr(snapshots, "SNAPSHOT_EVERY", 3)
    log = InMemoryEventLog()
    commits = awards(10)
    for commit in commits:
        await log.append(commit)
    store = participant_store(db)
    store.create_table()
    await runner.run(log, store, asyncio.Event(), until={0: len(commits)})
    with db.transaction(commit=False) as c:
        c.execute(
            "SELECT version FROM participant_snapshots WHERE participant_id = 'hero' ORDER BY version"
        )
        assert [r[0] for r in rows(c)] == [3, 6, 9]
    queries = PastQueries(db)
    scratch: ParticipantRow | None = None
    hero = [c for c in commits if c.participant_id == "hero"]
    assert await participant_as_of(queries, log, "acme", "hero", moment(0)) is None
    for second, commit in enumerate(hero, start=1):
        scratch = apply_commit(scratch, commit, key_used=False).row
        then = await participant_as_of(queries, log, "acme", "hero", moment(second))
        assert then == scratch, second
        assert then is not None and then.balance == 10 * second
    live = ParticipantQueries(db).participant("acme", "hero")
    assert await participant_as_of(queries, log, "acme", "hero", moment(59)) == live
    page, total = await history(queries, log, "acme", "hero", 2, 4)
    assert total == 10
    assert [e.commit.expected_version for e in page if e.commit] == [5, 4, 3, 2]
