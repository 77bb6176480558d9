"""Rebuild read models from the log: into shadow tables then swap, verify, or repair participants.

It reuses the live projection's runner, fold and store; only the table suffix and, for a repair,
a filter on the commits differ. Positions decide everything: a rebuilt copy is swapped in or
compared only while the live positions are locked and equal to (or behind) the rebuilt ones.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from projections import runner
from projections.data_keys import DataKeyStore, open_data_keys
from projections.db import Database, open_database
from projections.participants.schema import TABLES
from projections.participants.store import PROJECTION, participant_store
from projections.rebuild import (
    Difference,
    TableSet,
    compare,
    copy_participant_rows,
    drop_tables,
    swap_in,
)
from projections.sources import LogSource
from schemas.events import DEFINITION, Commit

logger = logging.getLogger(__name__)

READ_MODELS = {
    "participants": TableSet(
        tuple(TABLES),
        {name: table.primary_key for name, table in TABLES.items()},
        tuple(name for name, table in TABLES.items() if table.per_participant),
    )
}
REBUILD, REPAIR = "__rebuild", "__repair"
OK, DIFFERENT, USAGE, FAILED = 0, 1, 2, 3


class ReplayError(Exception):
    """The replay could not finish (log or store unreachable, live projector not keeping up)."""


@dataclass(slots=True)
class ReplayOptions:
    database_url: str
    topic: str
    new_source: Callable[[], LogSource]
    end_offsets: Callable[[], Awaitable[dict[int, int]]]
    read_models: tuple[str, ...] = tuple(READ_MODELS)
    into_url: str | None = None
    tenant: str | None = None
    participant: str | None = None
    verify: bool = False
    swap: bool = True
    resume: bool = False
    settle_timeout: float = 60.0
    keys_url: str | None = None  # the data-key store (projections.data_keys); None: erased reads
    master_key: bytes | None = None
    out: TextIO = field(default_factory=lambda: sys.stderr)
    # Records per read (and so at most per transaction): a rebuild has no waiter whose latency a
    # big transaction would hurt, and each participant row is then written once per batch
    # instead of once per few commits (issue 11: 1.2-1.5x faster than the live 1,000).
    batch_records: int = 5000
    # Processes that rebuild at once (issue 11: a rebuild on more than one core). Each takes a
    # share of the partitions into the same PostgreSQL store; ``worker`` runs in each of them
    # (a module-level function, spawned: it builds its own log source and store from ``spec``).
    processes: int = 1
    worker: Callable[[WorkerSpec], None] | None = None


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one rebuild process projects: ``until`` (partition -> end offset, exclusive) of
    ``topic`` into the store at ``target_url`` (its tables named with ``suffix``), folding only
    the commits of ``tenant``/``participant`` when a repair names them; sealed fields opened
    with the data-key store at ``keys_url`` (None: read as erased, as in the parent)."""

    target_url: str
    suffix: str
    topic: str
    until: dict[int, int]
    tenant: str | None = None
    participant: str | None = None
    batch_records: int = 5000
    keys_url: str | None = None


def selection(tenant: str | None, participant: str | None) -> Callable[[Commit], bool] | None:
    """The commits a repair folds (None: all). The tenant's definitions are folded too (into the
    copy only: they are not participant rows, so never copied back): leaderboard scores are kept
    for active metrics only."""
    if tenant is None and participant is None:
        return None
    return lambda c: (
        (tenant is None or c.tenant == tenant)
        and (participant is None or c.participant_id == participant or c.stream == DEFINITION)
    )


async def project_share(spec: WorkerSpec, source: LogSource, keys: DataKeyStore | None) -> int:
    """A rebuild process's work: fold ``spec.until`` from ``source`` (reading only those
    partitions) into its store; the records folded. The store's positions make it resumable:
    a share killed half-way continues where its last batch committed."""
    db = open_database(spec.target_url)
    try:
        store = participant_store(
            db, suffix=spec.suffix, only=selection(spec.tenant, spec.participant), keys=keys
        )
        stats = await runner.run(
            source,
            store,
            asyncio.Event(),
            until=spec.until,
            max_records=spec.batch_records,
            poll_timeout=0.5,
        )
        return stats.records
    finally:
        db.close()


