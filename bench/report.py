"""Write the results as a markdown table and as JSON under bench/results/."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from bench.env import Results, fmt


def write_report(results: Results, where: Path) -> tuple[Path, Path]:
    where.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"{stamp}-{results.sizes.name}"
    md, js = where / f"{name}.md", where / f"{name}.json"
    md.write_text(markdown(results))
    js.write_text(json.dumps(results.to_json(), indent=2, default=str) + "\n")
    shutil.copyfile(md, where / f"latest-{results.sizes.name}.md")
    shutil.copyfile(js, where / f"latest-{results.sizes.name}.json")
    return md, js


def markdown(results: Results) -> str:
    m = results.machine
    lines = [
        f"# Gamify benchmarks ({results.sizes.name})",
        "",
        f"- Machine: {m.get('cpu_model')}, **{m.get('cores')} cores** "
        f"({m.get('cores_usable')} usable), {m.get('memory_gb')} GB RAM, Linux {m.get('kernel')}",
        f"- Software: Python {m.get('python')}, SQLite {m.get('sqlite')}, aiohttp "
        f"{m.get('aiohttp')}, aiokafka {m.get('aiokafka')}, psycopg {m.get('psycopg')}; "
        f"broker {m.get('broker', '-')}; git {m.get('git', '?')}",
        f"- Started {m.get('started_at')}; load average at start {m.get('loadavg_start')}, "
        f"at end {m.get('loadavg_end', '?')}; total {results.phases.get('total', 0):.0f}s",
    ]
    work = results.details.get("workload")
    if work:
        lines.append(
            f"- Workload: {work['events']:,} commits for {work['participants']:,} participants "
            f"on {work['partitions']} partitions, {work['avg_record_bytes']} bytes per record "
            f"({'loaded from cache' if work.get('from_cache') else 'built'} in "
            f"{work['build_seconds']}s, produced in {work['produce_seconds']}s)"
        )
    lines += [
        "",
        "| Benchmark | Figure | Value | Baseline (same run) | Baseline value | Ratio | Target | Met | Notes |",
        "|---|---|---:|---|---:|---:|---|---|---|",
    ]
    for f in results.figures:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        ratio = "" if f.ratio is None else f"{f.ratio:.1%}"
        lines.append(
            f"| {f.bench} | {f.metric} | {fmt(f.value)} {f.unit} | {f.baseline} | "
            f"{fmt(f.baseline_value) if f.baseline_value is not None else ''} | {ratio} | "
            f"{f.target} | {met} | {f.notes} |"
        )
    writes = results.details.get("writes") or {}
    for mode, found in writes.items():
        lines += ["", f"Award levels, {mode}:", "",
                  "| Concurrency | req/s | p50 ms | p90 ms | p99 ms | non-2xx |",
                  "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in found.get("levels", []):
            lines.append(
                f"| {r['concurrency']} | {fmt(r['rps'])} | {fmt(r['p50_ms'])} | "
                f"{fmt(r['p90_ms'])} | {fmt(r['p99_ms'])} | {r['requests'] - r['ok']} |"
            )
        half = found.get("half_peak")
        if half:
            lines.append(
                f"| open loop {fmt(half['target_rate'])}/s | {fmt(half['rps'])} | "
                f"{fmt(half['p50_ms'])} | {fmt(half['p90_ms'])} | {fmt(half['p99_ms'])} | "
                f"{half['requests'] - half['ok']} |"
            )
    if results.errors:
        lines += ["", "Errors:", ""] + [f"- {k}: {v}" for k, v in results.errors.items()]
    lines += ["", "Phase times (s): " + ", ".join(
        f"{k} {v:.0f}" for k, v in results.phases.items())]  # fmt: skip
    return "\n".join(lines) + "\n"
