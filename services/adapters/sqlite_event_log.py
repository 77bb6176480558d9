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
    commit twice fails instead of writing it twice. Appends are committed (WAL, fsync) before
    returning. Group commit: appends that arrive while a write is in flight are written
    together, in one transaction and one fsync, by the next write (at most ``MAX_GROUP``).
    """

    MAX_GROUP = 500

    def __init__(self, path: str, *, on_append: Callable[[], None] | None = None) -> None:
        self.path = path
        self.recorder = open_log_recorder(path)
        self.on_append = on_append
        self._pending: list[tuple[Commit, asyncio.Future[LogPosition]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, commit: Commit) -> LogPosition:
        """Append ``commit``; appending a commit id that is already there returns its position."""
        written: asyncio.Future[LogPosition] = asyncio.get_running_loop().create_future()
        self._pending.append((commit, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_pending())
        # Shielded: a caller that stops waiting (its write timeout) leaves the group intact;
        # its commit may still be written, which the caller reports as uncertain.
        position = await asyncio.shield(written)
        if self.on_append is not None:
            self.on_append()
        return position

    async def _write_pending(self) -> None:
        while self._pending:
            group = self._pending[: self.MAX_GROUP]
            del self._pending[: len(group)]
            try:
                positions = await asyncio.to_thread(self._append_group, [c for c, _ in group])
            except Exception as exc:
                for _, written in group:
                    if not written.done():
                        written.set_exception(exc)
                continue
            except BaseException:
                for _, written in group:
                    written.cancel()
                raise
            for (_, written), position in zip(group, positions, strict=True):
                if not written.done():
                    written.set_result(position)

    def _append_group(self, commits: list[Commit]) -> list[LogPosition]:
        if len(commits) == 1:
            return [self._append(commits[0])]
        stored = [StoredEvent(c.commit_id, 1, "gamify.commit", encode(c)) for c in commits]
        try:
            ids = self.recorder.insert_events(stored)
        except IntegrityError:  # a commit already on the log: one by one, each as alone
            return [self._append(c) for c in commits]
        if len(ids) != len(commits):
            raise RuntimeError("the SQLite log did not return a notification id per commit")
        return [LogPosition(0, i - 1) for i in ids]

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
