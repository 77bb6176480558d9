"""POST /points/award: throughput and latency (read-your-writes included) at a few concurrencies.

Every award answers only once the projector has applied its commit, so each latency covers
append + projection + the read of the verdict. After the closed-loop levels, an open-loop run
at half of the peak throughput gives the p99 the issue's target is about.
"""

from __future__ import annotations

from typing import Any

from bench.reads import loadgen


def award_levels(
    base_url: str, prefix: str, pool: int, levels: tuple[int, ...], seconds: float
) -> dict[str, Any]:
    common = ["--mode", "award", "--prefix", prefix, "--pool", str(pool)]
    timeout = seconds + 90
    # Warm-up: create part of the pool and the code paths; not measured.
    loadgen(base_url, [*common, "--concurrency", "4", "--seconds", "1", "--seed", "99"], timeout)
    runs = []
    for level in levels:
        args = [
            *common,
            "--concurrency",
            str(level),
            "--seconds",
            str(seconds),
            "--seed",
            str(level),
        ]
        runs.append(loadgen(base_url, args, timeout))
    peak = max(runs, key=lambda r: r["rps"])
    half_rate = peak["rps"] / 2
    half = loadgen(
        base_url,
        [*common, "--rate", f"{half_rate:.1f}", "--seconds", str(seconds), "--seed", "7"],
        timeout,
    )
    return {"levels": runs, "peak_rps": peak["rps"], "peak_concurrency": peak["concurrency"],
            "half_peak": half}  # fmt: skip
