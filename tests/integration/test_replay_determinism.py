"""Replaying the log from offset 0 rebuilds exactly the read models the live projector built.

A hypothesis property over random command sequences (registers, updates with attribute merges
and null removals, awards, deducts that may fail, tracked events with an earn rule and a
challenge, badge awards, tier assignments, streak ticks on several days, expiring credits and
their expiry, repeated idempotency keys, and groups of
concurrent commands on one participant from two "processes" so commits conflict and are
retried), run through the real handler with the real projector on SQLite and PostgreSQL. The
log is then replayed from offset 0 into a second set of tables and every row of every
read-model table must be equal, including the outcomes of rejected (conflict/duplicate) commits.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections import runner
from projections.db import Database, rows
from projections.definitions.queries import DefinitionQueries
from projections.participants.queries import ParticipantQueries
from projections.participants.store import PROJECTION, participant_store
from projections.progress import Progress
from projections.rebuild import compare, drop_tables
from projections.replay import READ_MODELS
from projections.sources.sqlite import SqliteLogReader, SqliteLogSource
from schemas.codec import decode
from schemas.sections import open_lots
from services.adapters.read_model import DefinitionStateReader, ReadModelReader
from services.adapters.sqlite_event_log import SqliteEventLog
from services.definitions.handlers import create_definition
from services.participants.commands import (
    UNSET,
    AssignTier,
    AwardBadge,
    AwardPoints,
    Command,
    DeductPoints,
    ExpirePoints,
    RecordStreak,
    RegisterParticipant,
    TrackEvent,
    UpdateParticipant,
)
from services.participants.domain import DomainError
from services.participants.handlers import (
    ConcurrencyConflict,
    Context,
    Deps,
    IdempotencyKeyReused,
    Result,
    execute,
)
from tests.builders import TOPIC

TABLES = READ_MODELS["participants"]
TENANTS = ("t1", "t2")
PIDS = ("p0", "p1", "p2")
KEYS = (None, None, None, "k1", "k2", "k3")
_suffixes = itertools.count()

# --------------------------------------------------------------------------------------------
# Strategies: one "op" is (tenant, participant, command, idempotency key)

names = st.sampled_from([UNSET, None, "Ann", "Bob", "Zoë"])
avatars = st.sampled_from([UNSET, None, "https://img/a.png"])
attr_values = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["x", "y"]), st.booleans())
attr_patch = st.dictionaries(st.sampled_from(["a", "b", "c"]), attr_values, max_size=3)
register_attrs = st.one_of(
    st.just(UNSET),
    st.none(),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 5), max_size=2),
)
metadata = st.dictionaries(st.sampled_from(["src", "n"]), st.integers(0, 9), max_size=2)
reasons = st.sampled_from([None, "quest", "shop"])
# The clock moves 1 s per decision from 2026-01-01 (the definitions take the first ~20 s):
# these credits are due at once, or fall due during an example, or never within one.
expiries = st.sampled_from(
    [
        None,
        "2025-12-31T00:00:00Z",
        "2026-01-01T00:00:30Z",
        "2026-01-01T00:00:45Z",
        "2027-01-01T00:00:00Z",
    ]
)
# ExpirePoints of the participant's soonest open lot, found as the scheduler finds it (run_on_log)
SOONEST = "soonest"


# The engine's definitions, created through the admin use case at the start of every example
# (so they are on the log too): tiers, badges by award and by criteria, an earn rule, a streak
# and a challenge whose completion pays points and a badge.
DEFINITIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "tier",
        {"code": "bronze", "name": "Bronze", "level": 1, "criteria_config": {"min_points": 20}},
    ),
    (
        "tier",
        {"code": "silver", "name": "Silver", "level": 2, "criteria_config": {"min_points": 60}},
    ),
    (
        "tier",
        {
            "code": "vip",
            "name": "VIP",
            "level": 9,
            "award_type": "manual",
            "criteria_config": {"min_points": 0},
        },
    ),
    ("badge", {"code": "hero", "name": "Hero", "award_type": "manual"}),
    (
        "badge",
        {
            "code": "regular",
            "name": "Regular",
            "criteria_config": {"event_name": "login", "event_count": 2},
        },
    ),
    (
        "badge",
        {
            "code": "steady",
            "name": "Steady",
            "criteria_config": {"streak_code": "daily", "streak_length": 2},
        },
    ),
    (
        "rule",
        {
            "code": "buy",
            "name": "Buy",
            "event_name": "purchase",
            "points_property": "amount",
            "conditions": {"amount": {"gte": 1}},
        },
    ),
    ("streak", {"code": "daily", "name": "Daily", "period": "daily", "grace_period_hours": 0}),
    (
        "challenge",
        {
            "code": "c1",
            "name": "C1",
            "window": {"type": "perpetual"},
            "objectives": [
                {"id": "in", "event_name": "login", "count": 2},
                {"id": "buy", "event_name": "purchase", "count": 1},
            ],
            "rewards": {"points": 10, "badge_code": "hero"},
        },
    ),
]
event_names = st.sampled_from(["login", "purchase", "other"])
event_props = st.dictionaries(st.just("amount"), st.integers(0, 30), max_size=1)
days = st.sampled_from([None, *(f"2026-01-0{d}T12:00:00Z" for d in range(1, 7))])


def commands(pid: str) -> st.SearchStrategy[Command]:
    return st.one_of(
        st.builds(TrackEvent, st.just(pid), event_names, event_props, days),
        st.builds(AwardBadge, st.just(pid), st.sampled_from(["hero", "nope"])),
        st.builds(AssignTier, st.just(pid), st.sampled_from(["vip", "bronze"])),
        st.builds(RecordStreak, st.just(pid), st.just("daily"), days),
        st.builds(RegisterParticipant, st.just(pid), names, avatars, register_attrs),
        st.builds(
            UpdateParticipant, st.just(pid), names, avatars, st.one_of(st.just(UNSET), attr_patch)
        ),
        st.builds(AwardPoints, st.just(pid), st.integers(1, 40), reasons, metadata),
        st.builds(AwardPoints, st.just(pid), st.integers(1, 40), reasons, metadata, expiries),
        st.builds(DeductPoints, st.just(pid), st.integers(1, 60), reasons, metadata),
    )


@st.composite
def ops_on(draw: st.DrawFn, tenant: str, pid: str) -> tuple[str, Command, str | None]:
    return tenant, draw(commands(pid)), draw(st.sampled_from(KEYS))


@st.composite
def single(draw: st.DrawFn) -> list[tuple[str, Command, str | None]]:
    return [draw(ops_on(draw(st.sampled_from(TENANTS)), draw(st.sampled_from(PIDS))))]


@st.composite
def concurrent(draw: st.DrawFn) -> list[tuple[str, Command, str | None]]:
    """2-4 commands on one participant, run with asyncio.gather from two handler instances."""
    tenant, pid = draw(st.sampled_from(TENANTS)), draw(st.sampled_from(PIDS))
    group = draw(st.lists(ops_on(tenant, pid), min_size=2, max_size=4))
    if draw(st.booleans()):  # the same key for every command: a retry storm of one request
        key = draw(st.sampled_from(["k1", "k2", "k3"]))
        first = group[0][1]
        group = [(tenant, first, key) for _ in group]
    return group


@st.composite
def expiring(draw: st.DrawFn) -> list[list[tuple[str, Command, str | None]]]:
    """Two groups: maybe a credit already due (amount drawn), then 1-2 schedulers expiring the
    participant's soonest lot at once (key: none or the lot's, as the scheduler's)."""
    tenant, pid = draw(st.sampled_from(TENANTS)), draw(st.sampled_from(PIDS))
    groups = []
    if draw(st.booleans()):
        award = AwardPoints(pid, draw(st.integers(1, 40)), expires_at="2025-12-31T00:00:00Z")
        groups.append([(tenant, award, None)])
    key = draw(st.sampled_from([None, SOONEST]))
    groups.append([(tenant, ExpirePoints(pid, SOONEST), key)] * draw(st.integers(1, 2)))
    return groups


