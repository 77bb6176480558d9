"""GET profile and GET state against a bare aiohttp handler: wrk, or the Python load generator."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.env import API_KEY, BASE, Process, free_port, http

WRK_SCRIPT = """
local n, suffix, key = 1000, "", ""
function init(args)
  n = tonumber(args[1])
  suffix = args[2] == "profile" and "" or "/" .. args[2]
  key = args[3]
  math.randomseed(tonumber(args[4]))
end
function request()
  local pid = string.format("user_%07d", math.random(0, n - 1))
  return wrk.format("GET", "/api/v1/gamify/participants/" .. pid .. suffix, {["X-API-Key"] = key})
end
"""


def ensure_wrk() -> str | None:
    """wrk's path; installed from Debian's packages only if missing and we run as root."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    print("  installing wrk (apt-get install -y wrk)", flush=True)
    done = subprocess.run(  # noqa: S603
        ["apt-get", "install", "-y", "-q", "wrk"],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if done.returncode != 0:
        print(f"  apt-get failed ({done.returncode}); using the Python load generator", flush=True)
    return shutil.which("wrk")


class Reader:
    """Runs one read load (profile or state) against a base URL, with wrk or the Python loadgen."""

    def __init__(self, wrk: str | None, workdir: Path, participants: int, connections: int) -> None:
        self.wrk, self.workdir = wrk, workdir
        self.participants, self.connections = participants, connections
        self.script = workdir / "reads.lua"
        self.script.write_text(WRK_SCRIPT)

    @property
    def tool(self) -> str:
        return "wrk" if self.wrk else "python-aiohttp"

    def run(self, base_url: str, mode: str, seconds: float, seed: int = 1) -> dict[str, Any]:
        if self.wrk:
            return self._wrk(base_url, mode, seconds, seed)
        return loadgen(
            base_url,
            [
                "--mode",
                mode,
                "--participants",
                str(self.participants),
                "--concurrency",
                str(self.connections),
                "--seconds",
                str(seconds),
                "--seed",
                str(seed),
            ],
            timeout=seconds + 60,
        )

    def _wrk(self, base_url: str, mode: str, seconds: float, seed: int) -> dict[str, Any]:
        argv = [
            self.wrk or "wrk", "-t1", f"-c{self.connections}", f"-d{max(1, round(seconds))}s",
            "--latency", "--timeout", "10s", "-s", str(self.script), base_url,
            "--", str(self.participants), mode, API_KEY, str(seed),
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed: {done.stderr.strip()}")
        return parse_wrk(done.stdout)


def parse_wrk(text: str) -> dict[str, Any]:
    def latency(label: str) -> float | None:
        found = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not found:
            return None
        value, unit = float(found.group(1)), found.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    requests = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    non_ok = int(bad.group(1)) if bad else 0
    total = int(requests.group(1)) if requests else 0
    return {
        "requests": total,
        "ok": total - non_ok,
        "non_2xx": non_ok,
        "socket_errors": errors.group(0) if errors else None,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": latency("50"),
        "p90_ms": latency("90"),
        "p99_ms": latency("99"),
    }


def loadgen(base_url: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run bench.loadgen in its own process and return its JSON."""
    argv = [sys.executable, "-m", "bench.loadgen", "--url", base_url, "--key", API_KEY, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


async def wait_dispatched(path: Path, topic: str, ends: dict[int, int], cap: float) -> float:
    """Seconds until the service's webhook dispatcher has passed ``ends`` (or the cap).

    A service started over a store projected beforehand finds the projector at the end of the
    topic but the dispatcher (its own position, in the same store) at its start: it reads the
    whole topic once (with no subscription it only moves its position). That catch-up happens
    once per store, not per read; measured beside the reads it took a third of the event
    loop's time (py-spy, 100,000 commits), so the reads wait for it like for the projector.
    """
    import asyncio
    import sqlite3

    def positions() -> dict[int, int]:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            try:
                found = db.execute(
                    "SELECT log_partition, next_offset FROM webhook_positions WHERE topic = ?",
                    (topic,),
                ).fetchall()
            except sqlite3.OperationalError:  # the table is not there yet
                return {}
        return {int(p): int(n) for p, n in found}

    started = time.perf_counter()
    while time.perf_counter() - started < cap:
        found = await asyncio.to_thread(positions)
        if all(found.get(p, 0) >= end for p, end in ends.items()):
            break
        await asyncio.sleep(0.2)
    return time.perf_counter() - started


def sample_bodies(base_url: str, pid: str) -> tuple[bytes, bytes]:
    """The real profile and state bodies of one participant, for the bare server to return."""
    status, profile = http("GET", f"{base_url}{BASE}/participants/{pid}")
    if status != 200:
        raise RuntimeError(f"GET profile of {pid}: {status} {profile[:200]!r}")
    status, state = http("GET", f"{base_url}{BASE}/participants/{pid}/state")
    if status != 200:
        raise RuntimeError(f"GET state of {pid}: {status} {state[:200]!r}")
    return profile, state


def start_bare(workdir: Path, profile: bytes, state: bytes) -> tuple[Process, str]:
    (workdir / "profile.json").write_bytes(profile)
    (workdir / "state.json").write_bytes(state)
    port = free_port()
    argv = [
        sys.executable, "-m", "bench.bare_server", "--port", str(port),
        "--profile", str(workdir / "profile.json"), "--state", str(workdir / "state.json"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMIFY_")}
    bare = Process("bare", argv, env, workdir / "bare.log").start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not bare.alive():
            raise RuntimeError(f"bare server exited:\n{bare.tail()}")
        try:
            status, _ = http("GET", f"{url}/ping", timeout=1)
            if status == 200:
                return bare, url
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("bare server did not start")
