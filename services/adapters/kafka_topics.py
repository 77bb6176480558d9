"""Create Kafka topics Gamify owns when they are missing; never change an existing one."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)

logger = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap_servers: str,
    partitions: dict[str, int],
    *,
    replication_factor: int = 1,
    client_id: str = "gamify-admin",
) -> None:
    """Create each topic with its partition count unless it exists (then only warn on a mismatch).

    aiokafka returns CreateTopics errors as codes instead of raising, so they are read here.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, count, replication_factor) for name, count in partitions.items()]
        )
        for topic, code, *rest in response.topic_errors:
            if code == 0:
                logger.info("created topic %s with %d partitions", topic, partitions[topic])
                continue
            error = for_code(code)
            if error is TopicAlreadyExistsError:
                await _check_partitions(admin, topic, partitions[topic])
            elif error in (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
                logger.warning(
                    "not allowed to create topic %s (%s); assuming it exists", topic, error.message
                )
            else:
                message = rest[0] if rest else None
                raise error(f"creating topic {topic}: {message or error.message}")
    finally:
        await admin.close()


async def _check_partitions(admin: AIOKafkaAdminClient, topic: str, wanted: int) -> None:
    # The topic exists, so naming it in a metadata request cannot auto-create it.
    for described in await admin.describe_topics([topic]):
        found = len(described.get("partitions") or ())
        if described.get("error_code") == 0 and found != wanted:
            logger.warning(
                "topic %s has %d partitions, configured %d; keeping the topic as it is",
                topic,
                found,
                wanted,
            )
