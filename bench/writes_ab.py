"""Award writes alone, with no workload to build: `python -m bench.writes_ab [--kafka] [--embedded]`.

The writes figures of `bench.run --only writes` (closed-loop levels, then the open-loop p99
at half of the peak) against fresh, empty stores, so a before/after pair takes about a minute
instead of building and projecting the 100,000-commit workload first. ``--env K=V`` passes
settings to `gamify serve` (e.g. an A/B switch); ``--repeat`` alternates nothing, it only runs
the same again so the spread shows. One JSON line per run on stdout, with the service's CPU
time per award (warm-up included): on a shared machine it moves far less than the latencies.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench import writes as writes_bench
from bench.env import GamifyServer, kafka_env, loadavg, stop_children
from bench.reads import loadgen


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fixed_rate(url: str, prefix: str, args: argparse.Namespace, rate: float) -> dict[str, Any]:
    """A warm-up, then one open-loop run at ``rate``: shaped like award_levels' result."""
    common = ["--mode", "award", "--prefix", prefix, "--pool", str(args.pool)]
    loadgen(url, [*common, "--concurrency", "4", "--seconds", "1", "--seed", "99"], 90)
    half = loadgen(
        url, [*common, "--rate", str(rate), "--seconds", str(args.seconds), "--seed", "7"], 90
    )
    return {"levels": [], "peak_rps": 0, "peak_concurrency": 0, "half_peak": half}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writes_ab")
    parser.add_argument("--kafka", action="store_true")
    parser.add_argument("--embedded", action="store_true")
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    parser.add_argument("--label", default="")
    parser.add_argument("--rate", type=float, help="only an open-loop run at this rate (req/s)")
    args = parser.parse_args(argv)
    levels = tuple(int(x) for x in args.levels.split(","))
    extra = dict(item.split("=", 1) for item in args.env)
    kinds = [k for k, on in (("embedded", args.embedded), ("kafka", args.kafka)) if on]
    workdir = Path(tempfile.mkdtemp(prefix="gamify-writes-ab-"))
    bootstrap = ""
    tansu = None
    try:
        if "kafka" in kinds:
            from tests.kafka_broker import start_tansu

            tansu = start_tansu()
            bootstrap = tansu.bootstrap
        for run in range(args.repeat):
            for kind in kinds:
                prefix = f"ab{os.getpid()}r{run}."
                env = {**(kafka_env(bootstrap, prefix, 6) if kind == "kafka" else {}), **extra}
                server = GamifyServer(f"{kind}-{run}", env, workdir / f"{kind}-{run}").start()
                try:
                    server.wait_ready()
                    load = loadavg()
                    cpu = cpu_seconds(server.pid)
                    if args.rate:
                        found = fixed_rate(server.url, f"ab{run}_", args, args.rate)
                    else:
                        found = writes_bench.award_levels(
                            server.url, f"ab{run}_", args.pool, levels, args.seconds
                        )
                    cpu = cpu_seconds(server.pid) - cpu
                finally:
                    server.stop()
                half = found["half_peak"]
                served = sum(r["requests"] for r in found["levels"]) + half["requests"]
                print(json.dumps({
                    "label": args.label, "kind": kind, "run": run, "load": load,
                    "peak_rps": round(found["peak_rps"]), "peak_c": found["peak_concurrency"],
                    "levels": [(r["concurrency"], round(r["rps"]), r["p50_ms"], r["p99_ms"],
                                r["requests"] - r["ok"]) for r in found["levels"]],
                    "half_rate": half["target_rate"], "half_p50": half["p50_ms"],
                    "half_p99": half["p99_ms"], "half_bad": half["requests"] - half["ok"],
                    "cpu_ms_per_award": round(1000 * cpu / max(1, served), 2),
                }), flush=True)  # fmt: skip
    finally:
        stop_children()
        if tansu is not None:
            tansu.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
