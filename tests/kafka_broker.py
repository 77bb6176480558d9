"""Start a Kafka-protocol broker for tests: an external one, a Kafka container, or tansu."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services.dev_broker import (  # one place finds and starts tansu: gamify dev-broker and tests
    READY_TIMEOUT,
    BrokerStartError,
    TansuBroker,
    free_port,
    start_tansu,
    tansu_binary,
    wait_until_ready,
)

__all__ = [
    "Broker",
    "BrokerStartError",
    "TansuBroker",
    "docker_available",
    "free_port",
    "running_broker",
    "start_tansu",
    "tansu_binary",
    "wait_until_ready",
]

ENV_BOOTSTRAP = "GAMIFY_TEST_KAFKA_BOOTSTRAP"
ENV_IDEMPOTENCE = "GAMIFY_TEST_KAFKA_IDEMPOTENCE"  # for the external broker; default "1"
ENV_KIND = "GAMIFY_TEST_KAFKA_KIND"  # force "testcontainers" or "tansu"


@dataclass(frozen=True, slots=True)
class Broker:
    """A running broker as the tests see it."""

    bootstrap: str
    kind: str  # "external" | "testcontainers" | "tansu"
    idempotence_supported: bool


@contextlib.contextmanager
def running_broker() -> Iterator[Broker]:
    """The external broker if configured, else a Kafka container if Docker works, else tansu."""
    external = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if external:
        idempotence = os.environ.get(ENV_IDEMPOTENCE, "1").strip().lower() not in {"0", "false"}
        wait_until_ready(external, timeout=READY_TIMEOUT)
        yield Broker(external, "external", idempotence)
        return
    kind = os.environ.get(ENV_KIND, "").strip().lower()
    if kind not in {"", "testcontainers", "tansu"}:
        raise BrokerStartError(f"{ENV_KIND}={kind!r}: expected 'testcontainers' or 'tansu'")
    container_error: BaseException | None = None
    if kind == "testcontainers" or (not kind and docker_available()):
        try:
            container = _start_kafka_container()
        except Exception as exc:
            if kind == "testcontainers":
                raise BrokerStartError(f"Kafka container did not start: {exc!r}") from exc
            container_error = exc
        else:
            try:
                yield Broker(container.get_bootstrap_server(), "testcontainers", True)
            finally:
                container.stop()
            return
    try:
        tansu = start_tansu()
    except BrokerStartError as exc:
        if container_error is not None:
            raise BrokerStartError(
                f"{exc} (Kafka container also failed: {container_error!r})"
            ) from exc
        raise
    try:
        yield Broker(tansu.bootstrap, tansu.kind, tansu.idempotence_supported)
    finally:
        tansu.stop()


def docker_available(timeout: float = 5.0) -> bool:
    """True when ``docker info`` answers quickly, i.e. a Docker engine is reachable."""
    try:
        done = subprocess.run(
            ["docker", "info"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _start_kafka_container() -> Any:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # older testcontainers
        from testcontainers.kafka import KafkaContainer
    container = KafkaContainer().with_kraft()
    container.start()
    try:
        wait_until_ready(container.get_bootstrap_server(), timeout=READY_TIMEOUT)
    except BaseException:
        container.stop()
        raise
    return container
