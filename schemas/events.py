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
    """Profile fields changed; the event holds only what changed, never the whole profile.

    ``changes``: the new values of the scalar fields that changed (``display_name``,
    ``avatar_url``). Attributes: when ``attributes_replaced`` the map was emptied first (a
    re-registration that replaces them); then the keys of ``attributes_removed`` are removed and
    those of ``attributes_set`` set. Its size is bounded by the request that caused it, so the log
    grows with what clients send (DESIGN.md, "What enters the log").
    """

    TYPE: ClassVar[str] = "ParticipantProfileUpdated"
    class_version: ClassVar[int] = 3
    changes: JSON = field(default_factory=dict)
    attributes_replaced: bool = False
    attributes_set: JSON = field(default_factory=dict)
    attributes_removed: list[str] = field(default_factory=list)

    @staticmethod
    def upcast_v1_v2(data: JSON) -> None:
        """v1 (pre-release) called the changed fields ``fields``."""
        data["changes"] = data.pop("fields", {})

    @staticmethod
    def upcast_v2_v3(data: JSON) -> None:
        """v2 carried the whole merged attribute map in ``changes.attributes``: a replacement."""
        changes = dict(data.get("changes") or {})
        replaced = "attributes" in changes
        attributes = changes.pop("attributes", None)
        data["changes"] = changes
        data["attributes_replaced"] = replaced
        data["attributes_set"] = dict(attributes or {})
        data["attributes_removed"] = []


def attributes_after(event: ParticipantProfileUpdated, before: JSON) -> JSON:
    """The attribute map after ``event`` (a new dict): emptied if replaced, keys removed, set.

    The one meaning of the event's attribute fields, for the projector's fold and for decisions.
    """
    after = {} if event.attributes_replaced else dict(before)
    for key in event.attributes_removed:
        after.pop(key, None)
    after.update(event.attributes_set)
    return after


@dataclass(frozen=True, slots=True)
class PointsAwarded(Event):
    """Points were credited; ``balance_after`` is the spendable balance once applied.

    ``amount`` is what was credited: ``base_amount`` (what the request or rule asked for) times
    the participant's tier ``multiplier`` (a decimal string such as ``"1.5"``, floored), or
    ``base_amount`` itself when ``multiplier`` is null. ``expires_at`` (``YYYY-MM-DDTHH:MM:SSZ``
    or null) makes the credit an expiring lot whose id is ``transaction_id``: spends consume
    lots first, soonest expiry first, and the scheduler expires what is left of it
    (``PointsExpired``; schemas.sections, docs/points-expiry.md).
    """

    TYPE: ClassVar[str] = "PointsAwarded"
    class_version: ClassVar[int] = 3
    transaction_id: str = ""
    amount: int = 0
    balance_after: int = 0
    reason: str | None = None
    metadata: JSON = field(default_factory=dict)
    base_amount: int = 0
    multiplier: str | None = None
    expires_at: str | None = None

    @staticmethod
    def upcast_v1_v2(data: JSON) -> None:
        """v1 (pre-release) had no ``metadata``."""
        data.setdefault("metadata", {})

    @staticmethod
    def upcast_v2_v3(data: JSON) -> None:
        """v2 had no tier multiplier and no expiry: the base was the amount."""
        data.setdefault("base_amount", data.get("amount", 0))
        data.setdefault("multiplier", None)
        data.setdefault("expires_at", None)


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

    @staticmethod
    def upcast_v1_v2(data: JSON) -> None:
        """v1 (pre-release) had no ``metadata``."""
        data.setdefault("metadata", {})


@dataclass(frozen=True, slots=True)
class PointsExpired(Event):
    """The unspent remainder of an expiring credit left the balance (ledger type ``expire``).

    ``lot_id`` is the ``transaction_id`` of the ``PointsAwarded`` that opened the lot,
    ``expires_at`` its expiry and ``amount`` (positive) what was still unspent of it;
    ``balance_after`` is the spendable balance once applied. Expiry is not spending:
    ``total_spent`` and ``total_earned`` stay as they are (gamify-api.md 3.6).
    """

    TYPE: ClassVar[str] = "PointsExpired"
    transaction_id: str = ""
    lot_id: str = ""
    amount: int = 0
    balance_after: int = 0
    expires_at: str = ""


