"""Erase a participant's personal data: destroy its data key, then record ParticipantErased."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from schemas.events import PARTICIPANT, ParticipantErased
from services.participants.domain import ParticipantNotFound
from services.participants.handlers import Context, Deps, run

COMMAND = "participants.erase"


class DataKeyShredder(Protocol):
    """The data-key store's erasing side (projections.data_keys.DataKeyStore)."""

    def destroy(self, tenant: str, participant_id: str) -> bool: ...


async def erase_participant(
    deps: Deps, keys: DataKeyShredder, ctx: Context, participant_id: str
) -> None:
    """Crypto-shred the participant's personal data everywhere it exists (docs/erasure.md).

    The key is destroyed first, so once this returns every personal field sealed with it, on
    the log and in every replay, reads as empty, even if the commit below never lands (a retry
    appends it). The ParticipantErased commit then anonymises the read models. Raises
    ParticipantNotFound (404) when the participant has never existed; erasing an erased
    participant again is allowed (it destroys any key created since and anonymises again).
    """
    tenant = ctx.tenant
    if await deps.reader.get_state(tenant, participant_id) is None:
        raise ParticipantNotFound(participant_id)
    await asyncio.to_thread(keys.destroy, tenant, participant_id)

    async def load() -> tuple[Any, int]:
        state = await deps.reader.get_state(tenant, participant_id)
        return state, state.version if state else 0

    await run(
        deps,
        ctx,
        PARTICIPANT,
        participant_id,
        COMMAND,
        load,
        lambda state, now: [ParticipantErased()],
    )
