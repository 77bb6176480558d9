"""A replay quarantines the same records as live projection, whatever the batching."""

from __future__ import annotations

import asyncio
import io

from projections import runner
from projections.db import open_database
from projections.participants.quarantine import QuarantineQueries
from projections.participants.store import participant_store
from projections.replay import ReplayOptions, replay
from schemas.codec import encode
from services.adapters.memory_event_log import InMemoryEventLog
from tests.builders import TOPIC, award_commit
from tests.integration.test_quarantine import fold_breaking, with_reason


def poisoned_log() -> InMemoryEventLog:
    """Good commits with every kind of poison between them, one poison commit appended twice."""
    log = InMemoryEventLog(TOPIC)
    bad = fold_breaking(award_commit("u1", 1, 5, 15, cid="bad", key="k"))
    values = [
        encode(award_commit("u1", 0, 10, 10, cid="a")),
        bad,
        encode(with_reason(award_commit("u2", 0, 1, 1, cid="nul"), "a\x00b")),
        b"garbage",
        bad,  # a producer retry's second copy
        encode(award_commit("u1", 1, 7, 17, cid="after")),
        encode(award_commit("u2", 0, 2, 2, cid="u2-first")),
        *[encode(award_commit("u3", v, 1, v + 1, cid=f"u3-{v}")) for v in range(30)],
    ]
    for value in values:
        log.append_value(value)
    return log


async def project_live(url: str, log: InMemoryEventLog) -> None:
    """Project the way a live projector meets the records: one small batch at a time."""
    db = open_database(url)
    try:
        store = participant_store(db)
        store.create_table()
        until = await log.end_offsets()
        await runner.run(
            log,
            store,
            asyncio.Event(),
            until=until,
            max_records=1,
            catch_up_records=None,  # one record per batch, however far behind
            poll_timeout=0.01,
        )
    finally:
        db.close()


def test_a_replay_quarantines_the_same_records_and_rebuilds_the_same_rows(
    database_url: str,
) -> None:
    log = poisoned_log()
    asyncio.run(project_live(database_url, log))
    db = open_database(database_url)
    try:
        live = [(e.offset, e.kind, e.commit_id) for e in QuarantineQueries(db).entries()]
        assert live == [(1, "engine", "bad"), (2, "value", "nul"), (3, "decode", None)]
    finally:
        db.close()
    opts = ReplayOptions(
        database_url=database_url,
        topic=TOPIC,
        new_source=lambda: log,
        end_offsets=log.end_offsets,
        verify=True,
        resume=False,
        out=io.StringIO(),
    )
    result = asyncio.run(replay(opts))  # one batch of 37 records: bisected down to the poison
    assert [d.describe() for d in result.differences] == []
    assert result.commits == 37
