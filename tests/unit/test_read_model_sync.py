"""Read-model SQLite files commit without fsync (synchronous=NORMAL); the embedded log and the
data-key store keep FULL."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.db import open_database
from services.adapters.sqlite_event_log import SqliteEventLog

NORMAL, FULL = 1, 2


def test_read_model_connections_commit_without_fsync(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'read.db'}")
    try:
        with db.transaction(commit=False) as c:
            c.execute("PRAGMA synchronous")
            assert c.fetchone()[0] == NORMAL
            c.execute("PRAGMA journal_mode")
            assert c.fetchone()[0] == "wal"
    finally:
        db.close()


def test_the_embedded_log_still_syncs_every_commit(tmp_path: Path) -> None:
    log = SqliteEventLog(str(tmp_path / "log.db"))
    try:
        with log.recorder.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA synchronous")
            assert c.fetchone()[0] == FULL
    finally:
        log.close()


def test_the_data_key_store_syncs_every_commit(tmp_path: Path) -> None:
    """Keys are not derived from the log: a key, or its destruction, must survive a power cut."""
    from projections.data_keys import open_data_keys

    store = open_data_keys(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        with store.db.transaction(commit=False) as c:
            c.execute("PRAGMA synchronous")
            assert c.fetchone()[0] == FULL
    finally:
        store.close()


def test_derived_batches_keep_one_connection_with_a_bigger_cache(tmp_path: Path) -> None:
    """The projector's batches write through one connection (its page cache stays warm), with
    synchronous=NORMAL and ``DERIVED_PRAGMAS``' cache; one taken meanwhile falls back to the pool."""
    from projections.db import DERIVED_PRAGMAS

    db = open_database(f"sqlite:///{tmp_path / 'read.db'}")
    try:
        seen = []
        for _ in range(2):
            with db.transaction(commit=True, derived=True) as c:
                c.execute("PRAGMA synchronous")
                assert c.fetchone()[0] == NORMAL
                c.execute("PRAGMA cache_size")
                seen.append((id(c.sqlite_cursor.connection), c.fetchone()[0]))
        assert seen[0] == seen[1]
        assert "cache_size = -65536" in DERIVED_PRAGMAS[0] and seen[0][1] == -65536
        with db.transaction(commit=True, derived=True) as outer:
            with db.transaction(commit=False) as other:  # pool connections keep the default
                other.execute("PRAGMA cache_size")
                assert other.fetchone()[0] == -2000
            outer.execute("CREATE TABLE t (x INTEGER)")
        assert db._derived_lock.acquire(blocking=False)  # noqa: SLF001 - released after use
        try:
            with db.transaction(commit=True, derived=True) as c:  # taken: a pool connection
                c.execute("PRAGMA cache_size")
                assert c.fetchone()[0] == -2000
                c.execute("INSERT INTO t VALUES (1)")
        finally:
            db._derived_lock.release()  # noqa: SLF001
        with db.transaction(commit=False) as c:
            c.execute("SELECT x FROM t")
            assert c.fetchall()[0][0] == 1
    finally:
        db.close()
    assert not db._derived  # noqa: SLF001 - closed with the rest


def test_no_derived_transaction_after_close(tmp_path: Path) -> None:
    from eventsourcing.persistence import ConnectionPoolClosedError

    db = open_database(f"sqlite:///{tmp_path / 'read.db'}")
    with db.transaction(commit=True, derived=True) as c:
        c.execute("CREATE TABLE t (x INTEGER)")
    db.close()
    with pytest.raises(ConnectionPoolClosedError), db.transaction(commit=True, derived=True):
        pass
    assert not db._derived  # noqa: SLF001 - none opened again