def shares(work: dict[int, int], processes: int) -> list[list[int]]:
    """Partitions split into at most ``processes`` groups of about equal work (records left per
    partition in ``work``), largest first onto the least-loaded group; partitions with no work
    are left out, and there are never more groups than partitions with work (so a huge
    ``processes`` costs nothing). Deterministic."""
    busy = sum(1 for n in work.values() if n > 0)
    groups: list[tuple[int, list[int]]] = [(0, []) for _ in range(max(1, min(processes, busy)))]
    for partition in sorted(work, key=lambda p: (-work[p], p)):
        if work[partition] <= 0:
            continue
        load, members = min(groups, key=lambda g: g[0])
        groups[groups.index((load, members))] = (load + work[partition], [*members, partition])
    return [sorted(members) for _, members in groups if members]


@dataclass(slots=True)
class ReplayResult:
    """``commits``: log records folded (one commit holds one or more events); ``resumed_from``:
    the shadow copy's positions (partition -> next offset) when an earlier copy was continued."""

    commits: int = 0
    seconds: float = 0.0
    differences: list[Difference] = field(default_factory=list)
    resumed_from: dict[int, int] | None = None

    def summary(self, verify: bool) -> str:
        """``<n> commits in <s>s[ (continued ...)]; <d> differences|done``."""
        resumed = ""
        if self.resumed_from is not None:
            at = ", ".join(f"{p}:{n}" for p, n in sorted(self.resumed_from.items())) or "start"
            resumed = f" (continued the shadow copy left at partition:offset {at})"
        verdict = f"{len(self.differences)} differences" if verify else "done"
        return f"{self.commits} commits in {self.seconds:.1f}s{resumed}; {verdict}"

    @property
    def exit_code(self) -> int:
        return DIFFERENT if self.differences else OK


async def replay(opts: ReplayOptions) -> ReplayResult:
    """Run the replay ``opts`` describe; raise ReplayError when it cannot finish."""
    unknown = set(opts.read_models) - set(READ_MODELS)
    if unknown:
        raise ValueError(f"unknown read model(s): {', '.join(sorted(unknown))}")
    live_db = open_database(opts.database_url)
    target_db = open_database(opts.into_url) if opts.into_url else live_db
    keys = None
    try:
        if opts.keys_url is not None:
            keys = open_data_keys(opts.keys_url, master_key=opts.master_key, must_exist=True)
        return await _Replay(opts, live_db, target_db, keys).run()
    finally:
        if keys is not None:
            keys.close()
        if target_db is not live_db:
            target_db.close()
        live_db.close()


