"""The disk fills up under `gamify serve` (embedded): writes answer 503, /readyz says why.

Simulated without mounts or root: the server's RLIMIT_FSIZE is lowered (``prlimit``) so every
write that grows a file fails with EFBIG, as writes fail with ENOSPC on a full disk; SQLite
reports either as an OperationalError ("disk I/O error" / "database or disk is full"). While
it lasts every write answers 503 with ``Retry-After`` (never 500) within the write timeout, and
/readyz answers not ready; once the limit is lifted, retries with the same keys apply once.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from tests.system.faults import Answer, acall
from tests.system.support import eventually

WRITE_TIMEOUT_MS = 1500
SLACK = 1.0
WRITES = 3


async def test_writes_answer_503_and_readyz_fails_while_the_disk_is_full(processes: Any) -> None:
    server = processes(
        "serve",
        {"GAMIFY_API_KEYS": "acme:k-acme", "GAMIFY_WRITE_TIMEOUT_MS": str(WRITE_TIMEOUT_MS)},
        "serve",
    )
    await asyncio.to_thread(server.start)
    base = server.base_url
    assert server.proc is not None
    pid = server.proc.pid

    async def award(key: str, pid_: str = "u") -> Answer:
        return await acall(
            base, "POST", "/points/award", {"participant_id": pid_, "amount": 1}, key=key
        )

    async def readyz() -> Answer:
        return await acall(base, "GET", "/readyz")

    assert (await award("before")).status == 200
    unlimited = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, unlimited[1]))
    try:
        full = [await award(f"full-{i}", f"p{i}") for i in range(WRITES)]
        print("writes with the disk full:", [(a.status, round(a.seconds, 2)) for a in full])
        for a in full:
            assert a.status == 503, a
            assert a.headers.get("Retry-After") == "1"
            assert a.seconds < WRITE_TIMEOUT_MS / 1000 + SLACK, a.seconds
        answer = await readyz()
        print(f"/readyz with the disk full: {answer.seconds * 1000:.0f} ms, {answer.body}")
        assert answer.status == 503 and answer.seconds < 1.0, answer
        assert str(answer.body["checks"]["writes"]).startswith("failing: "), answer.body
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, unlimited)
    retried = await eventually(
        lambda: award("full-0", "p0"),
        lambda a: a.status == 200,
        timeout=20,
        what="a retry",
        context=server.tail,
    )
    assert retried.body["new_balance"] == 1
    for i in range(1, WRITES):
        assert (await award(f"full-{i}", f"p{i}")).status == 200
    await eventually(readyz, lambda a: a.status == 200, timeout=20, what="ready again")
    for i in range(WRITES):
        points = await acall(base, "GET", f"/participants/p{i}/points")
        assert points.body["balance"] == 1, points
