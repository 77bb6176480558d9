"""Helpers of the system tests: gamify processes, Kafka plumbing, a known workload, store reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from projections.db import Database, rows
from schemas.events import (
    Causation,
    Commit,
    Event,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
)
from services.adapters.kafka_event_log import KafkaEventLog
from tests.kafka_broker import Broker, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 40.0
SESSION_TIMEOUT_MS = "2000"  # tansu holds a new group's first join for half of it


def new_prefix() -> str:
    """A topic prefix (and so consumer groups) no other test uses."""
    return f"sys{uuid.uuid4().hex[:10]}."


def kafka_env(broker: Broker, prefix: str, partitions: int) -> dict[str, str]:
    """Environment of a gamify process on ``broker`` under ``prefix``."""
    env = {
        "GAMIFY_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "GAMIFY_KAFKA_TOPIC_PREFIX": prefix,
        "GAMIFY_KAFKA_PARTITIONS": str(partitions),
        "GAMIFY_KAFKA_SESSION_TIMEOUT_MS": SESSION_TIMEOUT_MS,
        "GAMIFY_LOG_LEVEL": os.environ.get("GAMIFY_SYSTEM_LOG_LEVEL", "WARNING"),
    }
    if not broker.idempotence_supported:
        env["GAMIFY_KAFKA_IDEMPOTENCE"] = "false"
    return env


# --------------------------------------------------------------------------------------------
# Processes


class GamifyProcess:
    """One `python -m services <command>` process; start it, kill it, start it again."""

    def __init__(self, command: str, env: dict[str, str], workdir: Path) -> None:
        self.command = command
        self.env = dict(env)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.runs = 0
        self.exit_codes: list[int] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self, *, same_port: bool = False) -> GamifyProcess:
        """Start the process without waiting for it (see ``wait_healthy``).

        ``same_port``: listen where the last run did, as a restarted service does.
        """
        assert not self.running, f"{self.command} already running"
        self.runs += 1
        if not (same_port and self.port):
            self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GAMIFY_")}
        env.update(self.env)
        env.setdefault("GAMIFY_DATA_DIR", str(self.workdir / "data"))
        env["PYTHONUNBUFFERED"] = "1"
        log = self._log_path().open("wb")
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services",
                    self.command,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()  # the child holds its own descriptor
        return self

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> GamifyProcess:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.exit_codes.append(self.proc.returncode)
                pytest.fail(
                    f"gamify {self.command} exited with {self.proc.returncode} during start-up\n"
                    f"{self.tail()}",
                    pytrace=False,
                )
            if self._healthy():
                return self
            time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"gamify {self.command} not healthy within {timeout:g}s\n{self.tail()}", pytrace=False
        )

    def start(self, timeout: float = START_TIMEOUT) -> GamifyProcess:
        return self.spawn().wait_healthy(timeout)

    def kill(self) -> int | None:
        """SIGKILL: no clean-up at all, as in a crash or an OOM kill."""
        return self._signal(signal.SIGKILL, 10)

    def terminate(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, as an orchestrator stops a process; SIGKILL if it does not stop in time."""
        return self._signal(signal.SIGTERM, timeout)

    def _signal(self, sig: int, timeout: float) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.proc = None
        self.exit_codes.append(proc.returncode)
        return proc.returncode

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as reply:  # noqa: S310
                return reply.status == 200 and json.loads(reply.read()).get("status") == "ok"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.base_url}/metrics", timeout=5) as reply:  # noqa: S310
            return str(reply.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
        return metric_sum(self.metrics_text(), name, **labels)

    def _log_path(self, run: int | None = None) -> Path:
        return self.workdir / f"{self.command}-run{run or self.runs}.log"

    def tail(self, chars: int = 3000) -> str:
        parts = []
        for run in range(max(1, self.runs - 1), self.runs + 1):
            with contextlib.suppress(OSError):
                text = self._log_path(run).read_bytes().decode(errors="replace")
                parts.append(
                    f"--- {self.command} run {run} (last {chars} chars) ---\n{text[-chars:]}"
                )
        return "\n".join(parts)

    def log_text(self) -> str:
        """Everything every run wrote."""
        out = []
        for run in range(1, self.runs + 1):
            with contextlib.suppress(OSError):
                out.append(self._log_path(run).read_bytes().decode(errors="replace"))
        return "\n".join(out)


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


# --------------------------------------------------------------------------------------------
# Waiting


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    done: Callable[[Any], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    context: Callable[[], str] = lambda: "",
) -> Any:
    """Poll ``probe`` until ``done(value)``; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await probe()
        if done(last):
            return last
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what}: not reached within {timeout:g}s; last: {last!r}\n{context()}",
                pytrace=False,
            )
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------------------------
# Kafka


class TopicOffsets:
    """End offsets of topics, read by a consumer that joins no group."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> TopicOffsets:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def end_offsets(self, topic: str) -> dict[int, int]:
        await self.consumer.topics()  # refresh metadata without naming (auto-creating) the topic
        partitions = self.consumer.partitions_for_topic(topic) or set()
        assert partitions, f"topic {topic} does not exist"
        found = await self.consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in found.items()}


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record currently on ``topic`` (all partitions, from the beginning)."""
    async with TopicOffsets(bootstrap) as offsets:
        ends = await offsets.end_offsets(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in ends]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        found: list[Any] = []
        deadline = time.monotonic() + 20
        while [tp for tp in tps if await consumer.position(tp) < ends[tp.partition]]:
            assert time.monotonic() < deadline, f"could not read {topic} up to {ends}"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------------------------
# The known workload of commits


@dataclass
class Expected:
    """What the read model of one participant must hold once every commit is projected."""

    tenant: str
    participant_id: str
    version: int = 0
    balance: int = 0
    total_earned: int = 0
    total_spent: int = 0
    ledger: list[tuple[str, str, int, int]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)


@dataclass
class Workload:
    """Per participant, the records to append in order; and the totals they must produce."""

    chains: list[list[Commit]]
    expected: dict[tuple[str, str], Expected]
    outcomes: Counter[str]  # verdict -> number of distinct commits with that verdict
    duplicates: int  # records that repeat an earlier commit (same commit_id)

    @property
    def records(self) -> int:
        return sum(len(chain) for chain in self.chains)

    def phases(self, count: int) -> list[list[list[Commit]]]:
        """Split every chain into ``count`` consecutive slices (phase k = k-th slice of each)."""
        out: list[list[list[Commit]]] = [[] for _ in range(count)]
        for chain in self.chains:
            size = len(chain)
            for k in range(count):
                piece = chain[k * size // count : (k + 1) * size // count]
                if piece:
                    out[k].append(piece)
        return out


def make_workload(
    participants: int,
    commits_per_participant: int,
    *,
    seed: int,
    tenants: Iterable[str] = ("acme", "globex"),
) -> Workload:
    """A deterministic workload with deliberate duplicates, stale and key-reusing commits.

    * version 0: ParticipantRegistered(auto_created) + PointsAwarded;
    * then PointsAwarded / PointsDeducted with a consistent ``balance_after``;
    * ~3%: the previous commit appended again (same commit_id: a redelivery, no new verdict);
    * ~3%: a stale commit decided on an older version (verdict ``conflict``);
    * ~2%: a new commit reusing an applied commit's idempotency key (verdict ``duplicate``).
    """
    rng = random.Random(seed)
    tenant_list = list(tenants)
    chains: list[list[Commit]] = []
    expected: dict[tuple[str, str], Expected] = {}
    outcomes: Counter[str] = Counter()
    duplicates = 0
    serial = 0

    def stamp() -> str:
        return (
            f"2026-02-14T{10 + serial // 3600 % 10:02d}:{serial // 60 % 60:02d}:{serial % 60:02d}Z"
        )

    for i in range(participants):
        tenant = tenant_list[i % len(tenant_list)]
        pid = f"p{i:04d}-{seed}"
        exp = Expected(tenant, pid)
        expected[(tenant, pid)] = exp
        chain: list[Commit] = []
        while len(chain) < commits_per_participant:
            serial += 1
            cid = f"c{seed}-{serial:07d}"
            roll = rng.random()
            if chain and roll < 0.03:
                chain.append(chain[-1])  # the same commit appended twice
                duplicates += 1
                continue
            if exp.version >= 1 and roll < 0.06:
                stale = rng.randrange(exp.version)
                chain.append(
                    _commit(
                        cid,
                        tenant,
                        pid,
                        stale,
                        stamp(),
                        "points.award",
                        None,
                        (PointsAwarded(f"tx-{cid}", 5, 999),),
                    )
                )
                outcomes["conflict"] += 1
                continue
            if exp.keys and roll < 0.08:
                key = sorted(exp.keys)[rng.randrange(len(exp.keys))]
                chain.append(
                    _commit(
                        cid,
                        tenant,
                        pid,
                        exp.version,
                        stamp(),
                        "points.award",
                        key,
                        (PointsAwarded(f"tx-{cid}", 7, exp.balance + 7),),
                    )
                )
                outcomes["duplicate"] += 1
                continue
            key = f"k-{cid}" if rng.random() < 0.5 else None
            events: tuple[Event, ...]
            if exp.version == 0:
                amount = rng.randint(1, 500)
                events = (
                    ParticipantRegistered(auto_created=True),
                    PointsAwarded(f"tx-{cid}", amount, amount, "welcome", {"n": serial}),
                )
                exp.ledger.append((f"tx-{cid}", "award", amount, amount))
                exp.balance = exp.total_earned = amount
                command = "points.award"
            elif exp.balance > 0 and rng.random() < 0.4:
                amount = rng.randint(1, exp.balance)
                exp.balance -= amount
                exp.total_spent += amount
                events = (PointsDeducted(f"tx-{cid}", amount, exp.balance, "spend", {}),)
                exp.ledger.append((f"tx-{cid}", "deduct", -amount, exp.balance))
                command = "points.deduct"
            else:
                amount = rng.randint(1, 500)
                exp.balance += amount
                exp.total_earned += amount
                events = (PointsAwarded(f"tx-{cid}", amount, exp.balance, None, {}),)
                exp.ledger.append((f"tx-{cid}", "award", amount, exp.balance))
                command = "points.award"
            chain.append(_commit(cid, tenant, pid, exp.version, stamp(), command, key, events))
            exp.version += 1
            if key is not None:
                exp.keys.add(key)
            outcomes["applied"] += 1
        chains.append(chain)
    return Workload(chains, expected, outcomes, duplicates)


def _commit(
    cid: str,
    tenant: str,
    pid: str,
    version: int,
    at: str,
    command: str,
    key: str | None,
    events: tuple[Event, ...],
) -> Commit:
    return Commit(
        cid, tenant, pid, version, at, Causation(command, "system-test", cid, key), events
    )


async def append_chains(
    log: KafkaEventLog,
    chains: list[list[Commit]],
    *,
    pause: float = 0.0,
    ends: dict[int, int] | None = None,
) -> dict[int, int]:
    """Append every chain in order, the chains concurrently, ``pause`` seconds between appends.

    Returns (and keeps updating ``ends`` with) the next offset per partition after the
    acknowledged appends. Tests compare store positions with these rather than with ListOffsets:
    tansu's "latest" offset can stay one short of the last acknowledged record after concurrent
    produces (the record itself is fetchable).
    """
    acked: dict[int, int] = {} if ends is None else ends

    async def one(chain: list[Commit], offset: float) -> None:
        await asyncio.sleep(offset)
        for commit in chain:
            at = await log.append(commit)
            acked[at.partition] = max(acked.get(at.partition, 0), at.offset + 1)
            if pause:
                await asyncio.sleep(pause)

    await asyncio.gather(*(one(c, pause * i / max(1, len(chains))) for i, c in enumerate(chains)))
    return acked


def merge_ends(*found: dict[int, int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for ends in found:
        for p, n in ends.items():
            out[p] = max(out.get(p, 0), n)
    return out


# --------------------------------------------------------------------------------------------
# Reading a store


def positions(db: Database, topic: str) -> dict[int, int]:
    """The store's next offset per partition of ``topic``."""
    prefix = f"participants:{topic}:"
    with db.transaction(commit=False) as c:
        c.execute(
            "SELECT application_name, MAX(notification_id) FROM tracking GROUP BY application_name"
        )
        found = rows(c)
    return {int(name[len(prefix) :]): int(n) for name, n in found if name.startswith(prefix)}


