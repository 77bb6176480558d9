"""The command use case: read state, decide, append one commit, wait for its projection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import services.participants.features  # noqa: F401 - registers the engine's deciders
from schemas.codec import events_json
from schemas.events import PARTICIPANT, Causation, Commit, Event
from services.participants.commands import (
    COMMAND_NAMES,
    Command,
    RegisterParticipant,
    UpdateParticipant,
    command_input,
)
from services.participants.domain import Env, ParticipantState, decide
from services.participants.engine import Catalog
from services.participants.locks import KeyedLocks
from services.participants.ports import (
    CommitOutcome,
    EventLog,
    ParticipantReader,
    ProjectionProgress,
)
from services.participants.writes import (
    CommitUncertain,
    NotYetProjected,
    WriteScope,
    write_budget,
)

logger = logging.getLogger(__name__)

QUARANTINED = "quarantined"  # the projector's verdict on a commit it could not apply


class ConcurrencyConflict(Exception):
    """Other writers kept changing the participant; every attempt was rejected."""

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"The participant was changed concurrently; gave up after {attempts} attempts. Retry."
        )


class CommitQuarantined(Exception):
    """The commit is on the log but the projector could not apply it and set it aside.

    The write did not take effect. Deciding again would append the same failing commit, so a
    retry with the same Idempotency-Key answers this again until an operator repairs the record
    (``gamify quarantine retry`` or ``gamify replay``), and then the write's own result.
    """

    def __init__(self, commit_id: str) -> None:
        self.commit_id = commit_id
        super().__init__(
            f"The write was recorded (commit {commit_id}) but could not be applied and was set "
            "aside for an operator; it has not taken effect. Retrying the same request with the "
            "same Idempotency-Key returns this answer until the record is repaired."
        )


class IdempotencyKeyReused(Exception):
    """The key was first used for a different command."""

    def __init__(self, key: str, command: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a {command} request.")


class IdempotencyKeyMismatch(IdempotencyKeyReused):
    """The key was first used with a different request (body): 422, as the IETF draft says.

    draft-ietf-httpapi-idempotency-key-header: "If there is an attempt to reuse an idempotency
    key with a different request payload, the resource server SHOULD reply with 422".
    """

    def __init__(self, key: str) -> None:
        Exception.__init__(
            self,
            f"Idempotency-Key {key!r} was already used for a request with a different body; "
            "a retry must repeat the original request exactly, a new request needs a new key.",
        )


@dataclass(frozen=True, slots=True)
class Context:
    """Who asks, and the causation data every commit carries.

    ``fingerprint`` is the request's ``schemas.codec.fingerprint`` (with a key only); a key
    recorded with another fingerprint raises IdempotencyKeyMismatch instead of replaying.
    """

    tenant: str
    source: str = "http"
    request_id: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """The events the command's commit carried (empty when nothing changed)."""

    events: list[dict[str, Any]]
    commit_id: str | None = None
    replayed: bool = False

    def event(self, type_: str) -> dict[str, Any] | None:
        return next((e["data"] for e in self.events if e["type"] == type_), None)


@dataclass(slots=True)
class Deps:
    """Everything a handler talks to; built by a composition root."""

    log: EventLog
    reader: ParticipantReader
    progress: ProjectionProgress
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    max_attempts: int = 5
    projection_timeout: float = 10.0  # the write timeout: a write's whole budget, in seconds


async def execute(deps: Deps, ctx: Context, command: Command) -> Result:
    """Run a participant ``command`` for ``ctx.tenant`` under the consistency model of DESIGN.md."""
    pid = command.participant_id

    async def load() -> tuple[ParticipantState | None, int]:
        state = await deps.reader.get_state(ctx.tenant, pid)
        return state, state.version if state else 0

    async with write_budget(deps.projection_timeout):
        profile_only = isinstance(command, RegisterParticipant | UpdateParticipant)
        catalog = Catalog() if profile_only else await deps.reader.get_catalog(ctx.tenant)

        def decide_on(state: ParticipantState | None, now: datetime) -> list[Event]:
            return decide(state, command, Env(deps.new_id, now, catalog))

        name = COMMAND_NAMES[type(command)]
        return await run(
            deps, ctx, PARTICIPANT, pid, name, load, decide_on, input_=command_input(command)
        )


async def record_refusal(deps: Deps, ctx: Context, command: Command) -> None:
    """Remember that a keyed command was refused, so a redelivery replays the refusal.

    Used by the inbound processor: a dead-lettered message must not apply when the same
    message is delivered again after the participant's state changed.
    """
    if ctx.idempotency_key is None:
        return

    async def load() -> tuple[ParticipantState | None, int]:
        state = await deps.reader.get_state(ctx.tenant, command.participant_id)
        return state, state.version if state else 0

    await run(
        deps,
        ctx,
        PARTICIPANT,
        command.participant_id,
        COMMAND_NAMES[type(command)],
        load,
        lambda state, now: [],
        input_=command_input(command),
    )


