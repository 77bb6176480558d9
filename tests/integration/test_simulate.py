"""`gamify simulate` over a real embedded log: differences worked out by hand, old records.

The history (rule ``play`` pays 10; tiers silver at 50, gold at 100 lifetime points):

day 1  alice: play x3 (+30), award 25 -> 55 silver     bob: play x2 (+20) -> 20
day 2  alice: play x2 (+20) -> 75                      bob: play x3 (+30) -> 50 silver, deduct 15 -> 35
day 3  alice: play (+10) -> 85

What if ``play`` paid 20 from day 2 on:

day 2  alice: +40 -> 95 (still silver)                 bob: +60 -> 80 silver, deduct 15 -> 65
day 3  alice: +20 -> 115: gold

so points awarded +50 on day 2 and +10 on day 3, the liability +50 at the end of day 2 and
+60 at the end of day 3, and alice (only) ends in gold instead of silver.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from projections import runner
from projections.data_keys import open_data_keys
from projections.db import open_database
from projections.definitions.queries import DefinitionQueries
from projections.participants.queries import ParticipantQueries
from projections.participants.store import participant_store
from projections.progress import Progress
from projections.sources.sqlite import SqliteLogSource
from schemas.codec import decode, encode
from schemas.events import Causation, Commit, EventTracked, PointsAwarded
from services.adapters.read_model import DefinitionStateReader, ReadModelReader
from services.adapters.sealing_event_log import SealingEventLog
from services.adapters.sqlite_event_log import SqliteEventLog
from services.cli import main
from services.definitions.handlers import create_definition
from services.participants.commands import AwardPoints, DeductPoints, TrackEvent
from services.participants.handlers import Context, Deps, execute
from services.simulate_cli import read_all, render, simulate
from services.simulation import DefinitionsFileError, load_changes, recorded_input

TOPIC = "gamify.participant-events"
NOW = datetime(2026, 3, 10, tzinfo=UTC)
DOUBLE = {"rules": [{"code": "play", "name": "Play", "event_name": "play", "points": 20}]}


def at(day: int, second: int) -> datetime:
    return datetime(2026, 3, day, 12, 0, second, tzinfo=UTC)


async def record_history(tmp_path: Path) -> Path:
    """Run the history above through the real handlers and projector; the log file's path."""
    log_path = tmp_path / "log.db"  # where Settings(data_dir=tmp_path) finds the embedded log
    source = SqliteLogSource(str(log_path), TOPIC)
    keys = open_data_keys(f"sqlite:///{tmp_path / 'keys.db'}")  # as `gamify serve` makes it
    log = SealingEventLog(SqliteEventLog(str(log_path), on_append=source.wake), keys)
    db = open_database(f"sqlite:///{tmp_path / 'read.sqlite'}")
    store = participant_store(db, keys=keys)
    store.create_table()
    queries, definitions = ParticipantQueries(db), DefinitionQueries(db)
    progress = Progress(lambda p: queries.next_offset(TOPIC, p))
    clock = {"now": at(1, 0)}
    ids = itertools.count()
    deps = Deps(
        log=log,
        reader=ReadModelReader(queries, definitions),
        progress=progress,
        clock=lambda: clock["now"],
        new_id=lambda: f"id-{next(ids)}",
    )
    stop = asyncio.Event()
    projector = asyncio.create_task(
        runner.run(source, store, stop, on_advance=progress.advance, poll_timeout=0.02)
    )
    ctx = Context("acme")
    try:
        reader = DefinitionStateReader(definitions)
        for kind, body in (
            ("rule", {"code": "play", "name": "Play", "event_name": "play", "points": 10}),
            (
                "tier",
                {
                    "code": "silver",
                    "name": "Silver",
                    "level": 1,
                    "criteria_config": {"min_points": 50},
                },
            ),
            (
                "tier",
                {
                    "code": "gold",
                    "name": "Gold",
                    "level": 2,
                    "criteria_config": {"min_points": 100},
                },
            ),
        ):
            await create_definition(deps, reader, ctx, kind, body)
        plan: list[tuple[int, Any]] = [
            *[(1, TrackEvent("alice", "play")) for _ in range(3)],
            (1, TrackEvent("alice", "buy", {"spent": 40})),  # sealed on the log; no rule yet
            (1, AwardPoints("alice", 25, "welcome")),
            *[(1, TrackEvent("bob", "play")) for _ in range(2)],
            *[(2, TrackEvent("alice", "play")) for _ in range(2)],
            *[(2, TrackEvent("bob", "play")) for _ in range(3)],
            (2, DeductPoints("bob", 15, "shop")),
            (3, TrackEvent("alice", "play")),
        ]
        for second, (day, command) in enumerate(plan, start=1):
            clock["now"] = at(day, second)
            await execute(deps, ctx, command)
        alice = await asyncio.to_thread(queries.participant, "acme", "alice")
        assert (
            alice is not None and alice.balance == 85 and alice.section("tier")["code"] == "silver"
        )
    finally:
        stop.set()
        await asyncio.wait_for(projector, 10)
        log.close()
        keys.close()
        source.close()
        db.close()
    return log_path


