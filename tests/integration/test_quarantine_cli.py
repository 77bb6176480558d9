"""`gamify quarantine list|show|retry|ack` on an embedded log, with SQLite and PostgreSQL read models."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from projections import runner
from projections.data_keys import open_data_keys
from projections.db import open_database
from projections.participants.queries import ParticipantQueries
from projections.participants.store import participant_store
from projections.participants.stream import ParticipantStream
from projections.sources.sqlite import SqliteLogSource
from projections.streams import STREAMS
from schemas.codec import encode
from services.adapters.sqlite_event_log import SqliteEventLog
from services.cli import main
from services.config import Settings
from tests.builders import award_commit


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("GAMIFY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GAMIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("GAMIFY_API_KEYS", "t:k")
    return Settings(data_dir=tmp_path, database_url=database_url)


def write_log(settings: Settings) -> None:
    """Offsets 0 good, 1 a commit on a stream this code does not know yet, 2 garbage, 3 good."""
    log = SqliteEventLog(str(settings.log_path))
    later = dataclasses.replace(award_commit("u2", 0, 4, 4, cid="new", key="k"), stream="later")
    values = [
        encode(award_commit("u1", 0, 10, 10, cid="a")),
        encode(later),
        b"garbage",
        encode(award_commit("u1", 1, 1, 11, cid="b")),
    ]
    try:
        for i, value in enumerate(values):
            log.recorder.insert_events([StoredEvent(f"r{i}", 1, "gamify.commit", value)])
    finally:
        log.close()


async def project(settings: Settings) -> None:
    open_data_keys(settings.data_keys_url).close()  # the store a running projector makes
    db = open_database(settings.read_model_url)
    source = SqliteLogSource(str(settings.log_path), settings.participant_events_topic)
    try:
        store = participant_store(db)
        store.create_table()
        until = await source.end_offsets()
        await runner.run(source, store, asyncio.Event(), until=until, poll_timeout=0.01)
    finally:
        source.close()
        db.close()


def test_list_show_retry_and_ack_quarantined_records(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_log(settings)
    asyncio.run(project(settings))

    assert main(["quarantine", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["0:1", "0:2"]
    assert "quarantined" in out[0] and "new" in out[0] and "t/u2" in out[0]

    assert main(["quarantine", "show", "new"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert (shown["position"], shown["kind"], shown["status"]) == ("0:1", "decode", "quarantined")
    assert len(shown["digest"]) == 64 and "later" in shown["error"]

    assert main(["quarantine", "show", "0:9"]) == 2

    monkeypatch.setitem(STREAMS, "later", ParticipantStream)  # the fix: a version that knows it
    assert main(["quarantine", "retry", "--all"]) == 1  # the garbage still fails
    out = capsys.readouterr().out
    assert "0:1: retried: applied" in out and "0:2: still fails (decode" in out
    db = open_database(settings.read_model_url)
    try:
        assert ParticipantQueries(db).participant("t", "u2").balance == 4  # type: ignore[union-attr]
    finally:
        db.close()

    assert main(["quarantine", "ack", "0:2"]) == 0
    assert capsys.readouterr().out.splitlines() == ["0:2: acknowledged"]
    assert main(["quarantine", "list"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["quarantine", "list", "--all", "--json"]) == 0
    entries = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["position"], e["status"], e["verdict"]) for e in entries] == [
        ("0:1", "retried", "applied"),
        ("0:2", "acknowledged", None),
    ]


def test_list_without_a_data_key_store_exits_3_and_creates_none(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    if not settings.data_keys_url.startswith("sqlite:///"):
        pytest.skip("PostgreSQL: the key table is shared by the tests of this database")
    assert main(["quarantine", "list"]) == 3
    assert "no data-key store" in capsys.readouterr().err
    assert not Path(settings.data_keys_url.removeprefix("sqlite:///")).exists()