class _Replay:
    def __init__(
        self,
        opts: ReplayOptions,
        live_db: Database,
        target_db: Database,
        keys: DataKeyStore | None = None,
    ) -> None:
        self.opts, self.live_db, self.target_db = opts, live_db, target_db
        self.tables = READ_MODELS["participants"]
        self.repair = opts.tenant is not None or opts.participant is not None
        self.suffix = "" if opts.into_url else (REPAIR if self.repair else REBUILD)
        self.live = participant_store(live_db, keys=keys)
        self.target = participant_store(
            target_db, suffix=self.suffix, only=self._selected(), keys=keys
        )
        self.result = ReplayResult()

    def _selected(self) -> Callable[[Commit], bool] | None:
        return selection(self.opts.tenant, self.opts.participant)

    async def run(self) -> ReplayResult:
        started = time.monotonic()
        await asyncio.to_thread(self.live.create_table)
        if self.opts.resume and not self.repair and not self.opts.into_url:
            await asyncio.to_thread(self.target.create_table)  # continue an earlier rebuild
            partitions = sorted(await self.opts.end_offsets())
            self.result.resumed_from = await asyncio.to_thread(
                self.target.next_offsets, self.opts.topic, partitions
            )
        else:
            await asyncio.to_thread(self._fresh_target)
        ends = await self.opts.end_offsets()
        label = "rebuilding" if not self.repair else "repairing"
        if self.opts.processes > 1 and self.opts.worker is not None:
            await self._project_in_processes(ends, label)
        await self._project_until(ends, label)  # all of it, or what the processes left
        if self.repair:
            await self._settle(self._copy_repaired, exact=True)
            await asyncio.to_thread(self._drop_target)
        elif self.opts.verify:
            self.result.differences = await self._settle(self._compare, exact=True)
        elif self.opts.swap and not self.opts.into_url:
            await self._settle(self._swap, exact=False)
        self.result.seconds = time.monotonic() - started
        return self.result

    def _fresh_target(self) -> None:
        self.target.create_table()  # a fresh --into store has no tracking table to clear yet
        drop_tables(self.target_db, self.tables, self.suffix, f"{PROJECTION}{self.suffix}")
        self.target.create_table()

    def _drop_target(self) -> None:
        drop_tables(self.target_db, self.tables, self.suffix, f"{PROJECTION}{self.suffix}")

    async def _project_until(self, until: dict[int, int], label: str) -> None:
        start = await asyncio.to_thread(self.target.next_offsets, self.opts.topic, sorted(until))
        bar = ProgressBar(label, start, until, self.opts.out)
        stats = await runner.run(
            self.opts.new_source(),
            self.target,
            asyncio.Event(),
            until=until,
            on_advance=bar.advance,
            max_records=self.opts.batch_records,
            poll_timeout=0.5,
        )
        bar.finish()
        self.result.commits += stats.records

    async def _project_in_processes(self, until: dict[int, int], label: str) -> None:
        """Fold ``until`` in ``opts.processes`` spawned processes, each a share of the partitions
        (``shares``), all into the target store; progress read from the store's positions.

        Raises ReplayError when a process fails (the others are stopped; their committed
        batches stay, so ``--swap`` or a new run continues). Only PostgreSQL takes several
        writers; the CLI refuses ``--processes`` for a SQLite target.
        """
        assert self.opts.worker is not None
        topic = self.opts.topic
        start = await asyncio.to_thread(self.target.next_offsets, topic, sorted(until))
        work = {p: end - start.get(p, 0) for p, end in until.items()}
        groups = shares(work, self.opts.processes)
        if len(groups) < 2:
            return  # one share: the in-process run does it without a spawn
        target_url = self.opts.into_url or self.opts.database_url
        ctx = multiprocessing.get_context("spawn")  # never fork a process with threads and loops
        procs = [
            ctx.Process(
                target=self.opts.worker,
                args=(
                    WorkerSpec(
                        target_url,
                        self.suffix,
                        topic,
                        {p: until[p] for p in group},
                        self.opts.tenant,
                        self.opts.participant,
                        self.opts.batch_records,
                        self.opts.keys_url,
                    ),
                ),
                name=f"gamify-replay-{i}",
                daemon=True,
            )
            for i, group in enumerate(groups)
        ]
        bar = ProgressBar(f"{label} ({len(procs)} processes)", start, until, self.opts.out)
        try:
            for proc in procs:
                proc.start()
            while any(proc.is_alive() for proc in procs):
                await asyncio.sleep(0.5)
                failed = [p for p in procs if p.exitcode not in (None, 0)]
                if failed:
                    raise ReplayError(
                        f"rebuild process {failed[0].name} failed (exit code "
                        f"{failed[0].exitcode}); the batches committed stay: run the replay "
                        "again with --swap to continue"
                    )
                for partition, offset in (
                    await asyncio.to_thread(self.target.next_offsets, topic, sorted(until))
                ).items():
                    bar.advance(partition, offset)
            failed = [p for p in procs if p.exitcode != 0]
            if failed:
                raise ReplayError(
                    f"rebuild process {failed[0].name} failed (exit code {failed[0].exitcode})"
                )
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            for proc in procs:
                await asyncio.to_thread(proc.join, 5)
        done = await asyncio.to_thread(self.target.next_offsets, topic, sorted(until))
        bar.positions.update(done)
        bar.finish()
        self.result.commits += sum(done.get(p, 0) - start.get(p, 0) for p in until)

    async def _settle(self, action: Callable[[Any, dict[int, int]], Any], *, exact: bool) -> Any:
        """Catch the rebuilt copy up with the live positions, then run ``action`` under lock.

        ``exact``: the positions must be equal (compare, repair); else the copy may be ahead
        (swap: the live projector then skips what the copy already holds).
        """
        deadline = time.monotonic() + self.opts.settle_timeout
        partitions = sorted(await self.opts.end_offsets())
        while time.monotonic() < deadline:
            live = await asyncio.to_thread(self.live.next_offsets, self.opts.topic, partitions)
            await self._project_until(live, "catching up")
            done = await asyncio.to_thread(self.target.next_offsets, self.opts.topic, partitions)
            if exact and any(done.get(p, 0) > live.get(p, 0) for p in partitions):
                await asyncio.sleep(0.2)  # the live projector is behind the copy: let it catch up
                continue
            outcome = await asyncio.to_thread(self._locked, action, partitions, done, exact)
            if outcome is not _MOVED:
                return outcome
        raise ReplayError(
            f"the live read models did not hold still at one position within "
            f"{self.opts.settle_timeout:g}s (is the live projector running and keeping up?)"
        )

    def _locked(
        self,
        action: Callable[[Any, dict[int, int]], Any],
        partitions: Sequence[int],
        done: dict[int, int],
        exact: bool,
    ) -> Any:
        with self.live_db.transaction(commit=True) as c:
            live = {p: self.live.lock_position(c, self.opts.topic, p) for p in partitions}
            if any(
                done.get(p, 0) != live[p] if exact else done.get(p, 0) < live[p] for p in partitions
            ):
                return _MOVED
            return action(c, live)

    def _swap(self, c: Any, live: dict[int, int]) -> None:
        swap_in(self.live_db, c, self.tables, self.suffix, PROJECTION, f"{PROJECTION}{self.suffix}")

    def _copy_repaired(self, c: Any, live: dict[int, int]) -> None:
        copy_participant_rows(
            c, self.live_db, self.tables, self.suffix, self.opts.tenant, self.opts.participant
        )

    def _compare(self, c: Any, live: dict[int, int]) -> list[Difference]:
        if self.target_db is self.live_db:
            return compare((self.live_db, c), (self.live_db, c), self.tables, "", self.suffix)
        with self.target_db.transaction(commit=False) as other:
            return compare((self.live_db, c), (self.target_db, other), self.tables)


