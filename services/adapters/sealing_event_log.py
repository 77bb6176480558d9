"""An EventLog that seals each commit's personal fields before the log it wraps appends it."""

from __future__ import annotations

import asyncio
from typing import Any

from projections.data_keys import DataKeyStore
from schemas.events import Commit
from schemas.log import LogPosition
from schemas.sealing import has_personal, seal


class SealingEventLog:
    """Wraps any EventLog: every commit reaches it with personal values sealed (schemas/sealing.py).

    The one place commits are sealed, in front of both logs (SQLite and Kafka), so the log never
    holds personal data in clear. A commit without personal values passes untouched; a key that
    is not cached is fetched (or created) on a worker thread, never on the event loop. Every
    other attribute is the wrapped log's.
    """

    def __init__(self, log: Any, keys: DataKeyStore) -> None:
        self.log = log
        self.keys = keys

    async def append(self, commit: Commit) -> LogPosition:
        if has_personal(commit):
            if not self.keys.cached_write_key(commit.tenant, commit.participant_id):
                await asyncio.to_thread(
                    self.keys.key_for_write, commit.tenant, commit.participant_id
                )
            commit = seal(commit, self.keys)
        return await self.log.append(commit)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)
