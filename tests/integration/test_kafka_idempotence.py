"""The idempotent producer: asked for exactly when GAMIFY_KAFKA_IDEMPOTENCE says, on a real broker.

The tansu test broker has no InitProducerId, so there the idempotent path can only be shown to be
taken (the producer asks for an id and the start fails); on Apache Kafka (testcontainers where
Docker runs, or GAMIFY_TEST_KAFKA_BOOTSTRAP) it runs: the producer gets an id and appends.
"""

from __future__ import annotations

import traceback
import uuid

import pytest

from services.adapters.kafka_event_log import IdempotenceUnsupported, KafkaEventLog
from services.config import Settings
from tests.builders import award_commit
from tests.kafka_broker import Broker


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), ("true", True), ("false", False), ("0", False)]
)
def test_the_setting_defaults_to_an_idempotent_producer(value: str | None, expected: bool) -> None:
    env = {} if value is None else {"GAMIFY_KAFKA_IDEMPOTENCE": value}
    assert Settings.from_env(env).kafka_idempotence is expected


def topic() -> str:
    return f"gamify.test-idem-{uuid.uuid4().hex[:8]}"


async def test_without_idempotence_the_producer_asks_for_no_producer_id(
    kafka_broker: Broker,
) -> None:
    log = KafkaEventLog(kafka_broker.bootstrap, topic(), partitions=1, idempotence=False)
    await log.start()
    try:
        assert log._producer is not None and log._producer._txn_manager is None
        first = await log.append(award_commit("p1", 0, 5, 5, cid="c1"))
        second = await log.append(award_commit("p1", 1, 5, 10, cid="c2"))
    finally:
        await log.stop()
    assert (first.offset, second.offset) == (0, 1)


async def test_with_idempotence_the_producer_asks_the_broker_for_a_producer_id(
    kafka_broker: Broker,
) -> None:
    log = KafkaEventLog(kafka_broker.bootstrap, topic(), partitions=1, idempotence=True)
    if not kafka_broker.idempotence_supported:  # tansu: the request is made and refused,
        with pytest.raises(IdempotenceUnsupported, match="GAMIFY_KAFKA_IDEMPOTENCE=false"):
            await log.start()  # and start-up says which setting fixes it
        return
    await log.start()
    try:
        manager = log._producer._txn_manager  # type: ignore[union-attr]
        assert manager is not None and manager.producer_id >= 0
        first = await log.append(award_commit("p1", 0, 5, 5, cid="c1"))
        second = await log.append(award_commit("p1", 1, 5, 10, cid="c2"))
    finally:
        await log.stop()
    assert (first.offset, second.offset) == (0, 1)


async def test_a_start_that_fails_leaves_no_client_open() -> None:
    """A broker that cannot be reached fails start(), and the producer start() made is stopped
    (else its connections and aiokafka's 'Unclosed AIOKafkaProducer' warning outlive it)."""
    import socket

    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError

    with socket.socket() as free:  # a port with nothing listening
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    log = KafkaEventLog(f"127.0.0.1:{port}", topic(), partitions=1, idempotence=False)
    log.ensure_topic = _no_topic  # type: ignore[method-assign]  # reach the producer's start
    with pytest.raises(KafkaConnectionError) as raised:
        await log.start()
    assert log._producer is None
    made = [
        value
        for frame, _ in traceback.walk_tb(raised.value.__traceback__)
        for value in frame.f_locals.values()
        if isinstance(value, AIOKafkaProducer)
    ]
    assert made and all(producer._closed for producer in made)


async def _no_topic() -> None:
    return None
