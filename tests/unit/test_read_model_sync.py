"""Read-model SQLite files commit without fsync (synchronous=NORMAL); the embedded log and the
data-key store keep FULL."""

from __future__ import annotations

from pathlib import Path

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
