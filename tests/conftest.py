"""Fixtures shared by every test layer: markers by folder, the broker, the read-model database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.db import Database, open_database
from projections.participants.queries import ParticipantQueries
from projections.participants.store import ParticipantStore, participant_store
from tests.kafka_broker import Broker, running_broker
from tests.postgres import PostgresUnavailable, drop_schema, new_schema, postgres_server

TESTS = Path(__file__).resolve().parent
LAYERS = ("integration", "e2e", "system")  # folders whose tests get the marker of that name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).resolve().relative_to(TESTS).parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """One Kafka-protocol broker for the session; fails (never skips) when none can start."""
    with running_broker() as broker:
        yield broker


@pytest.fixture
def kafka_topic() -> str:
    """A topic name no other test uses."""
    return f"gamify-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A reachable PostgreSQL; the test fails (never skips) with the reason when there is none."""
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A database URL pointing at a fresh schema, dropped after the test."""
    schema = new_schema(postgres_url)
    yield f"{postgres_url}?schema={schema}"
    drop_schema(postgres_url, schema)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'read-models.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> ParticipantStore:
    s = participant_store(db)
    s.create_table()
    return s


@pytest.fixture
def queries(db: Database) -> ParticipantQueries:
    return ParticipantQueries(db)
