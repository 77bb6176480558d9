"""A write's budget and what its failures mean: the write timeout and the 503 rule's exceptions.

Every step of one request's writes shares one deadline (``write_budget``); ``WriteScope``
remembers whether an append was attempted, from when on a failure is ``CommitUncertain``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

RETRY_WITH_KEY = (
    "The write may have been recorded but its result is not known yet; "
    "retry with the same Idempotency-Key to get its result."
)


class CommitUncertain(Exception):
    """A failure after a commit may have reached the log: its outcome is unknown here.

    The API answers 503 with ``Retry-After`` (never 500): a retry with the same
    Idempotency-Key returns the original result if the commit landed, or decides afresh if
    it did not. ``reason`` (for logs only) says what failed.
    """

    def __init__(self, commit_id: str | None, reason: str = "") -> None:
        self.commit_id = commit_id
        self.reason = reason
        super().__init__(RETRY_WITH_KEY)


class NotYetProjected(CommitUncertain):
    """The commit is on the log but its projection did not finish in time."""

    def __init__(self, commit_id: str) -> None:
        super().__init__(commit_id, "not projected within the write timeout")


class WriteTimedOut(Exception):
    """The write timeout passed before anything was appended: nothing was recorded (503)."""

    def __init__(self) -> None:
        super().__init__("The write did not finish in time and nothing was recorded; retry.")


@dataclass(slots=True)
class WriteScope:
    """One request's writes: the deadline they share and whether any append was attempted.

    ``deadline`` is event-loop time, set by the first write step of the scope and kept for the
    rest of it; ``appended`` turns true just before the first append, from when on a failure
    may leave a commit behind. ``bounded`` holds the tasks already under the deadline.
    """

    deadline: float | None = None
    appended: bool = False
    bounded: set[asyncio.Task[Any]] = field(default_factory=set)


_scope: ContextVar[WriteScope | None] = ContextVar("gamify_write_scope", default=None)


@contextmanager
def write_scope() -> Iterator[WriteScope]:
    """Track the writes of one request (the API's error middleware opens one per request)."""
    scope = WriteScope()
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


@asynccontextmanager
async def write_budget(timeout: float) -> AsyncIterator[WriteScope]:
    """Bound a write, end to end, by ``timeout`` seconds from the scope's first write step.

    Every step of one scope (a saga's steps, ``execute`` inside a handler, a batch's items in
    their own tasks) shares the first step's deadline. When it passes, the work is cancelled
    and :class:`CommitUncertain` is raised if an append was attempted (the record may still
    land), else :class:`WriteTimedOut`.
    """
    scope = _scope.get()
    token = None
    if scope is None:
        scope = WriteScope()
        token = _scope.set(scope)
    task = asyncio.current_task()
    try:
        if task is None or task in scope.bounded:  # an outer step of this task owns the clock
            yield scope
            return
        if scope.deadline is None:
            scope.deadline = asyncio.get_running_loop().time() + timeout
        bound = asyncio.timeout_at(scope.deadline)
        scope.bounded.add(task)
        try:
            async with bound:
                yield scope
        except TimeoutError:
            if not bound.expired():
                raise
            if scope.appended:
                raise CommitUncertain(None, f"write timeout ({timeout:g}s) passed") from None
            raise WriteTimedOut() from None
        finally:
            scope.bounded.discard(task)
    finally:
        if token is not None:
            _scope.reset(token)
