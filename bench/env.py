"""What every benchmark shares: sizes, the machine, brokers and databases, gamify processes."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TENANT = "bench"
API_KEY = "gmf_bench_0123456789abcdef"
BASE = "/api/v1/gamify"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each benchmark is; ``FULL`` is `make bench`, ``QUICK`` checks the machinery."""

    name: str
    events: int  # commits on the participant-events topic
    participants: int
    partitions: int = 6
    raw_runs: int = 3  # raw consume runs (the baseline is their median)
    projection_cap: float = 300.0  # seconds; a projection stops there and reports what it did
    pg_cap: float = 60.0  # PostgreSQL projects far slower: see BENCHMARKS.md
    replay_cap: float = 300.0
    read_seconds: float = 8.0
    read_connections: int = 16
    write_levels: tuple[int, ...] = (1, 4, 16, 64)
    write_seconds: float = 4.0
    write_pool: int = 5000  # participants the writes spread over
    inbound_commands: int = 10_000
    inbound_participants: int = 2_000
    inbound_cap: float = 90.0
    memory_points: tuple[int, ...] = (100_000, 1_000_000)
    memory_tail: int = 20_000  # commits the service projects on top of the pre-built store
    memory_load_seconds: float = 4.0


FULL = Sizes("full", events=1_000_000, participants=100_000)
# `make bench-fast`: the projection and replay figures in under two minutes, same workload shape
# (10 commits per participant, 6 partitions) at a tenth of the size; ratios are comparable to
# FULL's only roughly, since the tables are ten times smaller.
FAST = Sizes(
    "fast",
    events=100_000,
    participants=10_000,
    raw_runs=2,
    projection_cap=30.0,
    pg_cap=15.0,
    replay_cap=30.0,
)
QUICK = Sizes(
    "quick",
    events=20_000,
    participants=2_000,
    raw_runs=2,
    projection_cap=30.0,
    pg_cap=6.0,
    replay_cap=30.0,
    read_seconds=1.0,
    write_levels=(1, 8),
    write_seconds=1.0,
    write_pool=500,
    inbound_commands=1_000,
    inbound_participants=200,
    inbound_cap=30.0,
    memory_points=(5_000, 10_000),
    memory_tail=1_000,
    memory_load_seconds=1.0,
)


@dataclass(slots=True)
class Figure:
    """One line of the results table: a figure, its baseline and, if the issue has one, a target."""

    bench: str
    metric: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    notes: str = ""


@dataclass(slots=True)
class Results:
    sizes: Sizes
    machine: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(f"  -> {describe(figure)}", flush=True)
        return figure

    def to_json(self) -> dict[str, Any]:
        return {
            "sizes": asdict(self.sizes),
            "machine": self.machine,
            "figures": [asdict(f) for f in self.figures],
            "details": self.details,
            "phases_seconds": self.phases,
            "errors": self.errors,
        }


def describe(f: Figure) -> str:
    text = f"{f.bench} / {f.metric}: {fmt(f.value)} {f.unit}"
    if f.baseline_value is not None:
        text += f" (baseline {f.baseline}: {fmt(f.baseline_value)})"
    if f.ratio is not None:
        text += f", ratio {f.ratio:.1%}"
    if f.target:
        text += f", target {f.target}: {'met' if f.met else 'MISSED' if f.met is False else '-'}"
    return text


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


# ------------------------------------------------------------------------------------------
# The machine


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    info: dict[str, Any] = {
        "cpu_model": model or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_start": loadavg(),
    }
    for package in ("aiohttp", "aiokafka", "psycopg", "orjson", "eventsourcing"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            info[package] = version(package)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(  # noqa: S603
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        dirty = subprocess.run(  # noqa: S603
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        info["git"] = head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return info


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ------------------------------------------------------------------------------------------
# Processes and HTTP


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process, in kB."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = int(rest.split()[0])
    return found


def http(method: str, url: str, body: Any = None, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request to a loopback server; the status and the body (errors included)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback http only
        url, data=data, method=method, headers={"X-API-Key": API_KEY}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Process:
    """A child process of the benchmark: its output goes to a log file; stopped on exit."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _children.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with contextlib.suppress(ValueError):
            _children.remove(self)


_children: list[Process] = []


def stop_children() -> None:
    for child in list(reversed(_children)):
        with contextlib.suppress(Exception):
            child.stop(5)


class GamifyServer(Process):
    """`python -m services serve` on a loopback port with the benchmark's API key."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith("GAMIFY_")}
        full.update(
            {
                "GAMIFY_API_KEYS": f"{TENANT}:{API_KEY}",
                "GAMIFY_DATA_DIR": str(workdir / "data"),
                "GAMIFY_LOG_LEVEL": "WARNING",
                # a benchmark measures the service, not the reference's 200 requests a minute
                "GAMIFY_RATE_LIMIT_PER_KEY": "off",
                "GAMIFY_RATE_LIMIT_PER_TENANT": "off",
                "GAMIFY_RATE_LIMIT_INGEST_BURST": "off",
                "PYTHONUNBUFFERED": "1",
            }
        )
        full.update(env)
        argv = [sys.executable, "-m", "services", "serve", "--host", "127.0.0.1"]
        super().__init__(name, [*argv, "--port", str(self.port)], full, workdir / f"{name}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> GamifyServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"gamify serve ({self.name}) exited:\n{self.tail()}")
            with contextlib.suppress(OSError):
                status, _ = http("GET", f"{self.url}/readyz", timeout=2)
                if status == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"gamify serve ({self.name}) not ready in {timeout:g}s:\n{self.tail()}")


def kafka_env(bootstrap: str, prefix: str, partitions: int) -> dict[str, str]:
    """Environment of a gamify process on the benchmark's tansu broker."""
    return {
        "GAMIFY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GAMIFY_KAFKA_TOPIC_PREFIX": prefix,
        "GAMIFY_KAFKA_PARTITIONS": str(partitions),
        "GAMIFY_KAFKA_IDEMPOTENCE": "false",  # tansu has no InitProducerId
        "GAMIFY_KAFKA_SESSION_TIMEOUT_MS": "2000",  # tansu holds a first join for half of it
        # tansu reports no topic configs, so the start-up retention check cannot confirm them;
        # the benchmark's topics are throwaway.
        "GAMIFY_KAFKA_ALLOW_FINITE_RETENTION": "true",
    }


def percentile(sorted_values: list[float], share: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


@contextlib.contextmanager
def fresh_store(kind: str, prefix: str = "gamify-bench-") -> Any:
    """A participant store on a fresh database, table created: a new SQLite file in a temporary
    directory, or a new schema on the tests' PostgreSQL (dropped afterwards)."""
    import tempfile

    from projections.db import open_database
    from projections.participants.store import participant_store

    schema = None
    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix=prefix)}/store.db"
    else:
        from tests.postgres import DEFAULT_URL, new_schema

        schema = new_schema(DEFAULT_URL)
        url = f"{DEFAULT_URL}?schema={schema}"
    db = open_database(url)
    try:
        store = participant_store(db)
        store.create_table()
        yield store
    finally:
        db.close()
        if schema is not None:
            from tests.postgres import DEFAULT_URL, drop_schema

            drop_schema(DEFAULT_URL, schema)
