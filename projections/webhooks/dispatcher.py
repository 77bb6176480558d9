"""The webhook dispatcher: reads the log with its own position and fills the outbox.

Like a projector (projections/runner.py), but each batch first waits until the projector has
passed it, because only the projector's verdict (commit_outcomes) says which commits were applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from projections import metrics
from projections.sources import LogSource
from projections.webhooks.outbox import Outbox

logger = logging.getLogger(__name__)

NAME = "webhooks"
# Given a partition, the projector's next offset on it (0 when it has none).
ProjectorPosition = Callable[[int], Awaitable[int]]


async def run(
    source: LogSource,
    outbox: Outbox,
    projector_position: ProjectorPosition,
    stop: asyncio.Event,
    *,
    max_records: int = 500,
    poll_timeout: float = 0.5,
    wait_step: float = 0.05,
    clock: Callable[[], float] = time.time,
) -> None:
    """Dispatch from ``source`` into ``outbox`` until ``stop`` is set.

    A batch is recorded only after the projector's position passed its last record; if ``stop``
    comes first, nothing of it is recorded and the next run reads it again.
    """

    async def start_positions(partitions: Sequence[int]) -> dict[int, int]:
        return await asyncio.to_thread(outbox.next_offsets, source.topic, list(partitions))

    await source.start(start_positions)
    try:
        while not stop.is_set():
            batch = await source.read(max_records, poll_timeout)
            done: dict[int, int] = {}
            for partition, records in batch.items():
                if not records:
                    continue
                end = records[-1].offset + 1
                if not await _projected(projector_position, partition, end, stop, wait_step):
                    return
                recorded = await asyncio.to_thread(
                    outbox.record, source.topic, partition, records, clock()
                )
                metrics.WEBHOOK_RECORDED.inc(recorded)
                done[partition] = end
            if done:
                await source.committed(done)
    finally:
        await source.stop()


async def _projected(
    position: ProjectorPosition, partition: int, end: int, stop: asyncio.Event, step: float
) -> bool:
    """Wait until the projector's next offset on ``partition`` reaches ``end``; False on stop."""
    while await position(partition) < end:
        try:
            await asyncio.wait_for(stop.wait(), step)
            return False
        except TimeoutError:
            continue
    return True