async def commits_of(log_path: Path) -> list[Commit]:
    source = SqliteLogSource(str(log_path), TOPIC)
    keys = open_data_keys(f"sqlite:///{log_path.parent / 'keys.db'}")
    try:
        found = await read_all(source, source.end_offsets)
        return [decode(v, keys) for v in found[0]]
    finally:
        source.close()
        keys.close()


@pytest.fixture
async def log_path(tmp_path: Path) -> Path:
    return await record_history(tmp_path)


@pytest.fixture
async def history(log_path: Path) -> list[Commit]:
    return await commits_of(log_path)


def changes(raw: dict[str, Any]) -> Any:
    return load_changes(raw, now=NOW)


def test_double_points_from_day_two_as_worked_out_by_hand(history: list[Commit]) -> None:
    report = simulate(history, "acme", changes(DOUBLE), start="2026-03-02T00:00:00Z")
    days = {d["day"]: d for d in report["days"]}
    assert list(days) == ["2026-03-02", "2026-03-03"]
    assert days["2026-03-02"]["points_awarded"] == {
        "recorded": 50,
        "simulated": 100,
        "difference": 50,
    }
    assert days["2026-03-02"]["points_deducted"] == {
        "recorded": 15,
        "simulated": 15,
        "difference": 0,
    }
    assert days["2026-03-02"]["liability"] == {"recorded": 110, "simulated": 160, "difference": 50}
    assert days["2026-03-02"]["participants_with_another_tier"] == 0
    assert days["2026-03-03"]["points_awarded"] == {
        "recorded": 10,
        "simulated": 20,
        "difference": 10,
    }
    assert days["2026-03-03"]["liability"] == {"recorded": 120, "simulated": 180, "difference": 60}
    assert days["2026-03-03"]["participants_with_another_tier"] == 1
    assert days["2026-03-03"]["tiers"] == {
        "gold": {"recorded": 0, "simulated": 1, "difference": 1},
        "silver": {"recorded": 2, "simulated": 1, "difference": -1},
    }
    assert report["total"]["points_awarded"] == {"recorded": 60, "simulated": 120, "difference": 60}
    assert report["participants_with_another_tier"] == [
        {"participant_id": "alice", "recorded": "silver", "simulated": "gold"}
    ]
    assert report["commits"] | {"not_re_decidable_reasons": {}} == {
        "before_period": 7,  # day 1: alice 3 plays, the award and a `buy`; bob 2 plays
        "in_period": 7,
        "re_decided": 7,
        "re_decided_from_events": 0,
        "refused_now": 0,
        "profile_as_recorded": 0,
        "not_re_decidable": 0,
        "not_re_decidable_reasons": {},
    }
    table = render(report)
    assert "2026-03-02  50 -> 100 (+50)" in table
    assert "alice: silver -> gold" in table


def test_unchanged_definitions_reproduce_the_record(history: list[Commit]) -> None:
    same = {"rules": [{"code": "play", "name": "Play", "event_name": "play", "points": 10}]}
    report = simulate(history, "acme", changes(same))
    assert all(d["points_awarded"]["difference"] == 0 for d in report["days"])
    assert report["total"]["liability"] == {"recorded": 120, "simulated": 120, "difference": 0}
    assert report["participants_with_another_tier"] == []
    assert report["commits"]["re_decided"] == 14


def test_the_period_end_and_other_tenants_bound_what_is_read(history: list[Commit]) -> None:
    report = simulate(
        history, "acme", changes(DOUBLE), "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"
    )
    assert [d["day"] for d in report["days"]] == ["2026-03-02"]
    assert report["total"]["liability"]["difference"] == 50
    assert simulate(history, "globex", changes(DOUBLE))["days"] == []


def test_old_records_without_input_are_rebuilt_from_their_events(history: list[Commit]) -> None:
    old = [decode(encode(replace(c, causation=replace(c.causation, input=None)))) for c in history]
    assert all(c.causation.input is None for c in old)
    report = simulate(old, "acme", changes(DOUBLE), start="2026-03-02T00:00:00Z")
    assert (
        report["total"]
        == simulate(history, "acme", changes(DOUBLE), "2026-03-02T00:00:00Z")["total"]
    )
    assert report["commits"]["re_decided_from_events"] == 7


