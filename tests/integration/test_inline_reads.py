"""GET reads on SQLite run inline on the caller's thread: same rows, never a stale snapshot."""

from __future__ import annotations

from pathlib import Path

from projections.db import open_database
from projections.participants.queries import ParticipantQueries
from projections.participants.store import participant_store
from tests.builders import TOPIC, award_commit, records


def test_inline_reads_see_each_committed_batch_as_the_pooled_reads_do(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store = participant_store(db)
        store.create_table()
        queries = ParticipantQueries(db)
        assert queries.inline
        assert queries.participant_inline("t", "u1") is None
        for version in range(3):  # each batch commits; the inline connection must see each one
            commit = award_commit(
                "u1", version, 10, 10 * (version + 1), cid=f"c{version}", key=f"k{version}"
            )
            assert queries.outcome(f"c{version}", inline=True) is None
            store.apply_batch(TOPIC, 0, records(commit, start=version))
            outcome = queries.outcome(f"c{version}", inline=True)
            assert outcome is not None and outcome == queries.outcome(f"c{version}")
            keyed = queries.idempotent("t", "u1", f"k{version}", inline=True)
            assert keyed is not None and keyed == queries.idempotent("t", "u1", f"k{version}")
            inline = queries.participant_inline("t", "u1")
            assert inline is not None and inline == queries.participant("t", "u1")
            assert (inline.version, inline.balance) == (version + 1, 10 * (version + 1))
    finally:
        db.close()
