"""The embedded participant-events log: a durable, ordered log in one SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from schemas.codec import encode
from schemas.events import Commit
from schemas.log import LogPosition

LOG_TABLE = "participant_events"


def open_log_recorder(path: str) -> SQLiteApplicationRecorder:
    """The eventsourcing recorder over the log file; notification id = offset + 1."""
    recorder = SQLiteApplicationRecorder(
        SQLiteDatastore(path, originator_id_type="text", lock_timeout=30),
        events_table_name=LOG_TABLE,
    )
    recorder.create_table()
    return recorder


class SqliteEventLog:
    """EventLog on the eventsourcing SQLite application recorder: one partition, offsets from 0.

    Each commit is one stored event whose originator id is the commit id, so appending the same
    commit twice fails instead of writing it twice. Appends are committed (WAL) before returning.
    """

    def __init__(self, path: str, *, on_append: Callable[[], None] | None = None) -> None:
        self.path = path
        self.recorder = open_log_recorder(path)
        self.on_append = on_append

    async def append(self, commit: Commit) -> LogPosition:
        """Append ``commit``; appending a commit id that is already there returns its position."""
        position = await asyncio.to_thread(self._append, commit)
        if self.on_append is not None:
            self.on_append()
        return position

    def _append(self, commit: Commit) -> LogPosition:
        stored = StoredEvent(commit.commit_id, 1, "gamify.commit", encode(commit))
        try:
            ids = self.recorder.insert_events([stored])
        except IntegrityError:
            return LogPosition(0, self._offset_of(commit.commit_id))
        if not ids:
            raise RuntimeError("the SQLite log did not return a notification id")
        return LogPosition(0, ids[-1] - 1)

    def _offset_of(self, commit_id: str) -> int:
        with self.recorder.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid FROM {LOG_TABLE} WHERE originator_id = ?", (commit_id,))  # noqa: S608
            return int(c.fetchone()[0]) - 1

    def close(self) -> None:
        self.recorder.datastore.close()