def test_the_upcaster_rebuilds_what_events_say_and_names_what_they_cannot() -> None:
    cause = Causation("events.track")
    tracked = Commit(
        "c1",
        "acme",
        "p",
        0,
        "2026-03-01T00:00:00Z",
        cause,
        (EventTracked("e1", "play", {"n": 1}, "2026-02-28T23:00:00Z"), PointsAwarded("t", 10, 10)),
    )
    assert recorded_input(tracked) == (
        {
            "participant_id": "p",
            "event_name": "play",
            "properties": {"n": 1},
            "timestamp": "2026-02-28T23:00:00Z",
        },
        "rebuilt from events",
    )
    award = replace(
        tracked,
        causation=Causation("points.award"),
        events=(PointsAwarded("t", 7, 7, "why", {"k": "v"}),),
    )
    assert recorded_input(award)[0] == {
        "participant_id": "p",
        "amount": 7,
        "reason": "why",
        "metadata": {"k": "v"},
    }
    keyed_nothing = replace(
        tracked, causation=Causation("points.award", idempotency_key="k"), events=()
    )
    data, why = recorded_input(keyed_nothing)
    assert data is None and "no events" in why
    # A simulation counts such a commit, and applies it as recorded.
    unkeyed_nothing = replace(award, commit_id="c2", events=())
    report = simulate([unkeyed_nothing, keyed_nothing], "acme", changes(DOUBLE))
    assert report["commits"]["not_re_decidable"] == 2


def test_the_definitions_file_passes_the_admin_boundary() -> None:
    with pytest.raises(DefinitionsFileError) as refused:
        changes({"rules": [{"code": "x", "name": "X", "event_name": "e"}], "unicorns": []})
    assert any("points" in e for e in refused.value.errors), refused.value.errors
    assert any("unicorns" in e for e in refused.value.errors), refused.value.errors
    with pytest.raises(DefinitionsFileError):
        changes({"tiers": [{"code": "t", "name": "T", "level": "high", "criteria_config": {}}]})


def test_the_command_line_reads_the_log_and_prints_json_or_a_table(
    log_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = log_path.parent / "double.json"
    rules.write_text(json.dumps(DOUBLE))
    monkeypatch.setenv("GAMIFY_DATA_DIR", str(log_path.parent))
    monkeypatch.delenv("GAMIFY_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    before = log_path.read_bytes()
    argv = ["simulate", "--rules", str(rules), "--from", "2026-03-02T01:00:00+01:00"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tenant"] == "acme" and report["from"] == "2026-03-02T00:00:00Z"
    assert report["total"]["points_awarded"]["difference"] == 60
    assert report["commits"]["unreadable_records"] == 0
    assert main(argv) == 0
    assert "alice: silver -> gold" in capsys.readouterr().out
    assert log_path.read_bytes() == before  # nothing written
    rules.write_text(json.dumps({"rules": [{"code": "x"}]}))
    assert main(argv) == 2
    assert "rules[0]" in capsys.readouterr().err


BUY = {
    "rules": [
        {"code": "buy", "name": "Buy", "event_name": "buy", "points_property": "spent"},
    ]
}


def test_the_command_line_opens_sealed_event_properties_with_the_data_keys(
    log_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """alice's `buy` event carries {"spent": 40}, sealed on the log: a rule paying `spent`
    awards 40 only when the simulation opens the properties (without keys they read {})."""
    assert b'"spent"' not in log_path.read_bytes()  # the property is not on the log in clear
    rules = log_path.parent / "buy.json"
    rules.write_text(json.dumps(BUY))
    monkeypatch.setenv("GAMIFY_DATA_DIR", str(log_path.parent))
    monkeypatch.delenv("GAMIFY_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["simulate", "--rules", str(rules), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"]["points_awarded"]["difference"] == 40


def test_the_command_line_refuses_to_simulate_without_the_data_key_store(
    log_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (log_path.parent / "keys.db").unlink()
    rules = log_path.parent / "buy.json"
    rules.write_text(json.dumps(BUY))
    monkeypatch.setenv("GAMIFY_DATA_DIR", str(log_path.parent))
    monkeypatch.delenv("GAMIFY_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["simulate", "--rules", str(rules)]) == 1
    assert "no data-key store" in capsys.readouterr().err
    assert not (log_path.parent / "keys.db").exists()  # and made none
