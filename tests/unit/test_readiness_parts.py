"""The parts /readyz is built from: the lag monitor's blame, stall detection, store errors."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence

import pytest
from eventsourcing.persistence import OperationalError, ProgrammingError

from projections.db import is_unavailable
from projections.lag import LagMonitor, LagReport, SingleFlight


async def _ends() -> dict[int, int]:
    return {0: 10, 1: 4}


async def _log_down() -> dict[int, int]:
    raise ConnectionRefusedError("broker down")


def _positions(partitions: Sequence[int]) -> dict[int, int]:
    return {0: 10, 1: 2}


def _store_down(partitions: Sequence[int]) -> dict[int, int]:
    raise OperationalError("connection refused")


async def test_the_lag_monitor_blames_the_log_or_the_store_for_what_failed() -> None:
    log_down = await LagMonitor("p", _log_down, _positions).measure()
    assert log_down.log_error and not log_down.store_error
    store_down = await LagMonitor("p", _ends, _store_down).measure()
    assert store_down.store_error and not store_down.log_error
    fine = await LagMonitor("p", _ends, _positions).measure()
    assert (fine.error, fine.lag) == (None, {0: 0, 1: 2})


async def test_a_hanging_side_is_reported_within_the_monitor_timeout() -> None:
    async def hang() -> dict[int, int]:
        await asyncio.sleep(10)
        return {}

    started = time.monotonic()
    report = await LagMonitor("p", hang, _positions, timeout=0.2).measure()
    assert report.log_error == "no answer in time"
    assert time.monotonic() - started < 1.0


def test_a_backlog_that_does_not_move_is_a_stall_and_no_backlog_never_is() -> None:
    stalled = LagReport({0: 3}, measured_at=100.0, progressed_at=97.5)
    assert stalled.stalled_for() == 2.5
    assert LagReport({0: 0}, measured_at=100.0, progressed_at=50.0).stalled_for() == 0.0


async def test_single_flight_runs_one_call_at_a_time_and_callers_wait_a_bounded_time() -> None:
    calls: list[int] = []
    flight = SingleFlight[None]()

    def slow() -> None:
        calls.append(1)
        time.sleep(0.5)

    for _ in range(3):
        with pytest.raises(TimeoutError):
            await flight(slow, 0.05)
    assert len(calls) == 1
    await flight(slow, 2.0)  # joins the call in flight, which then finishes
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (OperationalError("server closed the connection"), True),
        (sqlite3.OperationalError("database or disk is full"), True),
        (ConnectionResetError(), True),
        (ProgrammingError("syntax error"), False),
        (KeyError("bug"), False),
    ],
)
def test_store_errors_are_told_from_programming_errors(
    exc: BaseException, unavailable: bool
) -> None:
    assert is_unavailable(exc) is unavailable
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = exc
    assert is_unavailable(wrapped) is unavailable
