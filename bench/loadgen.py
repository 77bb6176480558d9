"""A load generator in its own process: aiohttp client, bounded by request count and time.

Closed loop (``--concurrency C``: C workers, each sends its next request when the last one is
answered) or open loop (``--rate R``: requests start on a fixed schedule; latency counts from the
scheduled start, so a slow server is not hidden by the generator waiting for it). Prints one
JSON object: requests, errors, statuses, requests/s, latency percentiles in milliseconds.

    python -m bench.loadgen --url http://127.0.0.1:8080 --key KEY --mode award \
        --concurrency 16 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

BASE = "/api/v1/gamify"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT (loopback only)")
    parser.add_argument("--key", required=True)
    parser.add_argument("--mode", choices=("profile", "state", "award"), required=True)
    parser.add_argument("--participants", type=int, default=1000, help="user_0000000.. to read")
    parser.add_argument("--prefix", default="w_", help="participant id prefix of awards")
    parser.add_argument("--pool", type=int, default=1000, help="participants awards spread over")
    parser.add_argument("--concurrency", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests per second")
    parser.add_argument("--max-inflight", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
        parser.error("only loopback URLs")
    if (args.concurrency > 0) == (args.rate > 0):
        parser.error("give exactly one of --concurrency and --rate")
    result = asyncio.run(Load(args).run())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.random = random.Random(args.seed)  # noqa: S311 - load, not secrets
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.balances: dict[str, int] = {}
        self.failed_pids: set[str] = set()

    def _request(self) -> tuple[str, str, dict[str, Any] | None, str | None]:
        a = self.args
        if a.mode == "award":
            pid = f"{a.prefix}{self.random.randrange(a.pool):06d}"
            body = {"participant_id": pid, "amount": 1, "reason": "bench"}
            return "POST", f"{a.url}{BASE}/points/award", body, pid
        pid = f"user_{self.random.randrange(a.participants):07d}"
        tail = "/state" if a.mode == "state" else ""
        return "GET", f"{a.url}{BASE}/participants/{pid}{tail}", None, None

    async def _one(self, session: aiohttp.ClientSession, start: float) -> None:
        method, url, body, pid = self._request()
        try:
            async with session.request(method, url, json=body) as answer:
                data = await answer.read()
                self.statuses[answer.status] += 1
                if pid is not None:
                    if answer.status == 200:
                        balance = json.loads(data)["new_balance"]
                        self.balances[pid] = max(balance, self.balances.get(pid, 0))
                    else:
                        self.failed_pids.add(pid)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.errors[type(exc).__name__] += 1
            if pid is not None:
                self.failed_pids.add(pid)
        self.latencies.append((time.perf_counter() - start) * 1000)

    async def run(self) -> dict[str, Any]:
        a = self.args
        timeout = aiohttp.ClientTimeout(total=30)
        limit = max(a.concurrency, a.max_inflight if a.rate else 0)
        connector = aiohttp.TCPConnector(limit=limit, force_close=False)
        headers = {"X-API-Key": a.key}
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers
        ) as session:
            started = time.perf_counter()
            deadline = started + a.seconds
            if a.concurrency:
                await asyncio.gather(
                    *[self._worker(session, deadline) for _ in range(a.concurrency)]
                )
            else:
                await self._open_loop(session, started, deadline)
            elapsed = time.perf_counter() - started
            ryw = await self._read_your_writes(session) if a.mode == "award" else None
        done = sorted(self.latencies)
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)

        def pct(share: float) -> float | None:
            if not done:
                return None
            return done[min(len(done) - 1, round(share * (len(done) - 1)))]

        return {
            "mode": a.mode,
            "concurrency": a.concurrency or None,
            "target_rate": a.rate or None,
            "requests": len(done),
            "ok": ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "seconds": elapsed,
            "rps": ok / elapsed if elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": done[-1] if done else None,
            "read_your_writes": ryw,
        }

    async def _worker(self, session: aiohttp.ClientSession, deadline: float) -> None:
        while self.sent < self.args.max_requests:
            now = time.perf_counter()
            if now >= deadline:
                return
            self.sent += 1
            await self._one(session, now)

    async def _open_loop(
        self, session: aiohttp.ClientSession, started: float, deadline: float
    ) -> None:
        a = self.args
        interval = 1.0 / a.rate
        inflight: set[asyncio.Task[None]] = set()
        gate = asyncio.Semaphore(a.max_inflight)
        i = 0
        while self.sent < a.max_requests:
            scheduled = started + i * interval
            if scheduled >= deadline:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            self.sent += 1
            i += 1

            async def one(at: float = scheduled) -> None:
                try:
                    await self._one(session, at)
                finally:
                    gate.release()

            task = asyncio.create_task(one())
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        if inflight:
            await asyncio.wait(inflight, timeout=30)

    async def _read_your_writes(self, session: aiohttp.ClientSession) -> dict[str, int]:
        """GET the balance of some awarded participants: each must equal its last award's answer."""
        checked = mismatched = 0
        sample = [p for p in sorted(self.balances) if p not in self.failed_pids][:20]
        for pid in sample:
            url = f"{self.args.url}{BASE}/participants/{pid}/points"
            async with session.get(url) as answer:
                checked += 1
                if answer.status != 200 or (await answer.json())["balance"] < self.balances[pid]:
                    mismatched += 1
        return {"checked": checked, "mismatched": mismatched}


if __name__ == "__main__":
    sys.exit(main())