@dataclass(frozen=True, slots=True)
class TierChanged(Event):
    """The participant's tier became ``code`` (an upgrade on points, or a manual assignment)."""

    TYPE: ClassVar[str] = "TierChanged"
    class_version: ClassVar[int] = 2
    code: str = ""
    name: str = ""
    level: int = 0
    color: str | None = None
    previous_code: str | None = None
    previous_level: int | None = None
    manual: bool = False
    reason: str | None = None  # POST /tiers/assign's free-text reason (v2)

    @staticmethod
    def upcast_v1_v2(data: JSON) -> None:
        """v1 did not record the assignment's ``reason``."""
        data.setdefault("reason", None)


@dataclass(frozen=True, slots=True)
class BadgeEarned(Event):
    """A badge was earned: awarded through the API (``manual``) or by its criteria."""

    TYPE: ClassVar[str] = "BadgeEarned"
    class_version: ClassVar[int] = 2
    code: str = ""
    name: str = ""
    rarity: str | None = None
    manual: bool = False
    metadata: JSON = field(default_factory=dict)  # POST /badges/award's context (v2)

    @staticmethod
    def upcast_v1_v2(data: JSON) -> None:
        """v1 did not record the award's ``metadata``."""
        data.setdefault("metadata", {})


@dataclass(frozen=True, slots=True)
class EventTracked(Event):
    """A custom event the participant did (POST /events), the input of rules and challenges."""

    TYPE: ClassVar[str] = "EventTracked"
    event_id: str = ""
    event_name: str = ""
    properties: JSON = field(default_factory=dict)
    occurred_at: str = ""


@dataclass(frozen=True, slots=True)
class StreakExtended(Event):
    """A tick counted for a new period of a streak (``count`` is the streak after it)."""

    TYPE: ClassVar[str] = "StreakExtended"
    code: str = ""
    period: str = ""
    count: int = 0
    longest: int = 0
    recorded_at: str = ""
    freezes_used: int = 0
    freezes_available: int = 0
    freezes_granted_through: str | None = None
    new_record: bool = False  # ``count`` beat the previous ``longest`` (a tie is no record)


@dataclass(frozen=True, slots=True)
class StreakBroken(Event):
    """Whole periods passed without a tick (beyond grace and freezes): the streak ended."""

    TYPE: ClassVar[str] = "StreakBroken"
    code: str = ""
    previous_count: int = 0


@dataclass(frozen=True, slots=True)
class ChallengeProgressed(Event):
    """Progress of a challenge's objectives after an event (counts within the window)."""

    TYPE: ClassVar[str] = "ChallengeProgressed"
    code: str = ""
    window: str = ""
    progress: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChallengeCompleted(Event):
    """Every objective of a challenge was met within its window."""

    TYPE: ClassVar[str] = "ChallengeCompleted"
    code: str = ""
    window: str = ""


@dataclass(frozen=True, slots=True)
class RewardClaimed(Event):
    """A reward was claimed; with a code from stock when the reward has an inventory."""

    TYPE: ClassVar[str] = "RewardClaimed"
    claim_id: str = ""
    reward_id: str = ""
    reward_name: str = ""
    reward_type: str = ""
    code_value: str | None = None
    points_deducted: int = 0


@dataclass(frozen=True, slots=True)
class ParticipantErased(Event):
    """The participant's personal data was erased (DELETE /admin/participants/{pid}).

    Its data key was destroyed before this commit was appended, so every personal field sealed
    with it reads as empty from now on, in every replay (schemas/sealing.py). Read models clear
    the profile and the free text of the participant's history up to this commit; points,
    counts, badges and leaderboard scores stay (docs/erasure.md).
    """

    TYPE: ClassVar[str] = "ParticipantErased"


@dataclass(frozen=True, slots=True)
class RewardCodeReserved(Event):
    """Reward stream: one code of the inventory is held for a claim."""

    TYPE: ClassVar[str] = "RewardCodeReserved"
    claim_id: str = ""
    participant_id: str = ""
    code_value: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class RewardCodeReleased(Event):
    """Reward stream: a held code went back to stock (the claim was refused: compensation)."""

    TYPE: ClassVar[str] = "RewardCodeReleased"
    claim_id: str = ""
    code_value: str | None = None


