"""`gamify replay` against a real server process and its real data (embedded log and Kafka).

* rebuild: delete the read-model file, replay, restart: every GET answers the same JSON;
* repair: corrupt one participant's rows, `--participant/--tenant` restores exactly them;
* verify: `--verify` exits 1 naming the corrupted row, and 0 once a replay swapped a fresh copy in;
* live swap: a replay while the server keeps taking writes loses and doubles no commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import ACME_KEY, GLOBEX_KEY, PROJECT_ROOT, Api, Server

MODES = ["embedded", "kafka"]
ACME, GLOBEX = "acme", "globex"
_SCRIPT = Path(sys.executable).parent / "gamify"
GAMIFY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "services"]
PARTICIPANT_TABLES = ("participants", "points_ledger", "commit_outcomes", "idempotency_keys")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------------
# Server and CLI helpers


@pytest.fixture(params=MODES)
def fresh_server(request: pytest.FixtureRequest, server_factory: Callable) -> Iterator[Server]:
    """A server of its own (these tests stop it, delete and corrupt its read models)."""
    srv = server_factory(request.param)
    if request.param == "kafka":
        srv.env["GAMIFY_KAFKA_SESSION_TIMEOUT_MS"] = "2000"
    srv.start()
    yield srv
    srv.stop(signal.SIGKILL)


def cli_env(server: Server) -> dict[str, str]:
    """The environment the server runs with (same data dir, log, topic prefix, broker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMIFY_")}
    env.update(server.env)
    env["GAMIFY_DATA_DIR"] = str(server.data_dir)
    return env


def gamify_replay(server: Server, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [*GAMIFY, "replay", *args],
        cwd=PROJECT_ROOT,
        env=cli_env(server),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def show(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"


def read_model_file(server: Server) -> Path:
    return server.data_dir / "gamify.db"


def sql(server: Server, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement directly on the server's SQLite read-model file."""
    conn = sqlite3.connect(read_model_file(server), timeout=30)
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def raw_rows(server: Server, tenant: str, pid: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model row of one participant, table by table."""
    return {
        table: sorted(
            sql(
                server,
                f"SELECT * FROM {table} WHERE tenant = ? AND participant_id = ?",  # noqa: S608
                (tenant, pid),
            ),
            key=repr,
        )
        for table in PARTICIPANT_TABLES
    }


# --------------------------------------------------------------------------------------------
# A session of writes and a snapshot of every GET


async def write_session(api: Api) -> list[tuple[str, str]]:
    """Register, patch, award, deduct, retry; returns (api key, participant id) of everyone."""
    ada, bo, cy, dee = uid("ada"), uid("bo"), uid("cy"), uid("dee")
    r = await api.register(
        ada,
        display_name="Ada",
        avatar_url="https://img/ada.png",
        attributes={"team": "red", "lvl": 1},
    )
    assert r.status == 201, r
    assert (await api.register(bo, display_name="Bo")).status == 201
    r = await api.patch(
        f"/participants/{ada}",
        {"display_name": "Ada L.", "attributes": {"lvl": 2, "team": None, "city": "Oslo"}},
    )
    assert r.status == 200 and r.body["attributes"] == {"lvl": 2, "city": "Oslo"}, r
    for amount, reason in ((10, "quest"), (20, "streak"), (7, None)):
        r = await api.award(ada, amount, reason=reason, metadata={"src": reason or "none"})
        assert r.status == 200, r
    first = await api.award(ada, 5, idem="retry-ada-1", reason="retried")
    again = await api.award(ada, 5, idem="retry-ada-1", reason="retried")
    assert first.status == again.status == 200 and first.body == again.body, (first, again)
    assert (await api.deduct(ada, 8, reason="shop", metadata={"order": "o-1"})).status == 200
    assert (await api.deduct(ada, 10_000)).status == 400  # insufficient: nothing written
    assert (await api.award(bo, 40)).status == 200
    assert (await api.deduct(bo, 15, idem="bo-deduct")).status == 200
    assert (await api.deduct(bo, 15, idem="bo-deduct")).status == 200  # retried: applied once
    r = await api.register(bo, attributes={"vip": True})  # upsert of an existing participant
    assert r.status in (200, 201), r
    assert (await api.award(cy, 3)).status == 200  # auto-created on first award
    assert (await api.award(dee, 11, key=GLOBEX_KEY)).status == 200  # another tenant
    return [(ACME_KEY, ada), (ACME_KEY, bo), (ACME_KEY, cy), (GLOBEX_KEY, dee)]


def get_paths(pid: str) -> list[tuple[str, dict[str, Any] | None]]:
    tx = f"/participants/{pid}/points/transactions"
    return [
        (f"/participants/{pid}", None),
        (f"/participants/{pid}/state", None),
        (f"/state/{pid}", None),
        (f"/participants/{pid}/state", {"include": "points,rewards"}),
        (f"/state/{pid}", {"include": "badges,challenges"}),
        (f"/participants/{pid}/points", None),
        (tx, None),
        (tx, {"page": 1, "page_size": 2}),
        (tx, {"page": 2, "page_size": 2}),
        (tx, {"page": 3, "page_size": 2}),
        (tx, {"page": 1, "page_size": 100}),
    ]


async def snapshot(api: Api, people: list[tuple[str, str]]) -> dict[tuple[Any, ...], Any]:
    """(key, path, query) -> (status, JSON body) of every GET endpoint for every participant."""
    found: dict[tuple[Any, ...], Any] = {}
    for key, pid in people:
        for path, params in get_paths(pid):
            reply = await api.get(path, key=key, params=params)
            found[(key, path, repr(params))] = (reply.status, reply.body)
    missing = await api.get(f"/participants/{uid('nobody')}")
    found[("missing",)] = missing.status
    return found


def assert_same(before: dict, after: dict) -> None:
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert not changed, f"{len(changed)} GETs changed, e.g. {next(iter(changed.items()))}"
    assert set(before) == set(after)


# --------------------------------------------------------------------------------------------
# (a) embedded and (b) Kafka: delete the read models, replay, same answers


async def test_a_replay_after_deleting_the_read_models_restores_every_get(
    fresh_server: Server, api_for: Callable[[Server], Api]
) -> None:
    api = api_for(fresh_server)
    people = await write_session(api)
    before = await snapshot(api, people)
    ada_points = before[(ACME_KEY, f"/participants/{people[0][1]}/points", "None")]
    assert ada_points == (
        200,
        {
            "participant_id": people[0][1],
            "balance": 34,
            "total_earned": 42,
            "total_spent": 8,
            "expiring_soon": [],
        },
    )
    assert (
        before[(ACME_KEY, f"/participants/{people[0][1]}/points/transactions", "None")][1]["total"]
        == 5
    )

    assert fresh_server.stop() == 0
    log = fresh_server.data_dir / "log.db"
    log_size = log.stat().st_size if fresh_server.mode == "embedded" else None
    for name in ("gamify.db", "gamify.db-wal", "gamify.db-shm"):
        (fresh_server.data_dir / name).unlink(missing_ok=True)
    assert not read_model_file(fresh_server).exists()

    done = gamify_replay(fresh_server)
    assert done.returncode == 0, show(done)
    assert read_model_file(fresh_server).exists()
    if log_size is not None:
        assert log.exists() and log.stat().st_size == log_size  # the log is only read

    fresh_server.start()
    after = await snapshot(api, people)
    assert_same(before, after)
    # and the rebuilt read models take new writes on top of the replayed versions
    r = await api.award(people[0][1], 5, idem="retry-ada-1", reason="retried")
    assert r.status == 200 and r.body["new_balance"] == 42, r  # the original answer
    r = await api.award(people[0][1], 6)
    assert r.status == 200 and r.body["new_balance"] == 40, r


# --------------------------------------------------------------------------------------------
# (c) repair one participant while the server runs


async def test_a_participant_repair_restores_only_that_participant(
    fresh_server: Server, api_for: Callable[[Server], Api]
) -> None:
    api = api_for(fresh_server)
    people = await write_session(api)
    (_, ada), (_, bo) = people[0], people[1]
    before = await snapshot(api, people)

    ledger = sql(
        fresh_server,
        "SELECT version FROM points_ledger WHERE tenant = ? AND participant_id = ? ORDER BY version",
        (ACME, ada),
    )
    assert len(ledger) == 5
    sql(
        fresh_server,
        "UPDATE participants SET balance = 999 WHERE tenant = ? AND participant_id = ?",
        (ACME, ada),
    )
    sql(
        fresh_server,
        "DELETE FROM points_ledger WHERE tenant = ? AND participant_id = ? AND version = ?",
        (ACME, ada, ledger[1][0]),
    )
    # another participant, corrupted too: a repair of ada must leave bo's rows exactly as they are
    sql(
        fresh_server,
        "UPDATE participants SET display_name = 'CORRUPT' WHERE tenant = ? AND participant_id = ?",
        (ACME, bo),
    )
    assert (await api.points(ada))["balance"] == 999
    assert (await api.ledger(ada))["total"] == 4
    bo_rows = raw_rows(fresh_server, ACME, bo)
    others = {
        pid: raw_rows(fresh_server, t, pid)
        for t, pid in ((ACME, people[2][1]), (GLOBEX, people[3][1]))
    }

    done = gamify_replay(fresh_server, "--participant", ada, "--tenant", ACME)
    assert done.returncode == 0, show(done)

    after = await snapshot(api, people[:1])
    assert_same({k: v for k, v in before.items() if k[0] == "missing" or ada in k[1]}, after)
    assert raw_rows(fresh_server, ACME, bo) == bo_rows
    assert (await api.get(f"/participants/{bo}")).body["display_name"] == "CORRUPT"
    for (t, pid), rows_before in zip(
        ((ACME, people[2][1]), (GLOBEX, people[3][1])), others.values(), strict=True
    ):
        assert raw_rows(fresh_server, t, pid) == rows_before
    # no repair tables are left behind, and the repaired participant takes writes again
    tables = {
        r[0] for r in sql(fresh_server, "SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert not {t for t in tables if t.endswith("__repair")}, tables
    r = await api.award(ada, 6)
    assert r.status == 200 and r.body["new_balance"] == 40, r


# --------------------------------------------------------------------------------------------
# (d) verify


async def test_verify_reports_a_corrupted_row_until_a_replay_swaps_a_fresh_copy_in(
    fresh_server: Server, api_for: Callable[[Server], Api]
) -> None:
    api = api_for(fresh_server)
    people = await write_session(api)
    bo = people[1][1]
    before = await snapshot(api, people)

    clean = gamify_replay(fresh_server, "--verify")
    assert clean.returncode == 0, show(clean)
    assert "0 differences" in clean.stderr, show(clean)

    sql(
        fresh_server,
        "UPDATE participants SET total_earned = 12345 WHERE tenant = ? AND participant_id = ?",
        (ACME, bo),
    )
    done = gamify_replay(fresh_server, "--verify")
    assert done.returncode == 1, show(done)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, show(done)
    assert lines[0].startswith("participants ") and f"'{ACME}', '{bo}'" in lines[0], show(done)
    assert "total_earned live 12345 != rebuilt " in lines[0], show(done)
    assert "1 differences" in done.stderr, show(done)
    # a second --verify rebuilds (the code may have changed), it does not reuse the first copy
    replayed = re.search(r"gamify replay: (\d+) commits in", done.stderr)
    assert replayed and int(replayed.group(1)) > 0, show(done)
    assert "continued" not in done.stderr, show(done)

    swapped = gamify_replay(fresh_server, "--swap")
    assert swapped.returncode == 0, show(swapped)
    assert "continued the shadow copy left at partition:offset" in swapped.stderr, show(swapped)
    again = gamify_replay(fresh_server, "--verify")
    assert again.returncode == 0, show(again)
    assert again.stdout.strip() == "", show(again)
    assert_same(before, await snapshot(api, people))


# --------------------------------------------------------------------------------------------
# (e) replay and swap while the server keeps taking writes


async def settled_award(api: Api, pid: str, amount: int, key: str) -> Any:
    """Retry one award under its key until the answer is definite (never 503 or no answer)."""
    last: Any = None
    for _ in range(80):
        try:
            reply = await api.award(pid, amount, idem=key, reason=key)
        except (TimeoutError, aiohttp.ClientError) as exc:
            last = exc
        else:
            if reply.status != 503:
                return reply
            last = reply
        await asyncio.sleep(0.25)
    pytest.fail(f"award {key} never settled: {last!r}")


MAX_REPLAYS_DURING_BURST = 8
WRITERS = 10


async def whole_ledger(api: Api, pid: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    page = 1
    while True:
        found = await api.ledger(pid, page=page, page_size=100)
        entries.extend(found["transactions"])
        if len(entries) >= found["total"] or not found["transactions"]:
            return entries
        page += 1


async def test_replays_during_a_burst_of_writes_lose_and_double_nothing(
    fresh_server: Server, api_for: Callable[[Server], Api]
) -> None:
    api = api_for(fresh_server)
    pids = [uid("burst") for _ in range(WRITERS)]
    acked: dict[str, dict[str, tuple[str, int]]] = {pid: {} for pid in pids}
    acked_while_replaying = 0
    replaying = asyncio.Event()
    replays_done = asyncio.Event()

    async def writer(pid: str) -> None:
        nonlocal acked_while_replaying
        n = 0
        while n < 10 or not replays_done.is_set():
            n += 1
            key, amount = f"{pid}-{n}", 1 + n % 9
            reply = await settled_award(api, pid, amount, key)
            assert reply.status == 200, reply
            acked[pid][key] = (reply.body["transaction_id"], amount)
            if replaying.is_set() and not replays_done.is_set():
                acked_while_replaying += 1

    async def one_replay() -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *GAMIFY,
            "replay",
            cwd=PROJECT_ROOT,
            env=cli_env(fresh_server),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 90)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def replayer() -> list[tuple[int, str, str]]:
        """Full rebuilds and swaps, one after the other, while the writers keep going."""
        while sum(len(a) for a in acked.values()) < 20:
            await asyncio.sleep(0.02)
        replaying.set()
        done: list[tuple[int, str, str]] = []
        try:
            while len(done) < MAX_REPLAYS_DURING_BURST and (not done or done[-1][0] == 0):
                done.append(await one_replay())
            return done
        finally:
            replays_done.set()

    results = await asyncio.gather(replayer(), *(writer(pid) for pid in pids))
    failed = [f"exit {c}\n{out}\n{err}" for c, out, err in results[0] if c != 0]
    assert not failed, f"replay {len(results[0])} of a burst failed:\n" + "\n".join(failed)
    assert acked_while_replaying > 0, "no write was acknowledged while a replay ran"

    for pid in pids:
        points = await api.points(pid)
        total = sum(amount for _, amount in acked[pid].values())
        assert (points["balance"], points["total_earned"]) == (total, total), (pid, points, total)
        ledger = await whole_ledger(api, pid)
        assert len(ledger) == len(acked[pid]), (pid, len(ledger), len(acked[pid]))
        by_reason = {e["reason"]: e for e in ledger}
        assert set(by_reason) == set(acked[pid]), "a commit was lost or doubled across a swap"
        for key, (tx_id, amount) in acked[pid].items():
            assert (by_reason[key]["id"], by_reason[key]["amount"]) == (tx_id, amount), key
        # a retried key (the same request again) still answers with its original transaction
        key = next(iter(acked[pid]))
        r = await api.award(pid, acked[pid][key][1], idem=key, reason=key)
        assert r.status == 200 and r.body["transaction_id"] == acked[pid][key][0], r

    done = gamify_replay(fresh_server, "--verify")
    assert done.returncode == 0, show(done)
    assert re.search(r"\b0 differences", done.stderr), show(done)


# --------------------------------------------------------------------------------------------
# The SQLite lock bug behind (e), made deterministic


@pytest.fixture
def embedded_server(server_factory: Callable) -> Iterator[Server]:
    srv = server_factory("embedded").start()
    yield srv
    srv.stop(signal.SIGKILL)


async def until_file_opened(proc: subprocess.Popen, path: Path, within: float) -> None:
    """Wait until process ``proc`` holds ``path`` open (its /proc fd table); fail on exit."""
    deadline, target = time.monotonic() + within, path.resolve()
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the replay ended early\n{proc.communicate()}"
        fds = Path(f"/proc/{proc.pid}/fd")
        with contextlib.suppress(OSError):
            if any(_link(fd) == target for fd in fds.iterdir()):
                return
        await asyncio.sleep(0.05)
    pytest.fail(f"the replay did not open {path} within {within}s")


def _link(fd: Path) -> Path | None:
    try:
        return Path(os.readlink(fd))
    except OSError:
        return None


async def test_a_replay_waits_for_another_writer_of_the_read_model_file(
    embedded_server: Server, api_for: Callable[[Server], Api]
) -> None:
    """Another process (here the test, as the live projector mid-batch) holds the write lock of
    gamify.db for a few seconds: the replay must wait for it (busy timeout), not give up."""
    api = api_for(embedded_server)
    people = await write_session(api)
    before = await snapshot(api, people)

    other = sqlite3.connect(read_model_file(embedded_server), timeout=30, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE participants SET balance = balance + 1")  # a batch in progress
        other.execute("UPDATE participants SET balance = balance - 1")
        proc = subprocess.Popen(  # noqa: S603
            [*GAMIFY, "replay"],
            cwd=PROJECT_ROOT,
            env=cli_env(embedded_server),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Hold the lock until the replay has the file open and has been kept waiting a while:
        # released any sooner, the replay may never have met the lock at all.
        await until_file_opened(proc, read_model_file(embedded_server), within=60)
        await asyncio.sleep(3)  # the replay's first write (its fresh tables) waits meanwhile
        assert proc.poll() is None, f"the replay did not wait for the lock\n{proc.communicate()}"
        other.execute("COMMIT")  # the other writer's batch is done
    finally:
        other.close()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    assert_same(before, await snapshot(api, people))


# --------------------------------------------------------------------------------------------
# (f) --into a fresh store (SQLite file or PostgreSQL schema that holds nothing yet)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'elsewhere.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


async def test_replay_into_a_fresh_store_builds_it_and_verifies_clean(
    embedded_server: Server, api_for: Callable[[Server], Api], fresh_store_url: str
) -> None:
    api = api_for(embedded_server)
    people = await write_session(api)
    live = {pid: raw_rows(embedded_server, tenant, pid) for tenant, pid in _tenants(people)}

    done = gamify_replay(embedded_server, "--into", fresh_store_url)
    assert done.returncode == 0, show(done)
    checked = gamify_replay(embedded_server, "--into", fresh_store_url, "--verify")
    assert checked.returncode == 0, show(checked)
    assert re.search(r"\b0 differences", checked.stderr), show(checked)
    assert live == {
        pid: raw_rows(embedded_server, tenant, pid) for tenant, pid in _tenants(people)
    }  # the live store is only read


@pytest.mark.parametrize("target", ["into", "swap"])
async def test_a_rebuild_in_two_processes_equals_the_live_read_models(
    server_factory: Callable,
    api_for: Callable[[Server], Api],
    postgres_schema_url: str,
    tmp_path: Path,
    target: str,
) -> None:
    """`--processes 2` on Kafka: the partitions split between two spawned processes, both
    writing one PostgreSQL store. ``into``: a copy in another schema verifies clean against the
    live (SQLite) store, row by row. ``swap``: the live store is PostgreSQL; its shadow copy is
    swapped in, every GET answers as before, and a single-process rebuild verifies clean."""
    srv = server_factory("kafka")
    if target == "swap":
        srv.env["GAMIFY_DATABASE_URL"] = postgres_schema_url
    srv.start()
    api = api_for(srv)
    people = await write_session(api)
    spread = [uid(f"p{i}") for i in range(24)]  # commits on (almost surely) every partition
    for i, pid in enumerate(spread):
        assert (await api.award(pid, 1 + i, idem=f"k-{pid}")).status == 200
    people += [(ACME_KEY, pid) for pid in spread]
    before = await snapshot(api, people)
    into = ["--into", postgres_schema_url] if target == "into" else []

    done = gamify_replay(srv, *into, "--processes", "2", timeout=180)
    assert done.returncode == 0, show(done)
    assert "(2 processes)" in done.stderr, show(done)
    checked = gamify_replay(srv, *into, "--verify", timeout=180)
    assert checked.returncode == 0, show(checked)
    assert re.search(r"\b0 differences", checked.stderr), show(checked)
    assert_same(before, await snapshot(api, people))


def test_several_processes_are_refused_where_only_one_writer_or_partition_exists(
    server_factory: Callable, tmp_path: Path
) -> None:
    """SQLite takes one writer, the embedded log has one partition: exit 2 before any work."""
    kafka, embedded = server_factory("kafka"), server_factory("embedded")
    done = gamify_replay(kafka, "--into", f"sqlite:///{tmp_path / 'x.db'}", "--processes", "2")
    assert done.returncode == 2 and "PostgreSQL target" in done.stderr, show(done)
    assert not (tmp_path / "x.db").exists()
    embedded.env["GAMIFY_DATABASE_URL"] = "postgresql://127.0.0.1:5432/test"
    done = gamify_replay(embedded, "--processes", "2")
    assert done.returncode == 2 and "Kafka log" in done.stderr, show(done)
    done = gamify_replay(embedded, "--processes", "0")
    assert done.returncode == 2 and "at least 1" in done.stderr, show(done)


def _tenants(people: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(GLOBEX if key == GLOBEX_KEY else ACME, pid) for key, pid in people]


async def test_a_failed_replay_prints_one_line_and_the_traceback_only_at_debug(
    embedded_server: Server, api_for: Callable[[Server], Api], tmp_path: Path
) -> None:
    await api_for(embedded_server).award(uid("fail"), 1)
    (tmp_path / "a-file").write_text("not a directory")
    unreachable = f"sqlite:///{tmp_path / 'a-file' / 'store.db'}"
    done = gamify_replay(embedded_server, "--into", unreachable, timeout=60)
    assert done.returncode == 3, show(done)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gamify replay: failed:"), show(done)
    assert "Traceback" not in done.stderr, show(done)

    embedded_server.env["GAMIFY_LOG_LEVEL"] = "DEBUG"
    try:
        verbose = gamify_replay(embedded_server, "--into", unreachable, timeout=60)
    finally:
        embedded_server.env["GAMIFY_LOG_LEVEL"] = "WARNING"
    assert verbose.returncode == 3, show(verbose)
    assert "Traceback" in verbose.stderr, show(verbose)
