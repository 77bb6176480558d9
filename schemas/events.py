"""Participant events and the commit envelope that carries them on the log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every participant event; subclasses are past-tense facts."""

    TYPE: ClassVar[str] = ""
    # Schema version of the event's data, as eventsourcing's ``class_version``. Reading an older
    # record calls ``upcast_v<n>_v<n+1>(data)`` for each step (a static method that edits the dict).
    class_version: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class ParticipantRegistered(Event):
    """A participant came into existence (explicitly, or on first use when ``auto_created``)."""

    TYPE: ClassVar[str] = "ParticipantRegistered"
    display_name: str | None = None
    avatar_url: str | None = None
    attributes: JSON = field(default_factory=dict)
    auto_created: bool = False


@dataclass(frozen=True, slots=True)
class ParticipantProfileUpdated(Event):
    """Profile fields now hold these values; only the keys present in ``changes`` changed."""

    TYPE: ClassVar[str] = "ParticipantProfileUpdated"
    class_version: ClassVar[int] = 2
    changes: JSON = field(default_factory=dict)

    @staticmethod
    def upcast_v1_v2(data: JSON) -> None:
        """v1 (pre-release) called the changed fields ``fields``."""
        data["changes"] = data.pop("fields", {})


@dataclass(frozen=True, slots=True)
class PointsAwarded(Event):
    """Points were credited; ``balance_after`` is the spendable balance once applied."""

    TYPE: ClassVar[str] = "PointsAwarded"
    class_version: ClassVar[int] = 2
    transaction_id: str = ""
    amount: int = 0
    balance_after: int = 0
    reason: str | None = None
    metadata: JSON = field(default_factory=dict)

    @staticmethod
    def upcast_v1_v2(data: JSON) -> None:
        """v1 (pre-release) had no ``metadata``."""
        data.setdefault("metadata", {})


@dataclass(frozen=True, slots=True)
class PointsDeducted(Event):
    """Points were debited; ``amount`` is positive."""

    TYPE: ClassVar[str] = "PointsDeducted"
    class_version: ClassVar[int] = 2
    transaction_id: str = ""
    amount: int = 0
    balance_after: int = 0
    reason: str | None = None
    metadata: JSON = field(default_factory=dict)

    upcast_v1_v2 = PointsAwarded.upcast_v1_v2


EVENT_CLASSES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (ParticipantRegistered, ParticipantProfileUpdated, PointsAwarded, PointsDeducted)
}


@dataclass(frozen=True, slots=True)
class Causation:
    """Why a commit exists: which command, from where, under which idempotency key."""

    command: str
    source: str = "http"
    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """One log record: the events one command decided for one participant, atomically.

    ``expected_version`` is the participant version the decision was made on; the projector
    applies the commit only if the participant is still at that version.
    """

    commit_id: str
    tenant: str
    participant_id: str
    expected_version: int
    recorded_at: str
    causation: Causation
    events: tuple[Event, ...]

    @property
    def key(self) -> bytes:
        """The log key: one participant's commits share it, so they stay in order."""
        return participant_key(self.tenant, self.participant_id)


def participant_key(tenant: str, participant_id: str) -> bytes:
    """Log key of a participant; tenants never contain ':' so the key is unambiguous."""
    return f"{tenant}:{participant_id}".encode()