_MOVED = object()


class ProgressBar:
    """Commits replayed, commits/s and ETA: a bar on a terminal, a line every 2 s otherwise."""

    def __init__(
        self, label: str, start: dict[int, int], until: dict[int, int], out: TextIO
    ) -> None:
        self.label, self.out = label, out
        self.start = start
        self.total = sum(max(0, end - start.get(p, 0)) for p, end in until.items())
        self.positions = dict(start)
        self.began = self.shown = time.monotonic()
        self.tty = out.isatty()

    def advance(self, partition: int, next_offset: int) -> None:
        self.positions[partition] = next_offset
        now = time.monotonic()
        if now - self.shown >= (0.2 if self.tty else 2.0):
            self.shown = now
            self._show(now)

    def _done(self) -> int:
        return sum(n - self.start.get(p, 0) for p, n in self.positions.items())

    def _show(self, now: float, end: str = "") -> None:
        done, elapsed = self._done(), max(now - self.began, 1e-9)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else 0.0
        share = done / self.total if self.total else 1.0
        if self.tty:
            bar = "#" * int(share * 30)
            self.out.write(
                f"\r{self.label} [{bar:<30}] {share:6.1%} {done}/{self.total} "
                f"{rate:,.0f} commits/s ETA {left:4.0f}s{end}"
            )
        else:
            self.out.write(
                f"{self.label}: {done}/{self.total} commits ({share:.1%}), "
                f"{rate:,.0f} commits/s, ETA {left:.0f}s\n"
            )
        self.out.flush()

    def finish(self) -> None:
        if self.total:
            self._show(time.monotonic(), end="\n" if self.tty else "")
