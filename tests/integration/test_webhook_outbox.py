"""The webhook outbox on both stores: only applied commits give deliveries, once, and the
dispatcher records nothing the projector has not passed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from projections.db import Database
from projections.participants.store import ParticipantStore
from projections.sources import StartPositions
from projections.webhooks import dispatcher
from projections.webhooks.outbox import Outbox
from schemas.codec import encode
from schemas.events import (
    DEFINITION,
    Causation,
    Commit,
    DefinitionCreated,
    ParticipantErased,
    ParticipantRegistered,
    PointsAwarded,
)
from schemas.log import LogRecord

TOPIC = "t"
AT = "2026-02-14T10:00:00Z"


def commit(
    commit_id: str,
    version: int,
    *events: object,
    stream: str = "participant",
    pid: str = "alice",
    at: str = AT,
) -> Commit:
    return Commit(commit_id, "acme", pid, version, at, Causation("x"), tuple(events), stream)  # type: ignore[arg-type]


def subscription(events: list[str], at: str = "2026-02-14T09:00:00Z") -> Commit:
    body = {"url": "http://127.0.0.1:1/h", "events": events, "secret": "s" * 16}
    return commit(
        "sub",
        0,
        DefinitionCreated(kind="webhook", id="w1", code="w1", body=body),
        stream=DEFINITION,
        pid="webhook:w1",
        at=at,
    )


def records(*commits: Commit | bytes | None) -> list[LogRecord]:
    return [
        LogRecord(0, n, c if isinstance(c, bytes) else encode(c))  # type: ignore[arg-type]
        for n, c in enumerate(commits)
        if c is not None
    ]


def deliveries(outbox: Outbox) -> list[tuple[str, int]]:
    found, _ = outbox.page("acme", "w1", None, 1, 100)
    return sorted((d.event_type, d.attempts) for d in found)


def test_only_commits_the_projector_applied_at_that_position_give_deliveries(
    db: Database, store: ParticipantStore
) -> None:
    outbox = Outbox(db)
    outbox.create_tables()
    applied = commit("a", 0, PointsAwarded(transaction_id="t1", amount=5, balance_after=5))
    log = records(
        subscription(["points.awarded"]),
        applied,
        commit("conflict", 0, PointsAwarded(transaction_id="t2", amount=7, balance_after=7)),
        applied,  # a second copy of the same commit
        b"not a commit",
    )
    store.apply_batch(TOPIC, 0, log)
    assert outbox.record(TOPIC, 0, log, 1000.0) == 1
    assert deliveries(outbox) == [("points.awarded", 0)]
    assert outbox.next_offsets(TOPIC, [0, 1]) == {0: 5}
    assert outbox.record(TOPIC, 0, log, 2000.0) == 0  # re-delivered records change nothing
    assert deliveries(outbox) == [("points.awarded", 0)]


def test_a_subscription_gets_no_events_from_before_it_existed(
    db: Database, store: ParticipantStore
) -> None:
    outbox = Outbox(db)
    outbox.create_tables()
    log = records(
        commit("early", 0, PointsAwarded(amount=1), at="2026-02-14T08:00:00Z"),
        subscription(["*"]),
    )
    store.apply_batch(TOPIC, 0, log)
    assert outbox.record(TOPIC, 0, log, 1000.0) == 0


def test_a_claimed_delivery_is_due_again_after_its_lease_and_counts_its_attempts(
    db: Database, store: ParticipantStore
) -> None:
    outbox = Outbox(db)
    outbox.create_tables()
    log = records(subscription(["*"]), commit("a", 0, PointsAwarded(amount=1)))
    store.apply_batch(TOPIC, 0, log)
    outbox.record(TOPIC, 0, log, 1000.0)
    assert outbox.due_webhooks(1000.0) == ["w1"]
    [first] = outbox.claim("w1", 1000.0, 10, lease_until=1040.0)
    assert first.attempts == 1
    assert outbox.claim("w1", 1000.0, 10, lease_until=1040.0) == []  # leased
    assert outbox.due_webhooks(1039.0) == []
    [again] = outbox.claim("w1", 1040.0, 10, lease_until=1080.0)  # the sender died: due again
    assert again.delivery_id == first.delivery_id and again.attempts == 2
    outbox.finish(first, "delivered", 200, None, 1000.0, 1000.0)  # the stale attempt: ignored
    assert outbox.get("acme", "w1", first.delivery_id).status == "pending"  # type: ignore[union-attr]
    outbox.finish(again, "delivered", 200, None, 1041.0, 1041.0)
    assert outbox.get("acme", "w1", first.delivery_id).status == "delivered"  # type: ignore[union-attr]


class ListSource:
    """A LogSource over a list of records (partition 0)."""

    topic = TOPIC

    def __init__(self, log: list[LogRecord]) -> None:
        self.log, self.next = log, 0

    async def start(self, start_positions: StartPositions) -> None:
        self.next = (await start_positions([0])).get(0, 0)

    async def read(self, max_records: int, timeout: float) -> dict[int, list[LogRecord]]:
        batch = self.log[self.next : self.next + max_records]
        if not batch:
            await asyncio.sleep(timeout)
            return {}
        self.next += len(batch)
        return {0: batch}

    async def committed(self, positions: dict[int, int]) -> None:
        return None

    async def end_offsets(self) -> dict[int, int]:
        return {0: len(self.log)}

    async def stop(self) -> None:
        return None

    def partitions(self) -> Sequence[int]:
        return (0,)


async def test_the_dispatcher_waits_for_the_projector_and_records_nothing_if_stopped_first(
    db: Database, store: ParticipantStore
) -> None:
    outbox = Outbox(db)
    outbox.create_tables()
    log = records(subscription(["*"]), commit("a", 0, PointsAwarded(amount=1)))
    projected = {0: 0}

    async def position(partition: int) -> int:
        return projected[partition]

    stop = asyncio.Event()
    task = asyncio.create_task(
        dispatcher.run(ListSource(log), outbox, position, stop, poll_timeout=0.01, wait_step=0.01)
    )
    await asyncio.sleep(0.2)  # the dispatcher is waiting: the projector has passed nothing
    assert outbox.next_offsets(TOPIC, [0]) == {}
    stop.set()
    await asyncio.wait_for(task, 5)
    assert outbox.next_offsets(TOPIC, [0]) == {}

    store.apply_batch(TOPIC, 0, log)
    projected[0] = 2
    stop = asyncio.Event()
    task = asyncio.create_task(
        dispatcher.run(ListSource(log), outbox, position, stop, poll_timeout=0.01, wait_step=0.01)
    )
    deadline = asyncio.get_running_loop().time() + 10
    while outbox.next_offsets(TOPIC, [0]) != {0: 2}:
        assert asyncio.get_running_loop().time() < deadline, "dispatcher did not advance"
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert deliveries(outbox) == [("points.awarded", 0)]


async def test_the_sender_refuses_private_addresses_at_send_time_without_the_setting(
    db: Database, store: ParticipantStore
) -> None:
    import socket

    from aiohttp import web

    from services.config import WebhookSettings
    from services.webhooks.sender import Sender

    got: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.Response()

    app = web.Application()
    app.router.add_post("/h", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", 0)  # noqa: S104 - reachable by the machine's name too
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    outbox = Outbox(db)
    outbox.create_tables()
    # by address (checked before connecting) and by a name that resolves to a private address
    # (checked by the resolver: what DNS rebinding would exploit)
    for n, host in enumerate(("127.0.0.1", socket.gethostname())):
        body = {"url": f"http://{host}:{port}/h", "events": ["*"], "secret": "s" * 16}
        sub = commit(
            f"sub{n}",
            0,
            DefinitionCreated(kind="webhook", id=f"w{n}", code=f"w{n}", body=body),
            stream=DEFINITION,
            pid=f"webhook:w{n}",
            at="2026-02-14T09:00:00Z",
        )
        store.apply_batch(TOPIC, 0, [LogRecord(0, 2 * n, encode(sub))])
        event = LogRecord(
            0, 2 * n + 1, encode(commit(f"a{n}", 0, PointsAwarded(amount=1), pid=f"p{n}"))
        )
        store.apply_batch(TOPIC, 0, [event])
        outbox.record(TOPIC, 0, [event], 1000.0)
    try:
        for allow, expected in ((False, 0), (True, 2)):
            sender = Sender(
                outbox,
                WebhookSettings(max_attempts=2, backoff=0.01, allow_private=allow, timeout=2),
                clock=lambda: 5000.0,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(sender.run(stop))
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                found = [outbox.page("acme", f"w{n}", None, 1, 10)[0][0] for n in (0, 1)]
                if all((d.status == "delivered") if allow else d.last_error for d in found):
                    break
                assert asyncio.get_running_loop().time() < deadline, found
                await asyncio.sleep(0.02)
            stop.set()
            await asyncio.wait_for(task, 10)
            assert len(got) == expected
            if not allow:
                assert all(
                    (d.last_error or "").startswith(("refused", "RefusedAddress")) for d in found
                ), found
                for n in (0, 1):
                    outbox.redeliver("acme", f"w{n}", found[n].delivery_id, 1000.0)
    finally:
        await runner.cleanup()


def test_queued_deliveries_of_an_erased_participant_lose_their_personal_fields(
    db: Database, store: ParticipantStore
) -> None:
    outbox = Outbox(db)
    outbox.create_tables()
    log = records(
        subscription(["*"]),
        commit("a", 0, ParticipantRegistered(display_name="Alice Secret")),
        commit("b", 1, PointsAwarded("t1", 5, 5, "alice's reason", {"m": "alice"})),
        commit("c", 0, PointsAwarded("t2", 5, 5, "bob's reason", {"m": "bob"}), pid="bob"),
    )
    store.apply_batch(TOPIC, 0, log)
    outbox.record(TOPIC, 0, log, 1000.0)
    erased = records(None, None, None, None, commit("d", 2, ParticipantErased()))  # offset 4
    store.apply_batch(TOPIC, 0, erased)
    outbox.record(TOPIC, 0, erased, 1001.0)
    found, _ = outbox.page("acme", "w1", None, 1, 100)
    bodies = " ".join(outbox.get("acme", "w1", d.delivery_id).body for d in found)  # type: ignore[union-attr]
    for secret in ("Alice Secret", "alice's reason", '"m":"alice"'):
        assert secret not in bodies, secret
    assert "bob's reason" in bodies, "other participants' deliveries are left as they are"
    assert '"amount":5' in bodies
