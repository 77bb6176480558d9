"""Health that background workers and the write path report, for /readyz to read."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

FAILURE_WINDOW = 5.0  # seconds a failure keeps the process not ready


@dataclass(slots=True)
class WorkerStatus:
    """A background worker's health as /readyz sees it (kept by the worker's runner).

    ``joined`` tells whether the worker holds its share of the log (a consumer group gave it
    its partitions); ``failed_at``/``last_error`` the last failure (the worker restarts).
    """

    name: str
    joined: Callable[[], bool] = lambda: True
    running: bool = False
    last_error: str | None = None
    failed_at: float = 0.0

    def failed(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        self.failed_at = time.monotonic()

    def problem(self) -> str | None:
        """Why this worker stops writes right now, or None."""
        if self.last_error and time.monotonic() - self.failed_at < FAILURE_WINDOW:
            return f"failing: {self.last_error}"
        if not self.running:
            return "not running"
        if not self.joined():
            return "waiting for its partitions (joining the consumer group)"
        return None


@dataclass(slots=True)
class WriteHealth:
    """Whether writes fail because the store or the log cannot be used (full, down, locked).

    The error middleware reports every write: a failure from an unusable store or log, or a
    write that worked. Not ready while the last such report is a failure of the last
    FAILURE_WINDOW seconds: the check that sees a full disk, which reads do not notice.
    """

    failed_at: float = 0.0
    last_error: str | None = None

    def failed(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        self.failed_at = time.monotonic()

    def worked(self) -> None:
        self.last_error = None

    def problem(self) -> str | None:
        if self.last_error and time.monotonic() - self.failed_at < FAILURE_WINDOW:
            return f"failing: {self.last_error}"
        return None
