"""The handlers' ParticipantReader port over the participant read-model queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import Any

from projections.definitions.queries import DefinitionQueries, DefinitionRow
from projections.participants.projector import ParticipantRow
from projections.participants.queries import OutcomeRow, ParticipantQueries
from projections.past import LogReader
from schemas.codec import CodecError, decode, events_json
from schemas.sealing import DataKeys
from services.definitions.domain import DefinitionState
from services.participants.domain import ParticipantState
from services.participants.engine import Catalog
from services.participants.ports import CommitOutcome

CATALOG_TTL = 5.0  # seconds a cached catalog serves reads when no projection was seen


class ReadModelReader:
    """Runs the synchronous queries and maps rows to domain types.

    On SQLite the single-row reads (state, outcome, idempotency key) run inline on the event
    loop (``ParticipantQueries.inline``); the rest, and everything on PostgreSQL, in threads.

    ``positions`` (the projector positions this process knows) lets reads reuse a tenant's
    catalog until anything new is projected, or for at most CATALOG_TTL seconds.

    ``log`` reads an applied commit's events back from the log for an idempotent replay: the
    outcome keeps only its verdict and position (the log is kept forever); ``keys`` (the data
    keys, ``projections.data_keys``) open its sealed personal fields, as the projector does, so
    a replayed answer shows them until the participant is erased.
    """

    def __init__(
        self,
        queries: ParticipantQueries,
        definitions: DefinitionQueries,
        positions: Callable[[], Hashable] | None = None,
        log: LogReader | None = None,
        keys: DataKeys | None = None,
    ) -> None:
        self.queries = queries
        self.definitions = definitions
        self.positions = positions
        self.log = log
        self.keys = keys
        self._catalogs: dict[str, tuple[Hashable, float, Catalog]] = {}

    async def get_catalog(self, tenant: str, *, cached: bool = False) -> Catalog:
        """The tenant's active definitions; decisions always read them fresh (``cached=False``)."""
        seen = self.positions() if self.positions is not None else None
        if cached and seen is not None:
            hit = self._catalogs.get(tenant)
            if hit is not None and hit[0] == seen and time.monotonic() - hit[1] < CATALOG_TTL:
                return hit[2]
        if self.queries.inline:  # SQLite: cheaper on the loop than a thread hop
            rows = self.definitions.active(tenant, inline=True)
        else:
            rows = await asyncio.to_thread(self.definitions.active, tenant)
        catalog = Catalog.of((r.kind, r.id, r.code, r.body) for r in rows)
        if seen is not None:
            self._catalogs[tenant] = (seen, time.monotonic(), catalog)
        return catalog

    async def get_state(self, tenant: str, participant_id: str) -> ParticipantState | None:
        if self.queries.inline:  # SQLite primary-key reads: cheaper than a thread hop
            row = self.queries.participant(tenant, participant_id, inline=True)
        else:
            row = await asyncio.to_thread(self.queries.participant, tenant, participant_id)
        return participant_state(row)

    async def get_outcome(self, commit_id: str) -> CommitOutcome | None:
        if self.queries.inline:
            return _outcome(self.queries.outcome(commit_id, inline=True))
        return _outcome(await asyncio.to_thread(self.queries.outcome, commit_id))

    async def get_idempotent(
        self, tenant: str, participant_id: str, key: str
    ) -> CommitOutcome | None:
        if self.queries.inline:
            found = self.queries.idempotent(tenant, participant_id, key, inline=True)
        else:
            found = await asyncio.to_thread(self.queries.idempotent, tenant, participant_id, key)
        if found is not None and found.events is None:
            found = replace(found, events=await logged_events(self.log, found, self.keys))
        return _outcome(found)

    # Set-wise reads (the inbound waves): one statement per few hundred keys.

    async def get_states(
        self, tenant: str, participant_ids: Sequence[str]
    ) -> dict[str, ParticipantState]:
        """``get_state`` of many participants of one tenant, by id; absent: no such participant."""
        if self.queries.inline:
            found = self.queries.participants(tenant, participant_ids, inline=True)
        else:
            found = await asyncio.to_thread(self.queries.participants, tenant, participant_ids)
        return {pid: participant_state(r) for pid, r in found.items()}  # type: ignore[misc]

    async def get_outcomes(self, commit_ids: Sequence[str]) -> dict[str, CommitOutcome]:
        """``get_outcome`` of many commits, by commit id; absent: no verdict yet."""
        if self.queries.inline:
            found = self.queries.outcomes(commit_ids, inline=True)
        else:
            found = await asyncio.to_thread(self.queries.outcomes, commit_ids)
        return {cid: _outcome(r) for cid, r in found.items()}  # type: ignore[misc]

    async def get_idempotents(
        self, tenant: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], CommitOutcome]:
        """``get_idempotent`` of many (participant id, key) pairs of one tenant, by pair."""
        if self.queries.inline:
            found = self.queries.idempotent_many(tenant, keys, inline=True)
        else:
            found = await asyncio.to_thread(self.queries.idempotent_many, tenant, keys)
        answers: dict[tuple[str, str], CommitOutcome] = {}
        for pair, row in found.items():
            if row.events is None:
                row = replace(row, events=await logged_events(self.log, row, self.keys))
            answers[pair] = _outcome(row)  # type: ignore[assignment]
        return answers


