"""The inbound processor: consume commands from other services, run them, dead-letter the rest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from projections.sources.kafka_group import remove_predecessors
from services import metrics
from services.inbound.batch import YIELD_EVERY, Item, WaveRunner
from services.inbound.messages import InboundBatch, InboundCommand, Rejected, parse
from services.participants.commands import ClaimReward
from services.participants.domain import DomainError
from services.participants.handlers import (
    CommitQuarantined,
    ConcurrencyConflict,
    Context,
    Deps,
    IdempotencyKeyReused,
    execute,
    record_refusal,
)
from services.rewards.handlers import RefusedEarlier, claim_reward
from services.rewards.ports import StockReader

logger = logging.getLogger(__name__)

HEADER_PREFIX = "gamify-dlq-"


@dataclass(frozen=True, slots=True)
class InboundTopics:
    inbound: str
    dead_letters: str


class InboundProcessor:
    """Consumer group over the inbound topic; one batch at a time, offsets committed after it.

    Within a batch (up to ``max_records`` records), a partition's commands are decided in waves
    (services.inbound.batch): each participant's messages in order, many participants at once,
    one wait for the projector per wave; partitions run concurrently. A message is applied at
    most once: its idempotency key (the message's own, or
    ``inbound:<topic>:<partition>:<offset>``) makes a re-delivery after a crash a replay.
    """

    def __init__(
        self,
        deps: Deps,
        bootstrap_servers: str,
        topics: InboundTopics,
        tenants: Container[str],
        *,
        group_id: str,
        session_timeout_ms: int = 10_000,
        rewards: StockReader | None = None,
        connection: Mapping[str, Any] | None = None,
        client_id: str = "gamify-inbound",
        max_records: int = 2_000,
    ) -> None:
        self.deps = deps
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.client_id = client_id
        self.connection = dict(connection or {})  # TLS/SASL options for every client here
        self.rewards = rewards  # the reward stock, for rewards.claim (the same saga as HTTP)
        self.topics = topics
        self.tenants = tenants
        self.max_records = max_records
        self.waves = WaveRunner(deps, self._fallback)
        self.consumer = AIOKafkaConsumer(
            topics.inbound,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 3),
            fetch_max_wait_ms=20,
            **(connection or {}),
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            client_id="gamify-inbound-dlq",
            **(connection or {}),
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.producer.start()
        try:
            # A crash of this process left its member in the group: remove it (kafka_group).
            await remove_predecessors(
                self.bootstrap_servers, self.group_id, self.client_id, **self.connection
            )
            await self.consumer.start()
            try:
                while not stop.is_set():
                    batch = await self.consumer.getmany(
                        timeout_ms=200, max_records=self.max_records
                    )
                    if not batch:
                        continue
                    await asyncio.gather(*[self._process(rs) for rs in batch.values()])
                    # Every outcome of the batch is durable (commits projected, dead letters
                    # acknowledged): only now may the group move past it.
                    await self.consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
            finally:
                await self.consumer.stop()
        finally:
            await self.producer.stop()

    async def _process(self, records: list[ConsumerRecord]) -> None:
        """One partition's records in offset order: runs of single commands go in waves
        (services.inbound.batch); an award batch or a reward claim runs on its own between them."""
        run: list[tuple[ConsumerRecord, InboundCommand | Rejected]] = []
        for n, record in enumerate(records, 1):
            if n % YIELD_EVERY == 0:  # parsing is CPU only: let the rest of the process run
                await asyncio.sleep(0)
            try:
                message = parse(record.value, self.tenants, now=self.deps.clock())
            except Rejected as rejected:
                run.append((record, rejected))
                continue
            if isinstance(message, InboundCommand) and not self._saga(message):
                run.append((record, message))
                continue
            await self._waves(run)
            run = []
            await self._handle(record, message)
        await self._waves(run)

    def _saga(self, message: InboundCommand) -> bool:
        return isinstance(message.command, ClaimReward) and self.rewards is not None

    async def _waves(self, run: list[tuple[ConsumerRecord, InboundCommand | Rejected]]) -> None:
        """Decide a run's commands in waves, then dead-letter what failed, in offset order."""
        records = {_where(r): r for r, _ in run}
        items = [Item(_where(r), m) for r, m in run if isinstance(m, InboundCommand)]
        failed = {item.where: rejected for item, rejected in await self.waves.run(items)}
        failed.update((_where(r), m) for r, m in run if isinstance(m, Rejected))
        for where in sorted(failed, key=lambda w: records[w].offset):
            await self.dead_letter(records[where], failed[where].kind, failed[where].reason)

    async def _fallback(self, item: Item) -> None:
        await self._run_at(item.where, item.message, "")

    async def handle(self, record: ConsumerRecord) -> None:
        """Run one message, or dead-letter it with the reason; infrastructure errors propagate."""
        try:
            message = parse(record.value, self.tenants, now=self.deps.clock())
        except Rejected as rejected:
            await self.dead_letter(record, rejected.kind, rejected.reason)
            return
        await self._handle(record, message)

    async def _handle(self, record: ConsumerRecord, message: InboundCommand | InboundBatch) -> None:
        try:
            if isinstance(message, InboundBatch):
                await self._batch(record, message)
                return
            await self._run(record, message, "")
            metrics.INBOUND_MESSAGES.labels(message.name, "applied").inc()
        except Rejected as rejected:
            await self.dead_letter(record, rejected.kind, rejected.reason)

    async def _run(self, record: ConsumerRecord, message: InboundCommand, suffix: str) -> None:
        await self._run_at(_where(record), message, suffix)

    async def _run_at(self, where: str, message: InboundCommand, suffix: str) -> None:
        """Run one command; a refusal is raised as Rejected (after recording it for its key).

        ``suffix`` (``:<index>`` for a batch item) makes the record-derived key of each item
        its own, so a redelivered batch replays every item once.
        """
        ctx = Context(
            tenant=message.tenant,
            source="inbound",
            request_id=where,
            idempotency_key=message.idempotency_key or f"inbound:{where}{suffix}",
            fingerprint=message.fingerprint,
        )
        try:
            await self._execute(ctx, message.command)
        except (DomainError, IdempotencyKeyReused) as exc:
            if isinstance(exc, DomainError):
                await record_refusal(self.deps, ctx, message.command)
            raise Rejected("rejected", str(exc)) from None
        except CommitQuarantined as exc:
            raise Rejected("quarantined", str(exc)) from None

    async def _batch(self, record: ConsumerRecord, batch: InboundBatch) -> None:
        """Run every item on its own (one participant's items in order); dead-letter the message
        once, listing the items that failed, if any did: the others stay applied, and a
        redelivery replays them (their keys) instead of applying them again."""
        failed: dict[int, Rejected] = {}

        async def chain(indexes: list[int]) -> None:
            for index in indexes:
                item = batch.items[index]
                try:
                    if isinstance(item, Rejected):
                        raise item
                    await self._run(record, item, f":{index}")
                except Rejected as rejected:
                    failed[index] = rejected

        by_participant: dict[str, list[int]] = {}
        for index, item in enumerate(batch.items):
            pid = item.command.participant_id if isinstance(item, InboundCommand) else ""
            by_participant.setdefault(pid, []).append(index)
        await asyncio.gather(*[chain(indexes) for indexes in by_participant.values()])
        if not failed:
            metrics.INBOUND_MESSAGES.labels(batch.name, "applied").inc()
            return
        first = failed[min(failed)]
        reasons = "; ".join(f"item {i}: {failed[i].reason}" for i in sorted(failed))
        applied = len(batch.items) - len(failed)
        summary = f"{len(failed)} of {len(batch.items)} items failed ({applied} applied): {reasons}"
        await self.dead_letter(record, first.kind, summary)

    async def _execute(self, ctx: Context, command: object) -> None:
        for attempt in range(3):
            try:
                if isinstance(command, ClaimReward) and self.rewards is not None:
                    with suppress(RefusedEarlier):  # a redelivery of a dead-lettered claim
                        await claim_reward(self.deps, self.rewards, ctx, command)
                else:
                    await execute(self.deps, ctx, command)  # type: ignore[arg-type]
                return
            except ConcurrencyConflict:
                if attempt == 2:
                    raise Rejected("conflict", "kept conflicting with concurrent writes") from None

    async def dead_letter(self, record: ConsumerRecord, kind: str, reason: str) -> None:
        """Copy the original bytes to the dead-letter topic with the reason and the source."""
        headers = [
            (f"{HEADER_PREFIX}reason", reason.encode()),
            (f"{HEADER_PREFIX}error-type", kind.encode()),
            (f"{HEADER_PREFIX}source-topic", record.topic.encode()),
            (f"{HEADER_PREFIX}source-partition", str(record.partition).encode()),
            (f"{HEADER_PREFIX}source-offset", str(record.offset).encode()),
        ]
        await self.producer.send_and_wait(
            self.topics.dead_letters, value=record.value, key=record.key, headers=headers
        )
        metrics.DEAD_LETTERS.labels(kind).inc()
        logger.warning(
            "dead-lettered %s/%s/%s (%s): %s",
            record.topic,
            record.partition,
            record.offset,
            kind,
            reason,
        )


def _where(record: ConsumerRecord) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"
