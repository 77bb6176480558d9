"""`gamify quarantine retry` finds quarantined records again on a Kafka topic, by position."""

from __future__ import annotations

from projections.sources.kafka import KafkaEndOffsets, KafkaLogSource
from schemas.codec import decode
from services.adapters.kafka_event_log import KafkaEventLog
from services.quarantine_cli import read_at
from tests.builders import award_commit
from tests.kafka_broker import Broker


async def test_read_at_returns_the_records_at_the_given_positions_of_several_partitions(
    kafka_broker: Broker, kafka_topic: str
) -> None:
    log = KafkaEventLog(
        kafka_broker.bootstrap,
        kafka_topic,
        partitions=3,
        idempotence=kafka_broker.idempotence_supported,
    )
    await log.start()
    try:
        positions = {}
        for n in range(30):
            commit = award_commit(f"p{n % 7}", n, 1, n + 1, cid=f"c{n}")
            positions[commit.commit_id] = await log.append(commit)
    finally:
        await log.stop()
    wanted = {(positions[c].partition, positions[c].offset) for c in ("c3", "c17", "c29")}
    probe = KafkaEndOffsets(kafka_broker.bootstrap, kafka_topic)
    try:
        source = KafkaLogSource(kafka_broker.bootstrap, kafka_topic, group_id=None)
        found = await read_at(source, probe, wanted, timeout=20)
    finally:
        await probe.stop()
    assert set(found) == wanted
    assert {decode(r.value).commit_id for r in found.values()} == {"c3", "c17", "c29"}
