"""An EventLog that seals each commit's personal fields before the log it wraps appends it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
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

    async def _sealed(self, commit: Commit) -> Commit:
        if has_personal(commit):
            if not self.keys.cached_write_key(commit.tenant, commit.participant_id):
                await asyncio.to_thread(
                    self.keys.key_for_write, commit.tenant, commit.participant_id
                )
            commit = seal(commit, self.keys)
        return commit

    async def append(self, commit: Commit) -> LogPosition:
        return await self.log.append(await self._sealed(commit))  # type: ignore[no-any-return]

    async def append_many(self, commits: Sequence[Commit]) -> list[LogPosition]:
        """Seal each commit, then append them in order (at once where the wrapped log can).

        The keys not cached are fetched (or created) together first, in one worker-thread call.
        """
        many = getattr(self.keys, "keys_for_write", None)
        wanted = [(c.tenant, c.participant_id) for c in commits if has_personal(c)]
        if many is not None and any(not self.keys.cached_write_key(*i) for i in wanted):
            await asyncio.to_thread(many, wanted)
        sealed = [await self._sealed(commit) for commit in commits]
        many = getattr(self.log, "append_many", None)
        if many is not None:
            return list(await many(sealed))
        return [await self.log.append(commit) for commit in sealed]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("append"):  # a way to write that would pass the seal: refuse it
            raise AttributeError(f"SealingEventLog does not pass {name!r} through unsealed")
        return getattr(self.log, name)
