"""Fixtures shared by every test layer: the read-model database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.db import Database, open_database
from projections.participants.queries import ParticipantQueries
from projections.participants.store import ParticipantStore, participant_store
from tests.postgres import PostgresUnavailable, drop_schema, new_schema, postgres_server


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
