"""The inbound processor: consume commands from other services, run them, dead-letter the rest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container, Mapping
from contextlib import suppress
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from projections.sources.kafka_group import remove_predecessors
from services import metrics
from services.inbound.messages import Rejected, parse
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

    Within a batch, each participant's messages run in order while different participants run
    concurrently. A message is applied at most once: its idempotency key (the message's own,
    or ``inbound:<topic>:<partition>:<offset>``) makes a re-delivery after a crash a replay.
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
    ) -> None:
        self.deps = deps
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.client_id = client_id
        self.connection = dict(connection or {})  # TLS/SASL options for every client here
        self.rewards = rewards  # the reward stock, for rewards.claim (the same saga as HTTP)
        self.topics = topics
        self.tenants = tenants
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
                    batch = await self.consumer.getmany(timeout_ms=200, max_records=500)
                    for tp, records in batch.items():
                        await self._process(tp, records)
                        await self.consumer.commit({tp: records[-1].offset + 1})
            finally:
                await self.consumer.stop()
        finally:
            await self.producer.stop()

    async def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        by_key = sorted(records, key=lambda r: r.key or b"")
        chains = [list(chain) for _, chain in groupby(by_key, key=lambda r: r.key or b"")]
        await asyncio.gather(*[self._chain(tp, chain) for chain in chains])

    async def _chain(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        for record in sorted(records, key=lambda r: r.offset):
            await self.handle(record)

    async def handle(self, record: ConsumerRecord) -> None:
        """Run one message, or dead-letter it with the reason; infrastructure errors propagate."""
        try:
            message = parse(record.value, self.tenants, now=self.deps.clock())
            ctx = Context(
                tenant=message.tenant,
                source="inbound",
                request_id=f"{record.topic}:{record.partition}:{record.offset}",
                idempotency_key=message.idempotency_key
                or f"inbound:{record.topic}:{record.partition}:{record.offset}",
                fingerprint=message.fingerprint,
            )
            await self._execute(ctx, message.command)
            metrics.INBOUND_MESSAGES.labels(message.name, "applied").inc()
        except Rejected as rejected:
            await self.dead_letter(record, rejected.kind, rejected.reason)
        except (DomainError, IdempotencyKeyReused) as exc:
            if isinstance(exc, DomainError):
                await record_refusal(self.deps, ctx, message.command)
            await self.dead_letter(record, "rejected", str(exc))
        except CommitQuarantined as exc:
            await self.dead_letter(record, "quarantined", str(exc))

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