class EventsNotFound(RuntimeError):
    """An applied commit's events could not be read back from the log."""


async def logged_events(
    log: LogReader | None, outcome: OutcomeRow, keys: DataKeys | None = None
) -> list[dict[str, Any]]:
    """The events of ``outcome``'s commit, read from the log at its position, as stored once.

    Decoded (so upcast to the current versions; sealed personal fields opened with ``keys``,
    empty once the participant is erased, or without keys) and encoded as the answer shows them.
    Raises EventsNotFound when there is no log reader, or the position does not hold the commit.
    """
    if log is None or outcome.position is None:
        raise EventsNotFound(f"commit {outcome.commit_id}: no log to read its events from")
    partition, offset = outcome.position
    for record in await log.read_at(partition, [offset]):
        try:
            commit = await asyncio.to_thread(decode, record.value, keys)  # keys may do I/O
        except CodecError as exc:
            raise EventsNotFound(f"commit {outcome.commit_id}: {exc}") from exc
        if commit.commit_id == outcome.commit_id:
            return events_json(commit.events)
    raise EventsNotFound(f"commit {outcome.commit_id}: not at {partition}/{offset} on the log")


def _outcome(row: OutcomeRow | None) -> CommitOutcome | None:
    if row is None:
        return None
    events = row.events or []  # get_outcome: the waiting handler has its commit's events
    return CommitOutcome(row.commit_id, row.status, row.command, events, row.fingerprint)


class DefinitionStateReader:
    """The admin handlers' DefinitionReader over the definitions read model."""

    def __init__(self, queries: DefinitionQueries) -> None:
        self.queries = queries

    async def by_code(self, tenant: str, kind: str, code: str) -> DefinitionState | None:
        return _definition(await asyncio.to_thread(self.queries.by_code, tenant, kind, code))

    async def by_id(self, tenant: str, kind: str, id_: str) -> DefinitionState | None:
        return _definition(await asyncio.to_thread(self.queries.by_id, tenant, kind, id_))


def _definition(row: DefinitionRow | None) -> DefinitionState | None:
    if row is None:
        return None
    return DefinitionState(row.version, row.id, row.code, row.body, row.is_active)


def participant_state(row: ParticipantRow | None) -> ParticipantState | None:
    """What a decision knows of a participant's read-model row (None: no such participant)."""
    if row is None:
        return None
    return ParticipantState(
        version=row.version,
        display_name=row.display_name,
        avatar_url=row.avatar_url,
        attributes=row.attributes,
        balance=row.balance,
        total_earned=row.total_earned,
        total_spent=row.total_spent,
        sections=row.sections,
    )