@dataclass(frozen=True, slots=True)
class DefinitionCreated(Event):
    """Definition stream: an admin definition (tier, badge, ...) was created."""

    TYPE: ClassVar[str] = "DefinitionCreated"
    kind: str = ""
    id: str = ""
    code: str = ""
    body: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DefinitionUpdated(Event):
    """Definition stream: fields of a definition changed (``changes`` holds their new values)."""

    TYPE: ClassVar[str] = "DefinitionUpdated"
    changes: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DefinitionDeactivated(Event):
    """Definition stream: soft delete; the definition stays readable with is_active false."""

    TYPE: ClassVar[str] = "DefinitionDeactivated"


@dataclass(frozen=True, slots=True)
class ApiKeyIssued(Event):
    """API-key stream: a key was issued; the log keeps its SHA-256 digest, never the key.

    ``key_hash``: hex SHA-256 of the key; ``prefix``: its first characters, shown in listings;
    ``scope``: ``standard`` or ``admin``; ``rate_limit``: the key's own limit (requests per 60 s)
    or None for the configured default. The tenant is the commit's.
    """

    TYPE: ClassVar[str] = "ApiKeyIssued"
    id: str = ""
    key_hash: str = ""
    prefix: str = ""
    name: str = ""
    scope: str = "standard"
    rate_limit: int | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyRevoked(Event):
    """API-key stream: the key is refused from the request after this commit is projected."""

    TYPE: ClassVar[str] = "ApiKeyRevoked"


EVENT_CLASSES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        ParticipantRegistered,
        ParticipantProfileUpdated,
        ParticipantErased,
        PointsAwarded,
        PointsDeducted,
        PointsExpired,
        TierChanged,
        BadgeEarned,
        EventTracked,
        StreakExtended,
        StreakBroken,
        ChallengeProgressed,
        ChallengeCompleted,
        RewardClaimed,
        RewardCodeReserved,
        RewardCodeReleased,
        DefinitionCreated,
        DefinitionUpdated,
        DefinitionDeactivated,
        ApiKeyIssued,
        ApiKeyRevoked,
    )
}

# Streams: a participant (the default), an admin definition ("definition", id "<kind>:<code>")
# a reward's code stock ("reward", id = the reward id) or an issued API key ("api_key", id = the
# key's id). Each has its own versions.
PARTICIPANT, DEFINITION, REWARD, API_KEY = "participant", "definition", "reward", "api_key"


@dataclass(frozen=True, slots=True)
class Causation:
    """Why a commit exists: which command, from where, under which idempotency key.

    ``fingerprint`` (with a key only) is the request's ``schemas.codec.fingerprint``: the same key
    sent again with another fingerprint is a different request (422), not a retry.
    ``input`` is the command's validated input (services.participants.commands.command_input:
    the boundary-normalised fields the command was built from, never a key or a secret), so
    ``gamify simulate`` can decide it again; None on definition and reward-stock commits, on
    profile commands (their events hold what changed) and on records written before it existed.
    """

    command: str
    source: str = "http"
    request_id: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    input: JSON | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """One log record: the events one command decided for one stream, atomically.

    ``expected_version`` is the stream version the decision was made on; the projector applies
    the commit only if the stream is still at that version. ``participant_id`` is the stream's
    id (for a participant stream, the participant). ``personal`` is the sealed envelope of the
    commit's personal fields (schemas/sealing.py) between ``seal`` and the log; a decoded commit
    has them back in place (or empty, once erased) and ``personal`` None.
    """

    commit_id: str
    tenant: str
    participant_id: str
    expected_version: int
    recorded_at: str
    causation: Causation
    events: tuple[Event, ...]
    stream: str = PARTICIPANT
    personal: JSON | None = None

    @property
    def key(self) -> bytes:
        """The log key: one stream's commits share it, so they stay in order."""
        if self.stream == PARTICIPANT:
            return participant_key(self.tenant, self.participant_id)
        return f"{self.tenant}:{self.stream}/{self.participant_id}".encode()


def participant_key(tenant: str, participant_id: str) -> bytes:
    """Log key of a participant; tenants never contain ':' so the key is unambiguous."""
    return f"{tenant}:{participant_id}".encode()
