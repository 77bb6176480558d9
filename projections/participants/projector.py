"""Pure fold of participant commits into the participant row and row writes, with the version check.

Feature modules (``projections/participants/features``) register an ``evolver`` for their events
(what the event changes in the row's own fields; ``schemas.sections.fold`` folds the sections)
and ``writer`` (rows of their own tables). The fold assigns to a ``Draft``, a working copy of the
row, instead of building a new frozen row per event (issue 11).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from schemas.events import (
    Commit,
    Event,
    ParticipantErased,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    PointsExpired,
    attributes_after,
)
from schemas.sections import fold

APPLIED, CONFLICT, DUPLICATE = "applied", "conflict", "duplicate"


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    """The participant read model: profile fields, counters, engine sections and the version.

    ``sections`` holds each feature's state by name (``tier``, ``badges``, ``streaks``, ...).
    """

    tenant: str
    participant_id: str
    version: int = 0
    display_name: str | None = None
    avatar_url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    balance: int = 0
    total_earned: int = 0
    total_spent: int = 0
    total_events: int = 0
    rewards_claimed: int = 0
    is_active: bool = True
    created_at: str = ""
    last_seen_at: str = ""
    sections: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str, default: Any = None) -> Any:
        return self.sections.get(name, default)

    def with_section(self, name: str, value: Any) -> ParticipantRow:
        return replace(self, sections={**self.sections, name: value})


class Draft(ParticipantRow):
    """A participant row while it is folded: the same fields, but assignable.

    The fold assigns to a draft event by event instead of building a new frozen row per event
    (issue 11). A draft is a working copy: the participant stream keeps one per participant for
    a whole batch (loaded from the database, or new) and writes its columns at flush;
    ``apply_commit`` folds a copy of its row and returns it frozen (``freeze``). Assign new
    values to a draft's fields and never change its dicts (``attributes``, ``sections``) in
    place: a copy shares them with the row it was copied from.
    """

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__


def draft_of(row: ParticipantRow) -> Draft:
    """A draft with ``row``'s values (a shallow copy: the dicts are shared, not copied)."""
    new = object.__new__(Draft)
    new.tenant = row.tenant
    new.participant_id = row.participant_id
    new.version = row.version
    new.display_name = row.display_name
    new.avatar_url = row.avatar_url
    new.attributes = row.attributes
    new.balance = row.balance
    new.total_earned = row.total_earned
    new.total_spent = row.total_spent
    new.total_events = row.total_events
    new.rewards_claimed = row.rewards_claimed
    new.is_active = row.is_active
    new.created_at = row.created_at
    new.last_seen_at = row.last_seen_at
    new.sections = row.sections
    return new


def new_draft(commit: Commit) -> Draft:
    """The draft of a participant the commit creates: every field at its default."""
    return draft_of(
        ParticipantRow(commit.tenant, commit.participant_id, created_at=commit.recorded_at)
    )


def freeze(draft: Draft) -> ParticipantRow:
    """``draft`` made a ``ParticipantRow`` in place (no copy): frozen from then on.

    The two classes have the same slots, so the object changes class and keeps its values.
    """
    draft.__class__ = ParticipantRow  # type: ignore[assignment]
    return draft


def replace(row: ParticipantRow, **changes: Any) -> ParticipantRow:
    """``row`` with ``changes``: ``dataclasses.replace`` for this one class, without its cost.

    A copy of every field plus the changes (the row has no ``__post_init__`` and no field with
    ``init=False``, so it is the same row); an unknown name raises AttributeError.
    """
    new = draft_of(row)
    for name, value in changes.items():
        setattr(new, name, value)  # slots only: an unknown name raises
    return freeze(new)


class Write(NamedTuple):
    """One row change the fold asks the store to make: a registered statement and its values."""

    statement: str
    params: tuple[Any, ...]


