"""Use cases of the admin API: create, update and soft-delete definitions on their streams."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from schemas.events import DEFINITION, Event
from services.definitions.domain import (
    DefinitionNotFound,
    DefinitionState,
    decide_create,
    decide_delete,
    decide_update,
)
from services.participants.handlers import Context, Deps, Result, run


class DefinitionReader(Protocol):
    async def by_code(self, tenant: str, kind: str, code: str) -> DefinitionState | None: ...

    async def by_id(self, tenant: str, kind: str, id_: str) -> DefinitionState | None: ...


def _stream(kind: str, code: str) -> str:
    return f"{kind}:{code}"


async def create_definition(
    deps: Deps, reader: DefinitionReader, ctx: Context, kind: str, body: dict[str, Any]
) -> str:
    """Create a definition; returns its new id. DuplicateCode if the code is taken."""
    code = body["code"]
    new_id = deps.new_id()

    async def load() -> tuple[DefinitionState | None, int]:
        state = await reader.by_code(ctx.tenant, kind, code)
        return state, state.version if state else 0

    def decide_on(state: DefinitionState | None, now: datetime) -> list[Event]:
        return decide_create(state, kind, body, new_id)

    await run(deps, ctx, DEFINITION, _stream(kind, code), f"{kind}.create", load, decide_on)
    return new_id


async def change_definition(
    deps: Deps,
    reader: DefinitionReader,
    ctx: Context,
    kind: str,
    id_: str,
    changes: dict[str, Any] | None,
) -> Result:
    """Update (``changes``) or soft-delete (``None``) the definition with this id."""
    found = await reader.by_id(ctx.tenant, kind, id_)
    if found is None:
        raise DefinitionNotFound(kind, id_)
    code = found.code

    async def load() -> tuple[DefinitionState | None, int]:
        state = await reader.by_code(ctx.tenant, kind, code)
        if state is None:
            raise DefinitionNotFound(kind, id_)
        return state, state.version

    def decide_on(state: DefinitionState, now: datetime) -> list[Event]:
        return decide_delete(state) if changes is None else decide_update(state, changes, kind)

    name = f"{kind}.delete" if changes is None else f"{kind}.update"
    return await run(deps, ctx, DEFINITION, _stream(kind, code), name, load, decide_on)
