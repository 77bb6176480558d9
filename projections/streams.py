"""How the store folds each kind of stream: participants, admin definitions, reward stock.

A stream projection keeps the rows of its streams for one batch: it loads them set-wise, folds
commits into them with the version check, and hands the store the writes to make.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from projections.participants.projector import Write
from schemas.events import Commit

# Run a SELECT ... IN (...) over keys; returns rows as tuples.
SelectIn = Callable[[str, list[tuple[Any, ...]]], list[tuple[Any, ...]]]


class StreamProjection(Protocol):
    """Folds one stream type's commits during one batch."""

    def load(self, select_in: SelectIn, commits: list[Commit]) -> None:
        """Read the current rows of every stream these commits touch."""
        ...

    def apply(self, commit: Commit, *, key_used: bool) -> tuple[str, list[Write]]:
        """The verdict (applied/conflict/duplicate) and the writes of its events."""
        ...

    def flush(self) -> list[Write]:
        """Upserts of the rows this batch changed."""
        ...


STREAMS: dict[str, Callable[[], StreamProjection]] = {}


def register_stream(name: str, factory: Callable[[], StreamProjection]) -> None:
    STREAMS[name] = factory
