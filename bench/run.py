"""Run the benchmarks and write the results table: `python -m bench.run [--quick] [--only NAME]`.

Benchmarks (``--only`` takes any of them, repeatable or comma-separated):

- ``projection``: events/s from the participant-events topic into SQLite and PostgreSQL read
  models, beside the raw aiokafka consume rate of the same topic;
- ``replay``: events/s of a full rebuild (projections.replay.replay), beside the same rate;
- ``reads``: GET profile and GET state requests/s and latency, beside a bare aiohttp handler;
- ``writes``: POST /points/award throughput and latency, embedded and on Kafka;
- ``inbound``: commands/s from the inbound topic to projected balances;
- ``memory``: peak RSS of `gamify serve` with 100,000 and 1,000,000 participants.

Everything runs on loopback: a memory-only tansu broker (from the test helpers), the local
PostgreSQL (as the tests find it), `gamify serve` processes and load generators.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import inbound as inbound_bench
from bench import memory as memory_bench
from bench import projection as projection_bench
from bench import reads as reads_bench
from bench import writes as writes_bench
from bench.env import (
    FAST,
    FULL,
    QUICK,
    RESULTS,
    Figure,
    GamifyServer,
    Results,
    Sizes,
    kafka_env,
    loadavg,
    machine_info,
    memory_kb,
    stop_children,
)
from bench.report import write_report
from bench.workload import Workload, baseline, make_workload, raw_consume

NAMES = ("projection", "replay", "reads", "writes", "inbound", "memory")
FAST_NAMES = ("projection", "replay")  # what ``--fast`` runs unless ``--only`` says otherwise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the machinery")
    parser.add_argument("--fast", action="store_true",
                        help="projection and replay on 100,000 commits: a figure in under 2 minutes")  # fmt: skip
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only these ({', '.join(NAMES)}); repeatable or a,b")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--no-cache", action="store_true",
                        help="build the workload afresh (default: reuse bench/results/.cache)")  # fmt: skip
    parser.add_argument("--pg-cap", type=float, help="seconds the PostgreSQL projection may take")
    parser.add_argument("--cap", type=float, help="seconds any projection or replay may take")
    args = parser.parse_args(argv)
    only = {n.strip() for item in args.only for n in item.split(",") if n.strip()}
    unknown = only - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; one of {NAMES}")
    if args.quick and args.fast:
        parser.error("--quick and --fast are different sizes: choose one")
    sizes = QUICK if args.quick else FAST if args.fast else FULL
    if args.fast and not only:
        only = set(FAST_NAMES)
    if args.cap is not None:
        sizes = replace(sizes, projection_cap=args.cap, pg_cap=args.cap, replay_cap=args.cap)
    if args.pg_cap is not None:
        sizes = replace(sizes, pg_cap=args.pg_cap)
    selected = [n for n in NAMES if not only or n in only]
    workdir = Path(tempfile.mkdtemp(prefix="gamify-bench-"))
    atexit.register(stop_children)
    bench = Bench(sizes, selected, workdir, cache=not args.no_cache)
    try:
        asyncio.run(bench.run())
    finally:
        stop_children()
        bench.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    md, js = write_report(bench.results, RESULTS)
    print(f"\nresults: {md}\n         {js}")
    return 1 if bench.results.errors else 0


class Bench:
    def __init__(self, sizes: Sizes, selected: list[str], workdir: Path, *, cache: bool) -> None:
        self.sizes, self.selected, self.workdir, self.cache = sizes, selected, workdir, cache
        self.results = Results(sizes, machine_info())
        self.results.details["selected"] = selected
        self.stack = ExitStack()
        self.bootstrap = ""
        self.prefix = f"bench{os.getpid()}."
        self.work: Workload | None = None
        self.raw: list[dict[str, Any]] = []
        self.store: Path | None = None  # SQLite read models holding the projected workload
        self.server: GamifyServer | None = None  # serve on Kafka over ``store``
        self.pg_url: str | None = None

    def close(self) -> None:
        self.stack.close()

    @property
    def topic(self) -> str:
        return f"{self.prefix}participant-events"

    # ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        began = time.perf_counter()
        m = self.results.machine
        print(f"gamify bench ({self.sizes.name}): {', '.join(self.selected)}", flush=True)
        print(f"machine: {m['cpu_model']}, {m['cores']} cores, load {m['loadavg_start']}")
        await self.phase("broker", self.start_broker)
        for name in self.selected:
            await self.phase(name, getattr(self, f"bench_{name}"))
        if self.server is not None:
            self.server.stop()
        self.results.phases["total"] = time.perf_counter() - began
        m["loadavg_end"] = loadavg()

    async def phase(self, name: str, work: Callable[[], Any]) -> None:
        print(f"[{name}] (load {loadavg()})", flush=True)
        started = time.perf_counter()
        try:
            await work()
        except Exception as exc:
            self.results.errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"  !! {name} failed: {exc!r}", flush=True)
            traceback.print_exc()
        finally:
            seconds = time.perf_counter() - started
            self.results.phases[name] = self.results.phases.get(name, 0.0) + seconds
            print(f"  ({name}: {seconds:.1f}s)", flush=True)

    async def start_broker(self) -> None:
        from tests.kafka_broker import start_tansu

        tansu = start_tansu()
        self.stack.callback(tansu.stop)
        self.bootstrap = tansu.bootstrap
        self.results.machine["broker"] = "tansu (memory storage), loopback"

    # --- the workload and its baseline --------------------------------------------------------

    async def workload(self) -> Workload:
        if self.work is None:
            s = self.sizes
            print(f"  building and producing {s.events:,} commits for {s.participants:,} "
                  f"participants on {s.partitions} partitions", flush=True)  # fmt: skip
            self.work = await make_workload(
                self.bootstrap, self.topic, s.participants, s.events, s.partitions,
                cache=self.cache,
            )  # fmt: skip
            w = self.work
            self.results.details["workload"] = {
                "topic": w.topic, "events": w.events, "participants": w.participants,
                "partitions": s.partitions, "avg_record_bytes": round(w.bytes / w.events),
                "build_seconds": round(w.build_seconds, 1), "from_cache": w.from_cache,
                "produce_seconds": round(w.produce_seconds, 1),
            }  # fmt: skip
            how = "loaded from cache" if w.from_cache else "built"
            print(f"  {how} in {w.build_seconds:.1f}s, produced in {w.produce_seconds:.1f}s "
                  f"({w.events / w.produce_seconds:,.0f} records/s)", flush=True)  # fmt: skip
        return self.work

    async def raw_run(self) -> dict[str, Any]:
        work = await self.workload()
        found = await raw_consume(self.bootstrap, work.topic, work.ends, self.sizes.projection_cap)
        self.raw.append(found)
        self.results.details["raw_consume_runs"] = [
            {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()} for r in self.raw
        ]
        print(f"  raw aiokafka consume: {found['records']:,} in {found['seconds']:.1f}s "
              f"= {found['rate']:,.0f}/s", flush=True)  # fmt: skip
        return found

    def baseline(self) -> float:
        return baseline(self.raw)

    # --- projection and replay ------------------------------------------------------------

    async def bench_projection(self) -> None:
        s = self.sizes
        await self.raw_run()
        await self.project_sqlite(report=True)
        await self.raw_run()
        await self.project_pg()
        if len(self.raw) < s.raw_runs:
            await self.raw_run()

    async def project_sqlite(self, *, report: bool) -> None:
        work = await self.workload()
        self.store = self.workdir / "projected.db"
        print(f"  projecting into SQLite ({self.store})", flush=True)
        found = await projection_bench.project(
            self.bootstrap, work, f"sqlite:///{self.store}", self.sizes.projection_cap
        )
        self.results.details["projection_sqlite"] = _rounded(found)
        if report:
            self.figure_vs_raw("projection", "SQLite read models, events/s", found, 0.25)

    @contextlib.contextmanager
    def pg_schema(self, what: str) -> Iterator[str]:
        """The URL of a fresh PostgreSQL schema (the tests' server), dropped afterwards."""
        from tests.postgres import drop_schema, new_schema, postgres_server

        if self.pg_url is None:
            self.pg_url = self.stack.enter_context(postgres_server())
        schema = new_schema(self.pg_url)
        print(f"  {what} (schema {schema})", flush=True)
        try:
            yield f"{self.pg_url}{'&' if '?' in self.pg_url else '?'}schema={schema}"
        finally:
            drop_schema(self.pg_url, schema)

    async def project_pg(self) -> None:
        work = await self.workload()
        with self.pg_schema("projecting into PostgreSQL") as url:
            found = await projection_bench.project(self.bootstrap, work, url, self.sizes.pg_cap)
        self.results.details["projection_postgres"] = _rounded(found)
        self.figure_vs_raw("projection", "PostgreSQL read models, events/s", found, 0.12)
        await self.project_pg_split(work, 2)

    async def project_pg_split(self, work: Workload, projectors: int) -> None:
        """Issue 11: ``projectors`` processes share the partitions and one PostgreSQL store."""
        with self.pg_schema(f"{projectors} projector processes into PostgreSQL") as url:
            found = await projection_bench.project_split(
                self.bootstrap, work, url, self.sizes.pg_cap, projectors
            )
        self.results.details[f"projection_postgres_x{projectors}"] = _rounded(found)
        metric = f"PostgreSQL read models, {projectors} processes, events/s"
        self.figure_vs_raw("projection", metric, found, 0.12)

    async def bench_replay(self) -> None:
        work = await self.workload()
        if len(self.raw) < self.sizes.raw_runs:
            await self.raw_run()
        target = self.workdir / "replayed.db"
        print(f"  replay (shadow tables, then swap) into a fresh SQLite store {target}", flush=True)
        found = await projection_bench.rebuild(
            self.bootstrap, work, f"sqlite:///{target}", self.sizes.replay_cap
        )
        self.results.details["replay_sqlite"] = _rounded(found)
        self.figure_vs_raw("replay", "full rebuild into SQLite, events/s", found, 0.30)
        target.unlink(missing_ok=True)
        await self.replay_pg(work)

    async def replay_pg(self, work: Workload) -> None:
        """A rebuild into PostgreSQL in one process, then in two (`gamify replay --processes 2`:
        each a share of the partitions), each into a fresh schema."""
        for processes in (1, 2):
            with self.pg_schema(f"replay into PostgreSQL, {processes} process(es)") as url:
                found = await projection_bench.rebuild(
                    self.bootstrap, work, url, self.sizes.pg_cap, processes
                )
            self.results.details[f"replay_postgres_x{processes}"] = _rounded(found)
            metric = f"full rebuild into PostgreSQL, {processes} process(es), events/s"
            self.figure_vs_raw("replay", metric, found, 0.30)

    def figure_vs_raw(self, bench: str, metric: str, found: dict[str, Any], share: float) -> None:
        base = self.baseline()
        ratio = found["rate"] / base if base else None
        notes = [f"{found['records']:,} events in {found['seconds']:.1f}s"]
        if not found["complete"]:
            notes.append(f"time-capped at {found['capped_at_seconds']:g}s")
        if found.get("first_fifth") and found.get("last_fifth"):
            notes.append(
                f"first/last fifth {found['first_fifth']:,.0f}/{found['last_fifth']:,.0f} per s"
            )
        if not found.get("check_ok"):
            notes.append(f"CHECK FAILED: {found.get('check')}")
        self.results.add(
            Figure(
                bench, metric, found["rate"], "events/s",
                baseline=f"raw aiokafka consume (median of {len(self.raw)})",
                baseline_value=base, ratio=ratio, target=f">= {share:.0%} of raw",
                met=None if ratio is None else ratio >= share, notes="; ".join(notes),
            )
        )  # fmt: skip

    # --- the service on Kafka over the projected store --------------------------------------

    async def kafka_server(self) -> GamifyServer:
        if self.server is None:
            if self.store is None:
                print("  (setup) projecting the workload into SQLite for the service", flush=True)
                await self.project_sqlite(report=False)
            assert self.store is not None
            env = kafka_env(self.bootstrap, self.prefix, self.sizes.partitions)
            env["GAMIFY_DATABASE_URL"] = f"sqlite:///{self.store}"
            self.server = GamifyServer("serve-kafka", env, self.workdir / "serve-kafka").start()
            await asyncio.to_thread(self.server.wait_ready)
            print(f"  gamify serve on Kafka at {self.server.url} (pid {self.server.pid})")
            # A time-capped projection leaves the rest to the service's own projector: let it
            # finish first, so the reads are not measured against a projector at work.
            work = await self.workload()
            await memory_bench.wait_projected(self.store, self.topic, work.ends, 900)
            print("  the service's projector has caught up with the topic", flush=True)
            waited = await reads_bench.wait_dispatched(self.store, self.topic, work.ends, 900)
            self.results.details["webhook_catch_up_seconds"] = round(waited, 1)
            print(f"  its webhook dispatcher too ({waited:.0f}s)", flush=True)
        return self.server

    async def bench_reads(self) -> None:
        s = self.sizes
        server = await self.kafka_server()
        wrk = await asyncio.to_thread(reads_bench.ensure_wrk)
        work = await self.workload()
        reader = reads_bench.Reader(wrk, self.workdir, work.participants, s.read_connections)
        profile, state = reads_bench.sample_bodies(server.url, "user_0000001")
        bare, bare_url = reads_bench.start_bare(self.workdir, profile, state)
        details: dict[str, Any] = {"tool": reader.tool, "connections": s.read_connections,
                                   "seconds": s.read_seconds,
                                   "body_bytes": {"profile": len(profile), "state": len(state)}}  # fmt: skip
        try:
            for mode, size in (("profile", len(profile)), ("state", len(state))):
                for url in (server.url, bare_url):  # warm-up, not measured
                    await asyncio.to_thread(reader.run, url, mode, 1)
                ours = await asyncio.to_thread(reader.run, server.url, mode, s.read_seconds)
                theirs = await asyncio.to_thread(reader.run, bare_url, mode, s.read_seconds)
                details[mode] = {"gamify": ours, "bare": theirs}
                ratio = ours["rps"] / theirs["rps"] if theirs["rps"] else None
                errors = ours.get("non_2xx") or 0
                self.results.add(
                    Figure(
                        "reads", f"GET {mode} requests/s", ours["rps"], "req/s",
                        baseline=f"bare aiohttp handler, same {size}-byte body",
                        baseline_value=theirs["rps"], ratio=ratio,
                        target=">= 50% of bare" if mode == "profile" else "",
                        met=(ratio >= 0.50 if ratio is not None else None)
                        if mode == "profile" else None,
                        notes=f"{reader.tool}, {s.read_connections} connections, random "
                        f"participants of {work.participants:,}"
                        + (f"; {errors} non-2xx" if errors else ""),
                    )
                )  # fmt: skip
                for pct in ("p50_ms", "p99_ms"):
                    self.results.add(
                        Figure(
                            "reads", f"GET {mode} {pct[:3]} latency", ours[pct], "ms",
                            baseline="bare aiohttp handler", baseline_value=theirs[pct],
                            ratio=None,
                        )
                    )  # fmt: skip
        finally:
            bare.stop()
            self.results.details["reads"] = details

    # --- writes -----------------------------------------------------------------------------

    async def bench_writes(self) -> None:
        s = self.sizes
        details: dict[str, Any] = {}
        self.results.details["writes"] = details
        embedded = GamifyServer("serve-embedded", {}, self.workdir / "serve-embedded").start()
        try:
            await asyncio.to_thread(embedded.wait_ready)
            found = await asyncio.to_thread(
                writes_bench.award_levels, embedded.url, "we_", s.write_pool, s.write_levels,
                s.write_seconds,
            )  # fmt: skip
            found["rss_kb"] = memory_kb(embedded.pid)
            details["embedded"] = found
            self.write_figures("embedded (SQLite log + SQLite read models)", found)
        finally:
            embedded.stop()
        server = await self.kafka_server()
        found = await asyncio.to_thread(
            writes_bench.award_levels, server.url, "wk_", s.write_pool, s.write_levels,
            s.write_seconds,
        )  # fmt: skip
        details["kafka"] = found
        self.write_figures("Kafka (tansu) + SQLite read models", found)

    def write_figures(self, label: str, found: dict[str, Any]) -> None:
        levels = ", ".join(
            f"c={r['concurrency']}: {r['rps']:,.0f}/s p50 {r['p50_ms']:.1f} p99 {r['p99_ms']:.1f}"
            for r in found["levels"]
        )
        bad = sum(r["requests"] - r["ok"] for r in found["levels"])
        ryw = [r["read_your_writes"] for r in found["levels"]]
        stale = sum(x["mismatched"] for x in ryw if x)
        self.results.add(
            Figure(
                "writes", f"award peak throughput, {label}", found["peak_rps"], "req/s",
                notes=f"{levels}; {bad} non-2xx; read-your-writes checks stale: {stale}",
            )
        )  # fmt: skip
        half = found["half_peak"]
        self.results.add(
            Figure(
                "writes", f"award p99 at half of peak ({half['target_rate']:,.0f}/s), {label}",
                half["p99_ms"], "ms", target="<= 20 ms",
                met=None if half["p99_ms"] is None else half["p99_ms"] <= 20.0,
                notes=f"open loop, achieved {half['rps']:,.0f}/s, p50 {half['p50_ms']:.1f} ms, "
                f"{half['requests'] - half['ok']} non-2xx",
            )
        )  # fmt: skip

    # --- inbound ----------------------------------------------------------------------------

    async def bench_inbound(self) -> None:
        s = self.sizes
        await self.kafka_server()
        assert self.store is not None
        found = await inbound_bench.inbound(
            self.bootstrap, f"{self.prefix}inbound", self.store, s.inbound_commands,
            s.inbound_participants, s.inbound_cap,
        )  # fmt: skip
        self.results.details["inbound"] = _rounded(found)
        notes = (f"{found['applied']:,} of {found['commands']:,} commands over "
                 f"{found['participants']:,} participants in {found['seconds']:.1f}s "
                 f"(published in {found['publish_seconds']:.1f}s)")  # fmt: skip
        if not found["complete"]:
            notes += f"; time-capped at {found['capped_at_seconds']:g}s"
        self.results.add(Figure("inbound", "award commands to projected state", found["rate"],
                                "commands/s", notes=notes))  # fmt: skip

    # --- memory -----------------------------------------------------------------------------

    async def bench_memory(self) -> None:
        s = self.sizes
        details: dict[str, Any] = {}
        self.results.details["memory"] = details
        if self.server is not None:  # the service the other benchmarks loaded
            rss = memory_kb(self.server.pid)
            details["serve_kafka_after_benchmarks"] = rss
            self.results.add(
                Figure(
                    "memory", f"peak RSS of serve after reads/writes/inbound, "
                    f"{self.sizes.participants:,} participants", rss.get("VmHWM", 0) / 1024,
                    "MB", notes=f"VmRSS now {rss.get('VmRSS', 0) / 1024:.0f} MB",
                )
            )  # fmt: skip
            self.server.stop()
            self.server = None
        wrk = await asyncio.to_thread(reads_bench.ensure_wrk)
        for n in s.memory_points:
            found = await self.memory_point(n, wrk)
            details[str(n)] = found
            mb = found["VmHWM"] / 1024
            target = n >= 1_000_000
            self.results.add(
                Figure(
                    "memory", f"peak RSS of gamify serve, {n:,} participants", mb, "MB",
                    target="<= 300 MB" if target else "", met=(mb <= 300) if target else None,
                    notes=f"store pre-built ({found['prebuild_seconds']:.0f}s); service started "
                    f"and projected {found['tail']:,} commits in {found['project_seconds']:.1f}s, "
                    f"then {found['reads']['requests']:,} GETs and "
                    f"{found['awards']['requests']:,} awards; VmRSS after "
                    f"{found['VmRSS'] / 1024:.0f} MB",
                )
            )  # fmt: skip

    async def memory_point(self, n: int, wrk: str | None) -> dict[str, Any]:
        s = self.sizes
        workdir = self.workdir / f"memory-{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        store = workdir / "gamify.db"
        print(f"  pre-building a store with {n:,} participants", flush=True)
        built = await asyncio.to_thread(memory_bench.prebuild, store, n)
        prefix = f"mem{n}x{os.getpid()}."
        topic = f"{prefix}participant-events"
        tail = min(s.memory_tail, n)
        ends = await memory_bench.produce_tail(self.bootstrap, topic, tail, s.partitions)
        env = kafka_env(self.bootstrap, prefix, s.partitions)
        env["GAMIFY_DATABASE_URL"] = f"sqlite:///{store}"
        spawned = time.perf_counter()
        server = GamifyServer(f"serve-memory-{n}", env, workdir).start()
        try:
            await asyncio.to_thread(server.wait_ready)
            await memory_bench.wait_projected(store, topic, ends, 120)
            projected = time.perf_counter() - spawned  # start-up included
            reader = reads_bench.Reader(wrk, workdir, n, s.read_connections)
            reads = await asyncio.to_thread(
                reader.run, server.url, "profile", s.memory_load_seconds
            )
            awards = await asyncio.to_thread(
                reads_bench.loadgen, server.url,
                ["--mode", "award", "--prefix", "mem_", "--pool", "1000", "--concurrency", "16",
                 "--seconds", str(s.memory_load_seconds)],
                s.memory_load_seconds + 90,
            )  # fmt: skip
            rss = memory_kb(server.pid)
        finally:
            server.stop()
            store.unlink(missing_ok=True)
        return {
            "participants": n, "prebuild_seconds": built, "tail": tail,
            "project_seconds": projected, "reads": reads, "awards": awards,
            "VmHWM": rss.get("VmHWM", 0), "VmRSS": rss.get("VmRSS", 0),
        }  # fmt: skip


def _rounded(found: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in found.items()}


def median(values: list[float]) -> float:
    return statistics.median(values)


if __name__ == "__main__":
    sys.exit(main())
