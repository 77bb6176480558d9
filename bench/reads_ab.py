"""GET profile/state of two source trees and the bare handler, alternated: `python -m bench.reads_ab`.

The reads benchmark of `bench.run --only reads` without a broker or a projection per run: the
data directory (an embedded log and its SQLite read models, ``--participants`` x ``--rounds``
commits of the benchmark's workload shape) is built and projected once (``--data``, kept), then
each round serves it with every tree in turn (``--tree NAME=PATH``: `python -m services serve`
run from that tree, e.g. a `git archive` of the base commit) and runs wrk against each and
against the bare aiohttp handler returning the same bytes (bench.bare_server), in order A, B,
bare, then the next round. One JSON line per run; a table at the end, with the service's CPU
time per request (from /proc, so the load moves it far less than the request rate).

    python -m bench.reads_ab --tree new=. --tree base=/tmp/base --rounds 3 --seconds 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import reads as reads_bench
from bench.env import API_KEY, BASE, RESULTS, TENANT, GamifyServer, http
from bench.workload import pid_of


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_log(path: Path, participants: int, rounds: int) -> None:
    """The workload's commits (bench.workload's shape) appended to an embedded log file."""
    from schemas.events import (
        Causation,
        Commit,
        ParticipantRegistered,
        PointsAwarded,
        PointsDeducted,
    )
    from services.adapters.sqlite_event_log import SqliteEventLog

    log = SqliteEventLog(str(path))
    try:
        chunk: list[Commit] = []
        for r in range(rounds):
            at = f"2026-02-14T{10 + r // 60:02d}:{r % 60:02d}:00Z"
            deduct = r % 5 == 4
            for i in range(participants):
                cid = f"ab-{r:04x}-{i:012x}"
                balance = 10 * (r + 1) - 15 * ((r + 1) // 5)
                kind = PointsDeducted if deduct else PointsAwarded
                events: tuple[Any, ...] = (
                    kind(
                        transaction_id=f"tx-{cid}",
                        amount=5 if deduct else 10,
                        balance_after=balance,
                        reason="redeem" if deduct else "order",
                        metadata={} if deduct else {"sku": "A1"},
                    ),
                )
                if r == 0:
                    events = (ParticipantRegistered(auto_created=True), *events)
                chunk.append(
                    Commit(
                        commit_id=cid, tenant=TENANT, participant_id=pid_of(i),
                        expected_version=r, recorded_at=at,
                        causation=Causation(
                            command="points.deduct" if deduct else "points.award",
                            source="http", request_id=f"req-{r}-{i}",
                            idempotency_key=f"order-{i}-{r}",
                        ),
                        events=events,
                    )
                )  # fmt: skip
                if len(chunk) == 500:
                    log._append_group(chunk)  # noqa: SLF001 - one transaction per 500
                    chunk = []
        if chunk:
            log._append_group(chunk)  # noqa: SLF001
    finally:
        log.close()


class TreeServer(GamifyServer):
    """`gamify serve` (embedded log) over ``data``, running the code of the tree at ``root``."""

    def __init__(self, name: str, root: Path, data: Path, workdir: Path) -> None:
        super().__init__(name, {"GAMIFY_DATA_DIR": str(data), "PYTHONPATH": str(root)}, workdir)
        self.root = root

    def start(self) -> TreeServer:
        import subprocess

        from bench.env import _children

        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                self.argv, cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _children.append(self)
        return self


def wait_projected(url: str, participants: int, rounds: int, timeout: float) -> None:
    """Until the last participant's profile counts every round (the embedded projector is done)."""
    deadline = time.monotonic() + timeout
    last = pid_of(participants - 1)
    while time.monotonic() < deadline:
        status, body = http("GET", f"{url}{BASE}/participants/{last}")
        earned = 10 * (rounds - rounds // 5)  # every fifth round deducts instead
        if status == 200 and json.loads(body)["points"]["total_earned"] >= earned:
            return
        time.sleep(1)
    raise RuntimeError("the data directory was not projected in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reads_ab")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--data", type=Path, default=RESULTS / ".cache" / "reads-ab")
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--rounds-of-commits", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="A/B/bare rounds")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--modes", default="profile,state")
    args = parser.parse_args(argv)
    trees = [(n, Path(p).resolve()) for n, _, p in (t.partition("=") for t in args.tree)]
    trees = trees or [("this", Path(__file__).resolve().parents[1])]
    wrk = reads_bench.ensure_wrk()
    if wrk is None:
        print("wrk is needed", file=sys.stderr)
        return 2
    data, work = args.data / "data", args.data / "work"
    work.mkdir(parents=True, exist_ok=True)
    n, commits = args.participants, args.rounds_of_commits
    if not (data / "ready").exists():
        data.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build_log(data / "log.db", n, commits)
        server = TreeServer("build", trees[0][1], data, work).start()
        try:
            server.wait_ready(600)
            wait_projected(server.url, n, commits, 1800)
        finally:
            server.stop()
        (data / "ready").write_text("")
        print(f"built and projected in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    reader = reads_bench.Reader(wrk, work, n, args.connections)
    bare = None
    found: list[dict[str, Any]] = []
    try:
        for rnd in range(args.rounds):
            for name, root in trees:
                server = TreeServer(f"serve-{name}", root, data, work).start()
                try:
                    server.wait_ready(120)
                    if bare is None:
                        profile, state = reads_bench.sample_bodies(server.url, pid_of(1))
                        bare, bare_url = reads_bench.start_bare(work, profile, state)
                    for mode in args.modes.split(","):
                        reader.run(server.url, mode, 1)  # warm-up
                        before = cpu_seconds(server.pid)
                        got = reader.run(server.url, mode, args.seconds, seed=rnd + 2)
                        cpu = cpu_seconds(server.pid) - before
                        got |= {"tree": name, "mode": mode, "round": rnd, "load": os.getloadavg()[0],
                                "cpu_us": 1e6 * cpu / max(1, got["requests"])}  # fmt: skip
                        found.append(got)
                        print(json.dumps(got), flush=True)
                finally:
                    server.stop()
            assert bare is not None
            for mode in args.modes.split(","):
                reader.run(bare_url, mode, 1)
                before = cpu_seconds(bare.pid)
                got = reader.run(bare_url, mode, args.seconds, seed=rnd + 2)
                cpu = cpu_seconds(bare.pid) - before
                got |= {"tree": "bare", "mode": mode, "round": rnd, "load": os.getloadavg()[0],
                        "cpu_us": 1e6 * cpu / max(1, got["requests"])}  # fmt: skip
                found.append(got)
                print(json.dumps(got), flush=True)
    finally:
        if bare is not None:
            bare.stop()
    print(f"\n{'tree':>8} {'mode':>8} {'req/s (each round)':>28} {'median':>8} {'of bare':>8} "
          f"{'CPU us/req':>11}")  # fmt: skip
    bare_rps = {
        m: statistics.median(r["rps"] for r in found if r["tree"] == "bare" and r["mode"] == m)
        for m in args.modes.split(",")
    }
    for name in [t for t, _ in trees] + ["bare"]:
        for mode in args.modes.split(","):
            runs = [r for r in found if r["tree"] == name and r["mode"] == mode]
            med = statistics.median(r["rps"] for r in runs)
            each = " ".join(f"{r['rps']:,.0f}" for r in runs)
            cpu = statistics.median(r["cpu_us"] for r in runs)
            print(f"{name:>8} {mode:>8} {each:>28} {med:>8,.0f} {med / bare_rps[mode]:>8.1%} "
                  f"{cpu:>11.0f}")  # fmt: skip
    _ = API_KEY
    return 0


if __name__ == "__main__":
    sys.exit(main())
