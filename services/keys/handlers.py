"""Use cases of the API-key admin endpoints: issue a key (shown once), revoke one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from schemas.events import API_KEY, Event
from services.keys.domain import (
    KEY_PREFIX,
    SHOWN_PREFIX_LENGTH,
    ApiKeyNotFound,
    ApiKeyState,
    NewKey,
    decide_issue,
    decide_revoke,
    key_digest,
)
from services.participants.handlers import Context, Deps, run


class ApiKeyReader(Protocol):
    async def by_id(self, tenant: str, id_: str) -> ApiKeyState | None: ...


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """The new key's id and the key itself: shown once, never stored."""

    id: str
    key: str


async def issue_api_key(
    deps: Deps,
    reader: ApiKeyReader,
    ctx: Context,
    name: str,
    scope: str,
    rate_limit: int | None,
) -> IssuedKey:
    """Make a random key for ``ctx.tenant`` and record only its digest on its own stream."""
    key = KEY_PREFIX + secrets.token_hex(16)
    new = NewKey(deps.new_id(), key_digest(key), key[:SHOWN_PREFIX_LENGTH], name, scope, rate_limit)

    async def load() -> tuple[ApiKeyState | None, int]:
        state = await reader.by_id(ctx.tenant, new.id)
        return state, state.version if state else 0

    def decide_on(state: ApiKeyState | None, now: datetime) -> list[Event]:
        return decide_issue(state, new)

    await run(deps, ctx, API_KEY, new.id, "api_key.issue", load, decide_on)
    return IssuedKey(new.id, key)


async def revoke_api_key(deps: Deps, reader: ApiKeyReader, ctx: Context, id_: str) -> None:
    """Revoke the tenant's key ``id_``; ApiKeyNotFound when it has none with that id."""

    async def load() -> tuple[ApiKeyState, int]:
        state = await reader.by_id(ctx.tenant, id_)
        if state is None:
            raise ApiKeyNotFound(id_)
        return state, state.version

    def decide_on(state: ApiKeyState, now: datetime) -> list[Event]:
        return decide_revoke(state)

    await run(deps, ctx, API_KEY, id_, "api_key.revoke", load, decide_on)
