"""Fixtures for tests against a real Kafka-protocol broker; every test here is `integration`."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests` is not an installed package
    sys.path.insert(0, str(_ROOT))

from tests.kafka_broker import Broker, running_broker  # noqa: E402

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """One broker for the session; fails (never skips) when none can be started."""
    with running_broker() as broker:
        yield broker


@pytest.fixture
def kafka_topic() -> str:
    """A topic name no other test uses."""
    return f"gamify-test-{uuid.uuid4().hex[:12]}"
