"""Inbound commands in waves: many participants decided at once, appended together, waited once.

A consumed batch is cut into waves (``waves``): wave n holds the n-th command of each
participant, so one wave never holds two commands of one participant. Each command of a wave is
decided like the one-at-a-time path does it (``decide_item``: the same pure deciders, on the
participant's read-model state at its version, with the same idempotency key), every commit of
the wave is appended without waiting for each, and the wave waits once for the projector to pass
them all. A wave starts only after the previous one is projected, so a participant's next
command is decided on a state that already holds its previous one: per-participant order and
the version check are those of the one-at-a-time path.

Why not chain a participant's commits on in-memory state (expected version v, v+1, ...)? If
another writer's commit lands at version v first, the first of the chain conflicts but the second
(decided on a state that assumed the first) would match version v+1 and apply. Waves never
decide on a state the log has not confirmed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas.events import PARTICIPANT, Commit
from schemas.log import LogPosition
from services import metrics
from services.inbound.messages import InboundCommand, Rejected
from services.participants.commands import COMMAND_NAMES, command_input
from services.participants.domain import DomainError, Env, ParticipantState, decide
from services.participants.engine import Catalog
from services.participants.handlers import (
    QUARANTINED,
    CommitQuarantined,
    Context,
    Deps,
    IdempotencyKeyReused,
    build_commit,
    check_same_request,
)
from services.participants.ports import CommitOutcome, EventLog
from services.participants.writes import CommitUncertain, NotYetProjected


@dataclass(frozen=True, slots=True)
class Item:
    """One inbound command of a consumed batch; ``where`` is ``<topic>:<partition>:<offset>``."""

    where: str
    message: InboundCommand

    @property
    def participant(self) -> tuple[str, str]:
        return self.message.tenant, self.message.command.participant_id

    @property
    def key(self) -> str:
        """The idempotency key: the message's own, else ``inbound:<topic>:<partition>:<offset>``."""
        return self.message.idempotency_key or f"inbound:{self.where}"

    @property
    def context(self) -> Context:
        """The causation the one-at-a-time path gives the same message (and the same key)."""
        return Context(
            tenant=self.message.tenant,
            source="inbound",
            request_id=self.where,
            idempotency_key=self.key,
            fingerprint=self.message.fingerprint,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """An item's commit; ``refusal`` is the rule's error when the command was refused.

    A refused command's commit holds no events, only its key, so a redelivery replays the
    refusal instead of deciding again on a newer state (``handlers.record_refusal``).
    """

    item: Item
    commit: Commit
    refusal: str | None = None


def waves(items: Sequence[Item]) -> list[list[Item]]:
    """Wave n holds each participant's n-th item, in the order given (at most one per participant)."""
    seen: dict[tuple[str, str], int] = {}
    found: list[list[Item]] = []
    for item in items:
        n = seen.get(item.participant, 0)
        seen[item.participant] = n + 1
        if n == len(found):
            found.append([])
        found[n].append(item)
    return found


def decide_item(
    item: Item,
    state: ParticipantState | None,
    catalog: Catalog,
    now: datetime,
    new_id: Callable[[], str],
) -> Decision:
    """Decide ``item`` on ``state`` (None: no such participant); pure given ``now`` and ``new_id``."""
    command = item.message.command
    try:
        events = decide(state, command, Env(new_id, now, catalog))
        refusal = None
    except DomainError as exc:
        events, refusal = [], str(exc)
    version = state.version if state is not None else 0
    commit = build_commit(
        new_id(),
        item.context,
        PARTICIPANT,
        command.participant_id,
        COMMAND_NAMES[type(command)],
        version,
        now,
        events,
        command_input(command),
    )
    return Decision(item, commit, refusal)


YIELD_EVERY = 50  # items decided between two yields to the event loop

Fallback = Callable[[Item], Awaitable[None]]  # the one-at-a-time path; raises Rejected


class WaveRunner:
    """Runs a batch's items in waves; returns the items to dead-letter with their reasons.

    ``fallback`` runs one item on the one-at-a-time path (with its retries); an item whose commit
    conflicted with another writer, or was a duplicate, goes there before the next wave starts.
    Infrastructure failures propagate: nothing of the batch is acknowledged, and a redelivery is
    made safe by the items' keys.
    """

    def __init__(self, deps: Deps, fallback: Fallback) -> None:
        self.deps = deps
        self.fallback = fallback

    async def run(self, items: Sequence[Item]) -> list[tuple[Item, Rejected]]:
        failed: list[tuple[Item, Rejected]] = []
        for wave in waves(items):
            failed.extend(await self._wave(wave))
        return failed

    async def _wave(self, wave: list[Item]) -> list[tuple[Item, Rejected]]:
        deps = self.deps
        now = deps.clock()
        catalogs = {t: await deps.reader.get_catalog(t) for t in {i.message.tenant for i in wave}}
        failed: list[tuple[Item, Rejected]] = []
        originals = await self._originals(wave)
        todo: list[Item] = []
        for item in wave:
            try:
                if not self._replayed(item, originals.get(item.where)):
                    todo.append(item)
            except Rejected as rejected:
                failed.append((item, rejected))
        states = await self._states(todo)
        decisions: list[Decision] = []
        for n, item in enumerate(todo, 1):
            if n % YIELD_EVERY == 0:  # deciding is CPU only: let HTTP requests and the
                await asyncio.sleep(0)  # projector in this process have the loop now and then
            state = states.get(item.participant)
            decisions.append(
                decide_item(item, state, catalogs[item.message.tenant], now, deps.new_id)
            )
        outcomes = await self._append_and_wait([d.commit for d in decisions])
        again: list[Item] = []
        for decision, outcome in zip(decisions, outcomes, strict=True):
            if outcome.status == "applied":
                if decision.refusal is not None:
                    failed.append((decision.item, Rejected("rejected", decision.refusal)))
                else:
                    metrics.INBOUND_MESSAGES.labels(decision.item.message.name, "applied").inc()
            elif outcome.status == QUARANTINED:
                reason = str(CommitQuarantined(decision.commit.commit_id))
                failed.append((decision.item, Rejected("quarantined", reason)))
            else:  # conflict (another writer was first) or duplicate (a concurrent redelivery)
                again.append(decision.item)
        failed.extend(r for r in await asyncio.gather(*map(self._again, again)) if r is not None)
        return failed

    async def _originals(self, wave: Sequence[Item]) -> dict[str, CommitOutcome]:
        """The outcome each item's key already has (a redelivery), by ``where``, read set-wise
        per tenant."""
        reader = self.deps.reader
        many = getattr(reader, "get_idempotents", None)
        found: dict[str, CommitOutcome] = {}
        if many is None:  # a reader without set-wise reads: one at a time
            for item in wave:
                original = await reader.get_idempotent(*item.participant, item.key)
                if original is not None:
                    found[item.where] = original
            return found
        for tenant, items in _by_tenant(wave).items():
            answers = await many(tenant, [(i.participant[1], i.key) for i in items])
            for item in items:
                original = answers.get((item.participant[1], item.key))
                if original is not None:
                    found[item.where] = original
        return found

    async def _states(self, items: Sequence[Item]) -> dict[tuple[str, str], ParticipantState]:
        """Each item's participant state (absent: no such participant), read set-wise per tenant."""
        reader = self.deps.reader
        many = getattr(reader, "get_states", None)
        found: dict[tuple[str, str], ParticipantState] = {}
        for tenant, group in _by_tenant(items).items():
            if many is None:
                for item in group:
                    state = await reader.get_state(*item.participant)
                    if state is not None:
                        found[item.participant] = state
                continue
            states = await many(tenant, [i.participant[1] for i in group])
            found.update(((tenant, pid), state) for pid, state in states.items())
        return found

    def _replayed(self, item: Item, original: CommitOutcome | None) -> bool:
        """True if the item's key was used already (a redelivery); Rejected if by another request."""
        if original is None:
            return False
        try:
            check_same_request(original, item.message.name, item.context)
        except IdempotencyKeyReused as exc:
            raise Rejected("rejected", str(exc)) from None
        except CommitQuarantined as exc:
            raise Rejected("quarantined", str(exc)) from None
        metrics.INBOUND_MESSAGES.labels(item.message.name, "applied").inc()
        return True

    async def _again(self, item: Item) -> tuple[Item, Rejected] | None:
        try:
            await self.fallback(item)
        except Rejected as rejected:
            return item, rejected
        metrics.INBOUND_MESSAGES.labels(item.message.name, "applied").inc()
        return None

    async def _append_and_wait(self, commits: list[Commit]) -> list[CommitOutcome]:
        """Append every commit, wait once for the projector to pass the last of each partition."""
        if not commits:
            return []
        deps = self.deps
        positions = await append_all(deps.log, commits)
        by_partition: dict[int, list[int]] = {}
        for position in positions:
            by_partition.setdefault(position.partition, []).append(position.offset)
        waited = [self._projected(p, offsets) for p, offsets in by_partition.items()]
        if not all(await asyncio.gather(*waited)):
            raise NotYetProjected(commits[-1].commit_id)
        many = getattr(deps.reader, "get_outcomes", None)
        if many is not None:
            found = await many([c.commit_id for c in commits])
        else:
            found = {}
            for commit in commits:
                one = await deps.reader.get_outcome(commit.commit_id)
                if one is not None:
                    found[commit.commit_id] = one
        outcomes: list[CommitOutcome] = []
        for commit in commits:
            outcome = found.get(commit.commit_id)
            if outcome is None:  # projected position passed but no verdict: a bug, never silence it
                raise CommitUncertain(commit.commit_id, "projected without an outcome")
            outcomes.append(outcome)
        return outcomes

    async def _projected(self, partition: int, offsets: list[int]) -> bool:
        """Wait until the projector passed every offset; False if it stalls for the write timeout.

        A large wave takes the projector longer than one write's timeout: it fails only when no
        commit of it is projected for that long (each position's wait returns at once when passed).
        """
        for offset in sorted(offsets):
            position = LogPosition(partition, offset)
            if not await self.deps.progress.wait_for(position, self.deps.projection_timeout):
                return False
        return True


def _by_tenant(items: Sequence[Item]) -> dict[str, list[Item]]:
    found: dict[str, list[Item]] = {}
    for item in items:
        found.setdefault(item.message.tenant, []).append(item)
    return found


async def append_all(log: EventLog, commits: Sequence[Commit]) -> list[LogPosition]:
    """Append in order: at once where the log can (``append_many``), else one after another."""
    many = getattr(log, "append_many", None)
    if many is not None:
        return list(await many(commits))
    return [await log.append(commit) for commit in commits]