def history(statement: str, commit: Commit, idx: int, *values: Any) -> Write:
    """A row of a per-participant history table: keyed by the commit's version and the event's
    position in it, so a replay writes the same key."""
    return Write(
        statement, (commit.tenant, commit.participant_id, commit.expected_version + 1, idx, *values)
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What applying one commit did: its status, the new row and the row writes it adds."""

    status: str
    row: ParticipantRow | None
    writes: tuple[Write, ...] = ()


def apply_commit(
    row: ParticipantRow | None, commit: Commit, *, key_used: bool, writes: bool = True
) -> Verdict:
    """Apply ``commit`` if it was decided on the row's version and its idempotency key is new.

    Deterministic in (row, commit, key_used), so replaying the log repeats every verdict; the
    row passed in is left as it was (the fold works on a copy). ``writes=False`` folds the row
    only (reading the past needs no rows of other tables).
    """
    status = check(row, commit, key_used=key_used)
    if status is not None:
        return Verdict(status, row)
    found: list[Write] | None = [] if writes else None
    draft = fold_into(draft_of(row) if row is not None else new_draft(commit), commit, found)
    return Verdict(APPLIED, freeze(draft), tuple(found or ()))


def check(row: ParticipantRow | None, commit: Commit, *, key_used: bool) -> str | None:
    """The verdict on ``commit`` that needs no fold (duplicate, conflict, or applied without
    events: a keyed command that changed nothing, whose key alone is recorded); None when its
    events must be folded into the row."""
    if key_used:
        return DUPLICATE
    if commit.expected_version != (row.version if row is not None else 0):
        return CONFLICT
    if not commit.events:
        return APPLIED
    return None


def fold_into(draft: Draft, commit: Commit, writes: list[Write] | None) -> Draft:
    """Fold the events of ``commit`` (already checked: ``check``) into ``draft``, in place.

    Each event runs its plan (``plan_of``): the evolver of the row's own fields, the section
    fold, then the writers, which see the row after the event; their writes are appended to
    ``writes`` (None: none are made). Then the version moves on by one and ``last_seen_at``
    becomes the commit's time unless every event is one Gamify decided alone (NOT_ACTIVITY).
    Returns ``draft``.
    """
    at = commit.recorded_at
    active = not draft.last_seen_at
    for idx, event in enumerate(commit.events):
        cls = type(event)
        own, sections, writers = _PLANS.get(cls) or plan_of(cls)
        if own is not None:
            own(event, draft, commit)
        if sections is not None:
            draft.sections = sections(event, draft.sections, at)
        if writes is not None:
            for fn in writers:
                writes.extend(fn(event, draft, commit, idx))
        if cls not in NOT_ACTIVITY:
            active = True
    draft.version = commit.expected_version + 1
    if active:
        draft.last_seen_at = at
    return draft


# Events Gamify decides on its own (the scheduler's expiry, an admin's erasure): they change the
# participant but are not its activity, so they leave last_seen_at ("latest accepted command").
NOT_ACTIVITY: frozenset[type[Event]] = frozenset({PointsExpired, ParticipantErased})

Evolver = Callable[[Any, Draft, Commit], None]
Writer = Callable[[Any, ParticipantRow, Commit, int], Iterable[Write]]
SectionFold = Callable[[Any, dict[str, Any], str], dict[str, Any]]
# Event type -> what it changes in the row's own fields (one per type, found along the MRO).
EVOLVERS: dict[type[Event], Evolver] = {}
# Event type -> every feature's writer for it (several features may write rows for one event).
WRITERS: dict[type[Event], list[Writer]] = {}
# Event type -> (evolver, section fold, writers), resolved once per type (``plan_of``).
_PLANS: dict[type, tuple[Evolver | None, SectionFold | None, tuple[Writer, ...]]] = {}
_NO_SECTIONS = fold.dispatch(object)  # schemas.sections' default: the sections unchanged


def plan_of(
    event_type: type,
) -> tuple[Evolver | None, SectionFold | None, tuple[Writer, ...]]:
    """What folding an event of ``event_type`` runs, resolved once and kept: its evolver (by
    the MRO, as singledispatch would), its ``schemas.sections`` fold (None when that leaves the
    sections as they are), its writers (registered for exactly that type)."""
    own = next((EVOLVERS[k] for k in event_type.__mro__ if k in EVOLVERS), None)
    sections = fold.dispatch(event_type)
    plan = (own, None if sections is _NO_SECTIONS else sections, tuple(WRITERS.get(event_type, ())))
    _PLANS[event_type] = plan
    return plan


def evolver(event_type: type[Event]) -> Callable[[Evolver], Evolver]:
    """Register ``fn(event, draft, commit)`` as what ``event_type`` does to the row's own
    fields: it assigns new values to the draft (never changes its dicts in place) and returns
    None. The sections are folded by ``schemas.sections.fold`` after it, for every event."""

    def register(fn: Evolver) -> Evolver:
        EVOLVERS[event_type] = fn
        _PLANS.clear()
        return fn

    return register


def writer(event_type: type[Event]) -> Callable[[Writer], Writer]:
    """Register ``fn(event, row, commit, idx)`` as one more writer of ``event_type``: it returns
    the writes (a list or tuple) of the event, ``row`` being the participant after it."""

    def register(fn: Writer) -> Writer:
        WRITERS.setdefault(event_type, []).append(fn)
        _PLANS.clear()
        return fn

    return register


@evolver(ParticipantRegistered)
def _registered(event: ParticipantRegistered, row: Draft, commit: Commit) -> None:
    row.display_name = event.display_name
    row.avatar_url = event.avatar_url
    row.attributes = dict(event.attributes)
    row.created_at = commit.recorded_at


@evolver(ParticipantProfileUpdated)
def _profile_updated(event: ParticipantProfileUpdated, row: Draft, commit: Commit) -> None:
    changes = event.changes
    if "display_name" in changes:
        row.display_name = changes["display_name"]
    if "avatar_url" in changes:
        row.avatar_url = changes["avatar_url"]
    if event.attributes_replaced or event.attributes_set or event.attributes_removed:
        row.attributes = attributes_after(event, row.attributes)


@evolver(PointsAwarded)
def _awarded(event: PointsAwarded, row: Draft, commit: Commit) -> None:
    row.balance += event.amount
    row.total_earned += event.amount  # an expiring credit is also a lot (schemas.sections)


@evolver(PointsDeducted)
def _deducted(event: PointsDeducted, row: Draft, commit: Commit) -> None:
    row.balance -= event.amount
    row.total_spent += event.amount  # lots are consumed first (schemas.sections)


@evolver(PointsExpired)
def _expired(event: PointsExpired, row: Draft, commit: Commit) -> None:
    # Expiry is not spending and never lowers what was earned (gamify-api.md 3.6).
    row.balance -= event.amount


@writer(PointsAwarded)
def _ledger_award(
    event: PointsAwarded, row: ParticipantRow, commit: Commit, idx: int
) -> tuple[Write, ...]:
    return (_ledger(commit, idx, event.transaction_id, "award", event.amount, event),)


@writer(PointsDeducted)
def _ledger_deduct(
    event: PointsDeducted, row: ParticipantRow, commit: Commit, idx: int
) -> tuple[Write, ...]:
    return (_ledger(commit, idx, event.transaction_id, "deduct", -event.amount, event),)


@writer(PointsExpired)
def _ledger_expire(
    event: PointsExpired, row: ParticipantRow, commit: Commit, idx: int
) -> list[Write]:
    metadata = {"lot_id": event.lot_id, "expires_at": event.expires_at}
    return [
        history(
            "ledger_insert",
            commit,
            idx,
            event.transaction_id,
            "expire",
            -event.amount,
            event.balance_after,
            "expired",
            orjson.dumps(metadata).decode(),
            commit.recorded_at,
        )
    ]


def _ledger(
    commit: Commit, idx: int, tx: str, kind: str, amount: int, event: PointsAwarded | PointsDeducted
) -> Write:
    return history(
        "ledger_insert",
        commit,
        idx,
        tx,
        kind,
        amount,
        event.balance_after,
        event.reason,
        orjson.dumps(event.metadata).decode(),
        commit.recorded_at,
    )
