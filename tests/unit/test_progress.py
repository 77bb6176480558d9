"""Progress: read-your-writes waits wake on the local projector's advance and share polls."""

from __future__ import annotations

import asyncio

from projections.progress import Progress
from schemas.log import LogPosition


async def test_an_advance_wakes_the_waiters_it_passed_and_no_others() -> None:
    progress = Progress(lambda partition: None, poll_interval=10)
    early = asyncio.ensure_future(progress.wait_for(LogPosition(0, 3), 5))
    late = asyncio.ensure_future(progress.wait_for(LogPosition(0, 9), 5))
    other = asyncio.ensure_future(progress.wait_for(LogPosition(1, 0), 5))
    await asyncio.sleep(0)
    progress.advance(0, 4)
    assert await asyncio.wait_for(early, 1) is True
    await asyncio.sleep(0.01)
    assert not late.done() and not other.done()
    progress.advance(0, 10)
    progress.advance(1, 1)
    assert await asyncio.wait_for(asyncio.gather(late, other), 1) == [True, True]
    assert await progress.wait_for(LogPosition(0, 2), 0) is True  # already passed


async def test_waiters_share_one_store_poll_per_partition_and_interval() -> None:
    reads: list[int] = []
    stored = {0: 0}

    def read_position(partition: int) -> int | None:
        reads.append(partition)
        return stored[partition]

    progress = Progress(read_position, poll_interval=0.05)
    waits = [asyncio.ensure_future(progress.wait_for(LogPosition(0, n), 5)) for n in range(50)]
    await asyncio.sleep(0.3)
    assert not any(w.done() for w in waits)
    assert 1 <= len(reads) <= 8, f"{len(reads)} polls for 50 waiters over 0.3 s"
    stored[0] = 50  # another process projected them
    assert all(await asyncio.wait_for(asyncio.gather(*waits), 1))


async def test_a_position_never_reached_times_out() -> None:
    progress = Progress(lambda partition: 0, poll_interval=0.01)
    assert await progress.wait_for(LogPosition(0, 0), 0.05) is False
    progress.advance(0, 1)
    assert await progress.wait_for(LogPosition(0, 0), 0.05) is True


async def test_a_partition_the_local_projector_advances_is_not_polled() -> None:
    reads: list[int] = []
    progress = Progress(lambda partition: reads.append(partition), poll_interval=0.01)
    progress.advance(0, 1)
    waiting = asyncio.ensure_future(progress.wait_for(LogPosition(0, 5), 5))
    await asyncio.sleep(0.2)
    assert reads == []
    progress.advance(0, 6)
    assert await asyncio.wait_for(waiting, 1) is True
    assert await progress.wait_for(LogPosition(1, 0), 0.05) is False  # partition 1: polled
    assert reads and set(reads) == {1}
