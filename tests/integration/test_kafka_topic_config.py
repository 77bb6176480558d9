"""Topic configuration on a real broker: what Gamify creates, and the start-up refusal.

Runs on the session broker (tansu here, Apache Kafka in a container where Docker exists). tansu
stores the configuration given at creation and answers DescribeConfigs with exactly that (it
reports nothing for a setting it was not given); Apache Kafka reports every setting.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from projections.data_keys import open_data_keys
from services.adapters.kafka_event_log import KafkaEventLog
from services.adapters.kafka_topics import (
    KEEP_FOREVER,
    TopicConfigError,
    TopicPolicy,
    described_configs,
    ensure_topics,
)
from tests.kafka_broker import Broker, free_port
from tests.unit.test_kafka_topics import KEPT

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEVEN_DAYS = "604800000"


@pytest.fixture
async def admin(kafka_broker: Broker) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await client.start()
    yield client
    await client.close()


async def create(admin: AIOKafkaAdminClient, topic: str, configs: dict[str, str]) -> None:
    response = await admin.create_topics([NewTopic(topic, 2, 1, topic_configs=configs)])
    assert [code for _, code, *_ in response.topic_errors] == [0]


async def configs_of(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    answer = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return described_configs(answer, topic)


def new_log(broker: Broker, topic: str, policy: TopicPolicy | None = None) -> KafkaEventLog:
    return KafkaEventLog(
        broker.bootstrap,
        topic,
        partitions=2,
        policy=policy,
        idempotence=broker.idempotence_supported,
    )


async def test_created_topics_keep_everything(
    kafka_broker: Broker, admin: AIOKafkaAdminClient, kafka_topic: str
) -> None:
    log = new_log(kafka_broker, kafka_topic)
    await log.start()
    await log.stop()
    inbound, dead_letters = f"{kafka_topic}.inbound", f"{kafka_topic}.dlq"
    await ensure_topics(
        kafka_broker.bootstrap, {inbound: 2, dead_letters: 2}, history={dead_letters}
    )
    for topic in (kafka_topic, dead_letters):
        configs = await configs_of(admin, topic)
        assert {k: configs.get(k) for k in (*KEEP_FOREVER, "min.insync.replicas")} == {
            **KEEP_FOREVER,
            "min.insync.replicas": "1",
        }
    inbound_configs = await configs_of(admin, inbound)
    assert inbound_configs.get("retention.ms") != "-1"  # the broker's retention applies
    assert inbound_configs.get("min.insync.replicas") == "1"
    (described,) = await admin.describe_topics([kafka_topic])
    assert {len(p["replicas"]) for p in described["partitions"]} == {1}


@pytest.mark.parametrize(
    ("configs", "named"),
    [
        ({**KEPT, "retention.ms": SEVEN_DAYS}, f"retention.ms={SEVEN_DAYS}"),
        ({**KEPT, "cleanup.policy": "compact"}, "cleanup.policy=compact"),
        ({"retention.bytes": "-1", "cleanup.policy": "delete"}, "retention.ms"),
    ],
    ids=["7-day retention", "compacted", "retention left to the broker"],
)
async def test_start_is_refused_on_a_topic_that_loses_events(
    kafka_broker: Broker,
    admin: AIOKafkaAdminClient,
    kafka_topic: str,
    configs: dict[str, str],
    named: str,
) -> None:
    await create(admin, kafka_topic, configs)
    log = new_log(kafka_broker, kafka_topic)
    with pytest.raises(TopicConfigError) as refused:
        await log.start()
    message = str(refused.value)
    assert named in message
    assert "\n" not in message
    assert "GAMIFY_KAFKA_ALLOW_FINITE_RETENTION=true" in message
    assert configs.items() <= (await configs_of(admin, kafka_topic)).items()  # left alone


async def test_the_override_lets_it_start_and_the_topic_is_left_alone(
    kafka_broker: Broker, admin: AIOKafkaAdminClient, kafka_topic: str
) -> None:
    await create(admin, kafka_topic, {**KEPT, "retention.ms": SEVEN_DAYS})
    log = new_log(kafka_broker, kafka_topic, TopicPolicy(allow_finite_retention=True))
    await log.start()
    try:
        from tests.integration.test_kafka_event_log import make_commit

        position = await log.append(make_commit("p-override", 0))
        assert position.offset >= 0
    finally:
        await log.stop()
    assert (await configs_of(admin, kafka_topic))["retention.ms"] == SEVEN_DAYS


# --- every process that uses the log refuses with one line ----------------------------------


def gamify(command: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "services", *command],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stderr.decode()


def process_env(broker: Broker, prefix: str, data_dir: Path) -> dict[str, str]:
    return {
        "GAMIFY_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "GAMIFY_KAFKA_TOPIC_PREFIX": prefix,
        "GAMIFY_KAFKA_PARTITIONS": "2",  # as created, so no partition warning is logged
        "GAMIFY_KAFKA_IDEMPOTENCE": "true" if broker.idempotence_supported else "false",
        "GAMIFY_DATA_DIR": str(data_dir),
        "GAMIFY_API_KEYS": "acme:key-acme",
        "GAMIFY_HTTP_PORT": str(free_port()),
        "GAMIFY_LOG_LEVEL": "WARNING",
    }


@pytest.mark.parametrize("command", ["serve", "api", "project", "inbound", "replay"])
async def test_every_process_refuses_with_one_line(
    kafka_broker: Broker, admin: AIOKafkaAdminClient, tmp_path: Path, command: str
) -> None:
    prefix = f"gamify-test-{uuid.uuid4().hex[:8]}."
    topic = f"{prefix}participant-events"
    await create(admin, topic, {**KEPT, "cleanup.policy": "compact"})
    code, stderr = await asyncio.to_thread(
        gamify, [command], process_env(kafka_broker, prefix, tmp_path)
    )
    assert code == 3, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert f"topic {topic} could lose events: cleanup.policy=compact" in stderr
    assert "Traceback" not in stderr


async def test_inbound_refuses_a_compacted_dead_letter_topic(
    kafka_broker: Broker, admin: AIOKafkaAdminClient, tmp_path: Path
) -> None:
    prefix = f"gamify-test-{uuid.uuid4().hex[:8]}."
    await create(admin, f"{prefix}inbound-dlq", {**KEPT, "cleanup.policy": "compact"})
    code, stderr = await asyncio.to_thread(
        gamify, ["inbound"], process_env(kafka_broker, prefix, tmp_path)
    )
    assert code == 3, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert f"topic {prefix}inbound-dlq could lose events" in stderr


async def test_replay_runs_with_the_override(
    kafka_broker: Broker, admin: AIOKafkaAdminClient, tmp_path: Path
) -> None:
    prefix = f"gamify-test-{uuid.uuid4().hex[:8]}."
    await create(admin, f"{prefix}participant-events", {**KEPT, "retention.ms": SEVEN_DAYS})
    env = process_env(kafka_broker, prefix, tmp_path)
    # The data-key store a running service would have made (replay refuses to run without one).
    open_data_keys(f"sqlite:///{tmp_path / 'keys.db'}").close()
    code, stderr = await asyncio.to_thread(
        gamify, ["replay"], {**env, "GAMIFY_KAFKA_ALLOW_FINITE_RETENTION": "true"}
    )
    assert code == 0, stderr
    assert "could lose events" in stderr  # logged as an error, not fatal


async def test_an_existing_topic_with_less_replication_is_kept_with_a_warning(
    kafka_broker: Broker,
    admin: AIOKafkaAdminClient,
    kafka_topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create(admin, kafka_topic, {**KEPT, "min.insync.replicas": "1"})
    production = TopicPolicy(replication_factor=3, min_insync_replicas=2)
    with caplog.at_level("WARNING", logger="services.adapters.kafka_topics"):
        await ensure_topics(
            kafka_broker.bootstrap, {kafka_topic: 3}, history={kafka_topic}, policy=production
        )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"topic {kafka_topic} has replication factor 1, configured 3" in logged
    assert f"topic {kafka_topic} has min.insync.replicas=1, configured 2" in logged
    assert f"topic {kafka_topic} has 2 partitions, configured 3" in logged