def _one_group(
    group: st.SearchStrategy[list[tuple[str, Command, str | None]]],
) -> st.SearchStrategy[list[list[tuple[str, Command, str | None]]]]:
    return group.map(lambda g: [g])


steps = st.lists(
    st.one_of(_one_group(single()), _one_group(single()), _one_group(concurrent()), expiring()),
    min_size=1,
    max_size=14,
).map(lambda parts: [group for part in parts for group in part])


# --------------------------------------------------------------------------------------------
# One example


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def run_example(
    db: Database, live_suffix: str, check_suffix: str, plan: list[list[tuple[str, Command, Any]]]
) -> tuple[list[Any], dict[tuple[str, str], int], Counter[str]]:
    """The plan on a fresh embedded SQLite log (a real durable log, in a temporary folder)."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "log.db")
        source = SqliteLogSource(path, TOPIC)
        log = SqliteEventLog(path, on_append=source.wake)
        try:
            return await run_on_log(log, source, db, live_suffix, check_suffix, plan)
        finally:
            log.close()
            source.close()


async def logged_values(path: str) -> list[bytes]:
    """Every record value of the embedded log at ``path``, in offset order."""
    reader = SqliteLogSource(path, TOPIC)
    try:
        await reader.start(lambda partitions: _zero())
        return [r.value for r in (await reader.read(1_000_000, 0)).get(0, [])]
    finally:
        reader.close()


async def _zero() -> dict[int, int]:
    return {}


async def run_on_log(
    log: SqliteEventLog,
    source: SqliteLogSource,
    db: Database,
    live_suffix: str,
    check_suffix: str,
    plan: list[list[tuple[str, Command, Any]]],
) -> tuple[list[Any], dict[tuple[str, str], int], Counter[str]]:
    live = participant_store(db, suffix=live_suffix)
    await asyncio.to_thread(live.create_table)
    queries = ParticipantQueries(db, suffix=live_suffix)
    definitions = DefinitionQueries(db, suffix=live_suffix)  # no definitions: an empty catalog
    progress = Progress(lambda p: queries.next_offset(TOPIC, p))
    ids = itertools.count()
    clock = Clock()
    log_reader = SqliteLogReader(log.path)  # idempotent replays read the original commit back

    def new_deps() -> Deps:  # a handler instance of its own (own locks): another API process
        return Deps(
            log=log,
            reader=ReadModelReader(queries, definitions, log=log_reader),
            progress=progress,
            clock=clock,
            new_id=lambda: f"id-{next(ids)}",
            projection_timeout=20.0,
        )

    processes = [new_deps(), new_deps()]
    stop = asyncio.Event()
    projector = asyncio.create_task(
        runner.run(source, live, stop, on_advance=progress.advance, poll_timeout=0.02)
    )
    catalog_reader = DefinitionStateReader(definitions)
    for tenant in TENANTS:
        for kind, body in DEFINITIONS:
            await create_definition(processes[0], catalog_reader, Context(tenant), kind, body)
    expected: dict[tuple[str, str], int] = Counter()
    outcomes: Counter[str] = Counter()

    async def one(deps: Deps, tenant: str, command: Command, key: str | None) -> None:
        if isinstance(command, ExpirePoints) and command.lot_id == SOONEST:
            state = await deps.reader.get_state(tenant, command.participant_id)
            lots = open_lots(state.sections) if state else []
            command = ExpirePoints(command.participant_id, lots[0]["id"] if lots else "none")
            key = f"expire:{command.lot_id}" if key == SOONEST else key
        try:
            result = await execute(deps, Context(tenant, idempotency_key=key), command)
        except (DomainError, IdempotencyKeyReused, ConcurrencyConflict) as exc:
            outcomes[type(exc).__name__] += 1
            return
        account(expected, tenant, command.participant_id, result)

    try:
        for group in plan:
            await asyncio.gather(
                *(
                    one(processes[i % 2], tenant, command, key)
                    for i, (tenant, command, key) in enumerate(group)
                )
            )
    finally:
        stop.set()
        await asyncio.wait_for(projector, 10)
        log_reader.close()
    assert not projector.exception()

    values = await logged_values(log.path)
    for value in values:  # which engine events the example produced
        outcomes.update(f"event:{e.TYPE}" for e in decode(value).events)
    end = await source.end_offsets()
    assert end == {0: len(values)}
    assert live.next_offsets(TOPIC, [0]) == ({0: end[0]} if end[0] else {})

    # Replay the same records from offset 0 into fresh tables.
    check = participant_store(db, suffix=check_suffix)
    await asyncio.to_thread(check.create_table)
    again = SqliteLogSource(log.path, TOPIC)
    try:
        stats = await asyncio.wait_for(
            runner.run(again, check, asyncio.Event(), until=end, poll_timeout=0.02), 30
        )
    finally:
        again.close()
    assert stats.records == len(values)
    assert check.next_offsets(TOPIC, [0]) == live.next_offsets(TOPIC, [0])

    with db.transaction(commit=False) as c:
        differences = compare((db, c), (db, c), TABLES, live_suffix, check_suffix)
        c.execute(f"SELECT status FROM commit_outcomes{live_suffix}")  # noqa: S608
        outcomes.update(r[0] for r in rows(c))
        c.execute(f"SELECT tenant, participant_id, balance FROM participants{live_suffix}")  # noqa: S608
        balances = {(r[0], r[1]): r[2] for r in rows(c)}
    assert len(values) == outcomes["applied"] + outcomes["conflict"] + outcomes["duplicate"]
    # The live projection itself agrees with what the handler acknowledged.
    assert balances == {k: expected.get(k, 0) for k in balances}, (
        "live balances differ from the acknowledged awards and deducts"
    )
    assert set(expected) <= set(balances)
    return differences, dict(expected), outcomes


def account(expected: Counter, tenant: str, pid: str, result: Result) -> None:
    """Add the points movement an acknowledged (first-time) command made."""
    if result.replayed:
        return
    for event in result.events:
        if event["type"] == "PointsAwarded":
            expected[(tenant, pid)] += event["data"]["amount"]
        elif event["type"] in ("PointsDeducted", "PointsExpired"):
            expected[(tenant, pid)] -= event["data"]["amount"]


# --------------------------------------------------------------------------------------------
# The property


def test_replaying_the_log_from_zero_rebuilds_every_read_model_row(db: Database) -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(plan=steps)
    def prop(plan: list[list[tuple[str, Command, Any]]]) -> None:
        n = next(_suffixes)
        live_suffix, check_suffix = f"__live{n}", f"__check{n}"
        try:
            differences, _, outcomes = asyncio.run(run_example(db, live_suffix, check_suffix, plan))
        finally:
            for suffix in (live_suffix, check_suffix):
                drop_tables(db, TABLES, suffix, f"{PROJECTION}{suffix}")
        seen.update(outcomes)
        assert differences == [], "\n".join(d.describe() for d in differences[:20])

    prop()
    # The examples really exercised rejected commits and refused commands.
    assert seen["applied"] > 0, seen
    assert seen["conflict"] > 0 and seen["duplicate"] > 0, seen
    assert seen["InsufficientPoints"] + seen["ParticipantNotFound"] > 0, seen
    assert seen["UnknownDefinition"] > 0, seen
    for produced in (
        "TierChanged",
        "BadgeEarned",
        "EventTracked",
        "StreakExtended",
        "ChallengeProgressed",
        "PointsAwarded",
        "PointsExpired",
    ):
        assert seen[f"event:{produced}"] > 0, (produced, seen)


def test_the_comparison_sees_a_single_changed_row(db: Database) -> None:
    """The check above can fail: one altered ledger amount is reported as a difference."""
    plan = [
        [("t1", AwardPoints("p0", 10), None)],
        [("t1", AwardPoints("p0", 5), None), ("t1", AwardPoints("p0", 7), None)],
        [("t2", DeductPoints("p0", 1), None)],
    ]
    n = next(_suffixes)
    live_suffix, check_suffix = f"__live{n}", f"__check{n}"
    try:
        differences, expected, outcomes = asyncio.run(
            run_example(db, live_suffix, check_suffix, plan)
        )
        assert differences == []
        assert expected == {("t1", "p0"): 22}
        assert outcomes["conflict"] >= 1 and outcomes["InsufficientPoints"] == 1, outcomes
        with db.transaction(commit=True) as c:
            c.execute(
                db.sql(f"UPDATE points_ledger{check_suffix} SET amount = amount + 1 WHERE idx = 0")  # noqa: S608
                + db.sql(" AND version = ?"),
                (2,),
            )
        with db.transaction(commit=False) as c:
            found = compare((db, c), (db, c), TABLES, live_suffix, check_suffix)
        assert [(d.table, d.key) for d in found] == [("points_ledger", ("t1", "p0", 2, 0))]
    finally:
        for suffix in (live_suffix, check_suffix):
            drop_tables(db, TABLES, suffix, f"{PROJECTION}{suffix}")
