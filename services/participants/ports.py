"""What the command handlers need from the outside world, as Protocols."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from schemas.events import Commit
from schemas.log import LogPosition
from services.participants.domain import ParticipantState
from services.participants.engine import Catalog


class EventLog(Protocol):
    """The participant-events log: append-only, ordered per participant key."""

    async def append(self, commit: Commit) -> LogPosition:
        """Durably append one commit (one record) and return where it landed."""
        ...


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    """What the projector decided for a commit: applied, or why not."""

    commit_id: str
    status: str  # "applied" | "conflict" | "duplicate" | "quarantined" (could not be applied)
    command: str
    events: list[dict[str, Any]]
    fingerprint: str | None = None  # the request's, for a key's first commit (when recorded)


class ParticipantReader(Protocol):
    """Reads the handlers need from the read models."""

    async def get_state(self, tenant: str, participant_id: str) -> ParticipantState | None:
        """The participant's state and version, or None if it does not exist."""
        ...

    async def get_catalog(self, tenant: str, *, cached: bool = False) -> Catalog:
        """The tenant's active definitions (``cached``: a recent copy is good enough)."""
        ...

    async def get_outcome(self, commit_id: str) -> CommitOutcome | None:
        """The projector's verdict on a commit, once projected."""
        ...

    async def get_idempotent(
        self, tenant: str, participant_id: str, key: str
    ) -> CommitOutcome | None:
        """The applied commit that first used this idempotency key, if any."""
        ...


class ProjectionProgress(Protocol):
    """Read-your-writes: wait until the projector has passed a log position."""

    async def wait_for(self, position: LogPosition, timeout: float) -> bool:
        """True once ``position`` is projected; False if ``timeout`` seconds pass first."""
        ...
