"""ParticipantErased anonymises the same rows whatever the batching, live or in a replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from projections.data_keys import open_data_keys
from projections.db import open_database, rows
from projections.participants.schema import TABLES
from projections.participants.store import participant_store
from schemas.codec import encode
from schemas.events import (
    Causation,
    Commit,
    EventTracked,
    ParticipantErased,
    ParticipantRegistered,
    PointsAwarded,
)
from schemas.log import LogRecord
from schemas.sealing import seal

AT = "2026-02-14T10:00:00Z"


def commit(n: int, version: int, *events: Any, pid: str = "p1", key: str | None = None) -> Commit:
    return Commit(
        commit_id=f"c{n}",
        tenant="acme",
        participant_id=pid,
        expected_version=version,
        recorded_at=AT,
        causation=Causation("test", "http", None, key, "ab" * 32 if key else None, None),
        events=events,
    )


def award(tx: str, amount: int, balance: int, reason: str | None) -> PointsAwarded:
    return PointsAwarded(tx, amount, balance, reason, {"note": reason} if reason else {}, amount)


def test_erasure_gives_the_same_rows_in_one_batch_one_by_one_and_in_a_replay(
    tmp_path: Path, database_url: str
) -> None:
    keys = open_data_keys(f"sqlite:///{tmp_path / 'keys.db'}")
    before = [
        commit(1, 0, ParticipantRegistered("Ann Secret", None, {"mail": "ann@x.org"})),
        commit(2, 0, award("t0", 5, 5, "other's reason"), pid="p2"),
        commit(3, 1, award("t1", 10, 10, "ann's secret reason"), key="k1"),
        commit(4, 2, EventTracked("e1", "login", {"ip": "10.1.2.3"}, AT)),
        commit(5, 3, ParticipantErased()),
    ]
    first = [LogRecord(0, n, encode(seal(c, keys))) for n, c in enumerate(before)]
    live = _store(database_url, keys, "_live")
    live.apply_batch("t", 0, first[:4])  # projected while the key still exists
    keys.destroy("acme", "p1")  # as DELETE does, before ParticipantErased is appended
    after = [
        commit(6, 4, award("t2", 1, 11, "after erasure"), key="k2"),  # a new key
        commit(7, 1, award("t3", 1, 6, "p2 again"), pid="p2"),
    ]
    records = first + [LogRecord(0, 5 + n, encode(seal(c, keys))) for n, c in enumerate(after)]
    live.apply_batch("t", 0, records[4:])
    dumps = [_dump_suffix(live)]
    for n, batches in enumerate(  # replays: the old key is gone, batches cut anywhere
        ([records], [[r] for r in records], [records[:4], records[4:]], [records[:5], records[5:]])
    ):
        replay = _store(database_url, keys, f"_r{n}")
        for batch in batches:
            replay.apply_batch("t", 0, batch)
        dumps.append(_dump_suffix(replay))
    assert all(d == dumps[0] for d in dumps[1:])
    text = repr(dumps[0])
    for secret in ("Ann Secret", "ann@x.org", "ann's secret reason", "10.1.2.3"):
        assert secret not in text, secret
    assert "after erasure" in text and "other's reason" in text and "p2 again" in text
    assert "ab" * 32 in text, "the fingerprint of the key used after the erasure stays"


def _store(database_url: str, keys: Any, suffix: str) -> Any:
    store = participant_store(open_database(database_url), keys=keys, suffix=suffix)
    store.create_table()
    return store


def _dump_suffix(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with store.db.transaction(commit=False) as c:
        for name, table in TABLES.items():
            if table.per_participant:
                c.execute(store.sql(f"SELECT * FROM {{{name}}}"))  # noqa: S608
                out[name] = sorted(rows(c), key=repr)
    return out