async def run(
    deps: Deps,
    ctx: Context,
    stream: str,
    stream_id: str,
    name: str,
    load: Callable[[], Awaitable[tuple[Any, int]]],
    decide_on: Callable[[Any, datetime], list[Event]],
    *,
    input_: dict[str, Any] | None = None,
) -> Result:
    """Decide on a stream's current state and append one commit; retry on conflicts.

    ``load`` reads the state and its version; ``decide_on(state, now)`` is the pure decision;
    ``input_`` is the command's input the commit's causation keeps (``Causation.input``).
    Commands on one stream are serialized in this process, so conflicts only come from others.
    The whole call, lock wait and retries included, is bounded by the write timeout
    (:func:`write_budget`).
    """
    async with write_budget(deps.projection_timeout) as scope:
        return await _run(deps, ctx, stream, stream_id, name, load, decide_on, scope, input_)


async def _run(
    deps: Deps,
    ctx: Context,
    stream: str,
    stream_id: str,
    name: str,
    load: Callable[[], Awaitable[tuple[Any, int]]],
    decide_on: Callable[[Any, datetime], list[Event]],
    scope: WriteScope,
    input_: dict[str, Any] | None,
) -> Result:
    async with deps.locks.hold((ctx.tenant, stream, stream_id)):
        for _ in range(deps.max_attempts):
            if ctx.idempotency_key is not None:
                original = await deps.reader.get_idempotent(
                    ctx.tenant, stream_id, ctx.idempotency_key
                )
                if original is not None:
                    return _replay(original, name, ctx)
            state, version = await load()
            now = deps.clock()
            events = decide_on(state, now)
            if not events and ctx.idempotency_key is None:
                return Result(events=[])
            # A keyed command that changes nothing still leaves a commit (with no events): its
            # key then maps to "nothing happened", so a later retry or redelivery replays that
            # instead of deciding again on newer state.
            commit = build_commit(
                deps.new_id(), ctx, stream, stream_id, name, version, now, events, input_
            )
            outcome = await _append_and_wait(deps, commit, scope)
            if outcome.status == "applied":  # the outcome holds the verdict, the commit its events
                return Result(events=events_json(commit.events), commit_id=commit.commit_id)
            if outcome.status == QUARANTINED:
                raise CommitQuarantined(commit.commit_id)
            if outcome.status == "duplicate" and ctx.idempotency_key is not None:
                original = await deps.reader.get_idempotent(
                    ctx.tenant, stream_id, ctx.idempotency_key
                )
                if original is not None:
                    return _replay(original, name, ctx)
            logger.info(
                "commit %s for %s/%s/%s: %s",
                commit.commit_id,
                ctx.tenant,
                stream,
                stream_id,
                outcome.status,
            )
        raise ConcurrencyConflict(deps.max_attempts)


def build_commit(
    commit_id: str,
    ctx: Context,
    stream: str,
    stream_id: str,
    name: str,
    version: int,
    now: datetime,
    events: list[Event],
    input_: dict[str, Any] | None,
) -> Commit:
    """The commit of command ``name`` decided on ``stream_id`` at ``version``, with its causation.

    The one place a command's commit is built (this module's ``run`` and the inbound batches).
    """
    return Commit(
        commit_id=commit_id,
        tenant=ctx.tenant,
        participant_id=stream_id,
        expected_version=version,
        recorded_at=iso(now),
        causation=Causation(
            name,
            ctx.source,
            ctx.request_id,
            ctx.idempotency_key,
            ctx.fingerprint if ctx.idempotency_key is not None else None,
            input_,
        ),
        events=tuple(events),
        stream=stream,
    )


async def _append_and_wait(deps: Deps, commit: Commit, scope: WriteScope) -> CommitOutcome:
    """Append, wait for the verdict; from the append on, every failure is CommitUncertain."""
    scope.appended = True
    try:
        position = await deps.log.append(commit)
        assert scope.deadline is not None
        remaining = scope.deadline - asyncio.get_running_loop().time()
        if not await deps.progress.wait_for(position, max(0.0, remaining)):
            raise NotYetProjected(commit.commit_id)
        outcome = await deps.reader.get_outcome(commit.commit_id)
    except CommitUncertain:
        raise
    except Exception as exc:
        raise CommitUncertain(commit.commit_id, f"{type(exc).__name__}: {exc}") from exc
    if outcome is None:  # projected position passed but no verdict: a bug, never silence it
        raise CommitUncertain(commit.commit_id, "projected without an outcome")
    return outcome


def _replay(original: CommitOutcome, name: str, ctx: Context) -> Result:
    check_same_request(original, name, ctx)
    return Result(events=original.events, commit_id=original.commit_id, replayed=True)


def check_same_request(original: CommitOutcome, name: str, ctx: Context) -> None:
    """Raise unless ``ctx`` repeats the request that first used its key (command and fingerprint).

    A key recorded without a fingerprint (older commits) is taken as the same request.
    """
    key = ctx.idempotency_key or ""
    if original.command != name:
        raise IdempotencyKeyReused(key, original.command)
    if original.fingerprint and ctx.fingerprint and original.fingerprint != ctx.fingerprint:
        raise IdempotencyKeyMismatch(key)
    if original.status == QUARANTINED:
        raise CommitQuarantined(original.commit_id)


def iso(moment: datetime) -> str:
    """The API's timestamp format: ISO-8601 UTC to the second, with Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
