"""The handlers' ParticipantReader port over the participant read-model queries."""

from __future__ import annotations

import asyncio

from projections.definitions.queries import DefinitionQueries, DefinitionRow
from projections.participants.queries import OutcomeRow, ParticipantQueries
from services.definitions.domain import DefinitionState
from services.participants.domain import ParticipantState
from services.participants.engine import Catalog
from services.participants.ports import CommitOutcome


class ReadModelReader:
    """Runs the synchronous queries in worker threads and maps rows to domain types."""

    def __init__(self, queries: ParticipantQueries, definitions: DefinitionQueries) -> None:
        self.queries = queries
        self.definitions = definitions

    async def get_catalog(self, tenant: str) -> Catalog:
        rows = await asyncio.to_thread(self.definitions.active, tenant)
        return Catalog.of((r.kind, r.id, r.code, r.body) for r in rows)

    async def get_state(self, tenant: str, participant_id: str) -> ParticipantState | None:
        row = await asyncio.to_thread(self.queries.participant, tenant, participant_id)
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

    async def get_outcome(self, commit_id: str) -> CommitOutcome | None:
        return _outcome(await asyncio.to_thread(self.queries.outcome, commit_id))

    async def get_idempotent(
        self, tenant: str, participant_id: str, key: str
    ) -> CommitOutcome | None:
        found = await asyncio.to_thread(self.queries.idempotent, tenant, participant_id, key)
        return _outcome(found)


def _outcome(row: OutcomeRow | None) -> CommitOutcome | None:
    if row is None:
        return None
    return CommitOutcome(row.commit_id, row.status, row.command, row.events)


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