def table(db: Database, sql: str) -> list[tuple[Any, ...]]:
    with db.transaction(commit=False) as c:
        c.execute(sql)
        return rows(c)


def verify_store(db: Database, workload: Workload) -> None:
    """Every participant row, ledger line and verdict count equals what the workload implies."""
    found = {
        (r[0], r[1]): r
        for r in table(
            db,
            "SELECT tenant, participant_id, version, balance, total_earned, "
            "total_spent FROM participants",
        )
    }
    assert set(found) == set(workload.expected), "participants differ"
    wrong = [
        (key, found[key][2:], (e.version, e.balance, e.total_earned, e.total_spent))
        for key, e in workload.expected.items()
        if found[key][2:] != (e.version, e.balance, e.total_earned, e.total_spent)
    ]
    assert not wrong, f"{len(wrong)} participants differ (found, expected): {wrong[:5]}"

    ledger: dict[tuple[str, str], list[tuple[str, str, int, int]]] = {}
    for t, p, tx, kind, amount, after in table(
        db,
        "SELECT tenant, participant_id, transaction_id, kind, amount, balance_after "
        "FROM points_ledger ORDER BY tenant, participant_id, version, idx",
    ):
        ledger.setdefault((t, p), []).append((tx, kind, amount, after))
    bad_ledger = [k for k, e in workload.expected.items() if ledger.get(k, []) != e.ledger]
    assert not bad_ledger, (
        f"{len(bad_ledger)} ledgers differ, e.g. {bad_ledger[0]}: "
        f"{ledger.get(bad_ledger[0])} != {workload.expected[bad_ledger[0]].ledger}"
    )
    assert sum(len(v) for v in ledger.values()) == sum(
        len(e.ledger) for e in workload.expected.values()
    )

    statuses = dict(table(db, "SELECT status, COUNT(*) FROM commit_outcomes GROUP BY status"))
    assert statuses == dict(workload.outcomes), "verdict counts differ"
    keys = table(db, "SELECT COUNT(*) FROM idempotency_keys")[0][0]
    assert keys == sum(len(e.keys) for e in workload.expected.values())
    assert table(db, "SELECT COUNT(*) FROM quarantined_records")[0][0] == 0
