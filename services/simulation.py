"""What if: re-decide the recorded commands of a period under changed definitions, in a shadow.

``Simulation`` takes the log's commits in order and folds them twice, in memory: as recorded
(the projector's ``apply_commit``, with its version and idempotency checks), and in a shadow
where every participant command recorded in the period ``[start, end)`` is decided again by
the same pure deciders (``services.participants.domain.decide``) with its recorded clock
(``recorded_at``) as ``now`` and the definitions as they stood then, overlaid with the changed
ones. Nothing is written anywhere: the live read models and the log are never touched.

What is decided again is the command the commit's causation recorded: ``causation.input``, or
for records written before it existed, what ``recorded_input`` rebuilds from the events. Profile
commands (register, update) decide nothing from the definitions: their recorded events are
applied as they are. A command that cannot be rebuilt is applied as recorded and counted under
``not_re_decidable`` with the reason, never skipped silently; a command the new definitions
refuse (a DomainError: not enough points, say) changes nothing in the shadow and is counted.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import services.participants.features  # noqa: F401 - registers the engine's deciders
from projections.definitions.projector import DefinitionRow, apply_definition
from projections.participants.projector import APPLIED, ParticipantRow, apply_commit
from schemas.events import (
    DEFINITION,
    PARTICIPANT,
    BadgeEarned,
    Commit,
    Event,
    EventTracked,
    PointsAwarded,
    PointsDeducted,
    RewardClaimed,
    StreakExtended,
    TierChanged,
)
from services.adapters.read_model import participant_state
from services.definitions.checks import problems
from services.definitions.domain import KINDS
from services.participants.commands import RE_DECIDABLE, Command, command_from_input
from services.participants.domain import DomainError, Env, decide
from services.participants.engine import Catalog
from services.validation import ValidationFailed, parse_timestamp, validate

PROFILE_COMMANDS = ("participants.register", "participants.update")
Changes = dict[tuple[str, str], dict[str, Any]]  # (kind, code) -> the definition's whole body


class DefinitionsFileError(ValueError):
    """The changed definitions are not what the admin API would accept; ``errors`` say why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def load_changes(raw: Any, *, now: datetime) -> Changes:
    """The changed definitions of a file: ``{"rules": [...], "tiers": [...], ...}``.

    Keys are the admin API's resource names (rules, tiers, badges, challenges, streaks, rewards,
    leaderboards); each item is a whole definition as ``POST /admin/<resource>`` accepts it,
    checked by the same boundary (JSON Schema, then the semantic checks). An item whose code
    exists replaces that definition; a new code adds one; ``"is_active": false`` removes one.
    Raises DefinitionsFileError naming every problem.
    """
    if not isinstance(raw, dict) or not raw:
        raise DefinitionsFileError([f"must be an object with any of: {', '.join(KINDS)}"])
    errors: list[str] = []
    changes: Changes = {}
    for resource, items in raw.items():
        kind = KINDS.get(resource)
        if kind is None or not isinstance(items, list):
            errors.append(f"{resource}: unknown; one of {', '.join(KINDS)}, each a list")
            continue
        for i, item in enumerate(items):
            where = f"{resource}[{i}]"
            try:
                body = validate(f"definitions/{kind}", item, now=now, location=where)
            except ValidationFailed as exc:
                errors.extend(_describe(e) for e in exc.errors)
                continue
            fields = {k: v for k, v in body.items() if k not in ("code", "id", "is_active")}
            found = problems(kind, fields) if body.get("is_active", True) else []
            errors.extend(f"{where}.{_describe(p)}" for p in found)
            changes[(kind, body["code"])] = body
    if errors:
        raise DefinitionsFileError(errors)
    return changes


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"][1:] if p != "body")
    head = str(error["loc"][0]) if error["loc"] and error["loc"][0] != "body" else ""
    return f"{'.'.join(x for x in (head, where) if x) or 'definition'}: {error['msg']}"


def recorded_input(commit: Commit) -> tuple[dict[str, Any] | None, str]:
    """The command input the commit records, or rebuilt from its events (the upcaster of
    records written before ``causation.input``); (None, why) when it cannot be had.

    Rebuilt: points.award/deduct from PointsAwarded/PointsDeducted (amount, reason, metadata),
    events.track from EventTracked (event_name, properties, timestamp = occurred_at),
    badges.award / tiers.assign from a manual BadgeEarned / TierChanged, streaks.record from
    StreakExtended (code, its recorded_at), rewards.claim from RewardClaimed.
    """
    name, pid = commit.causation.command, commit.participant_id
    if commit.causation.input is not None:
        return commit.causation.input, "recorded"
    if name not in RE_DECIDABLE:
        return None, f"{name}: not a command of the engine"
    if not commit.events:
        return None, f"{name}: recorded before causation.input, with no events to rebuild it"
    found = _rebuild(name, pid, commit.events)
    if found is None:
        return None, f"{name}: recorded before causation.input; its events do not say the input"
    return found, "rebuilt from events"


def _rebuild(name: str, pid: str, events: tuple[Event, ...]) -> dict[str, Any] | None:
    def first(cls: type[Any], **match: Any) -> Any:
        return next(
            (
                e
                for e in events
                if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())
            ),
            None,
        )

    if name in ("points.award", "points.deduct"):
        moved = first(PointsAwarded if name == "points.award" else PointsDeducted)
        if moved is None:
            return None
        base = {"amount": moved.amount, "reason": moved.reason, "metadata": dict(moved.metadata)}
        return {"participant_id": pid, **base}
    if name == "events.track":
        tracked = first(EventTracked)
        if tracked is None:
            return None
        return {
            "participant_id": pid,
            "event_name": tracked.event_name,
            "properties": dict(tracked.properties),
            "timestamp": tracked.occurred_at or None,
        }
    if name == "badges.award":
        badge = first(BadgeEarned, manual=True)
        return None if badge is None else {"participant_id": pid, "badge_code": badge.code}
    if name == "tiers.assign":
        tier = first(TierChanged, manual=True)
        return None if tier is None else {"participant_id": pid, "tier_code": tier.code}
    if name == "streaks.record":
        tick = first(StreakExtended)
        if tick is None:
            return None
        return {"participant_id": pid, "streak_code": tick.code, "timestamp": tick.recorded_at}
    if name == "rewards.claim":
        claim = first(RewardClaimed)
        if claim is None:
            return None
        return {
            "participant_id": pid,
            "reward_id": claim.reward_id,
            "points_deduction": claim.points_deducted > 0,
            "claim_id": claim.claim_id,
            "code_value": claim.code_value,
        }
    return None


@dataclass(slots=True)
class Side:
    """One fold of the tenant's participants: rows by participant id."""

    rows: dict[str, ParticipantRow] = field(default_factory=dict)
    awarded: int = 0  # points awarded in the current day
    deducted: int = 0

    def apply(self, commit: Commit, *, count: bool) -> None:
        """Fold ``commit`` on this side's row; ``count`` its points in the day's sums."""
        row = self.rows.get(commit.participant_id)
        rebased = replace(commit, expected_version=row.version if row else 0)
        after = apply_commit(row, rebased, key_used=False).row
        if after is not None:
            self.rows[commit.participant_id] = after
        if not count:
            return
        self.awarded += sum(e.amount for e in commit.events if isinstance(e, PointsAwarded))
        self.deducted += sum(e.amount for e in commit.events if isinstance(e, PointsDeducted))

    def liability(self) -> int:
        return sum(r.balance for r in self.rows.values())

    def tiers(self) -> Counter[str]:
        return Counter(t["code"] for r in self.rows.values() if (t := r.section("tier")))

    def badges(self) -> Counter[str]:
        return Counter(code for r in self.rows.values() for code in r.section("badges", {}))

    def tier_of(self, pid: str) -> str | None:
        row = self.rows.get(pid)
        tier = row.section("tier") if row else None
        return tier["code"] if tier else None


class Simulation:
    """Fold one tenant's commits as recorded and re-decided; ``report()`` compares the two.

    ``start``/``end`` (``YYYY-MM-DDTHH:MM:SSZ``, either None for open) bound the period by
    ``recorded_at``; commits before it are applied as recorded on both sides, commits at or
    after ``end`` are not read. Feed ``add`` the log's commits in log order (every stream).
    """

    def __init__(
        self, tenant: str, changes: Changes, start: str | None = None, end: str | None = None
    ) -> None:
        self.tenant, self.changes, self.start, self.end = tenant, changes, start, end
        self.recorded, self.shadow = Side(), Side()
        self.definitions: dict[str, DefinitionRow | None] = {}
        self._catalog: Catalog | None = None
        self.seen: set[str] = set()
        self.keys: set[tuple[str, str]] = set()
        self.counts: Counter[str] = Counter()
        self.not_re_decidable: Counter[str] = Counter()
        self.days: list[dict[str, Any]] = []
        self.day: str | None = None

    def add(self, commit: Commit) -> None:
        """Fold one commit of the log (other tenants' and other streams' are passed over)."""
        if commit.tenant != self.tenant or commit.commit_id in self.seen:
            return
        if self.end is not None and commit.recorded_at >= self.end:
            return
        self.seen.add(commit.commit_id)
        if commit.stream == DEFINITION:
            ident = commit.participant_id
            status, row = apply_definition(self.definitions.get(ident), commit)
            if status == APPLIED:
                self.definitions[ident], self._catalog = row, None
            return
        if commit.stream == PARTICIPANT:
            self._participant(commit)

    def _participant(self, commit: Commit) -> None:
        row = self.recorded.rows.get(commit.participant_id)
        key = commit.causation.idempotency_key
        used = key is not None and (commit.participant_id, key) in self.keys
        verdict = apply_commit(row, commit, key_used=used)
        if verdict.status != APPLIED:
            return  # rejected then: no command of the period was decided by it
        if key is not None:
            self.keys.add((commit.participant_id, key))
        in_period = self.start is None or commit.recorded_at >= self.start
        if in_period:
            self._roll(commit.recorded_at[:10])
            self.counts["in_period"] += 1
        else:
            self.counts["before_period"] += 1
        self.recorded.apply(commit, count=in_period)
        self.shadow.apply(self._redecided(commit) if in_period else commit, count=in_period)

    def _redecided(self, commit: Commit) -> Commit:
        name = commit.causation.command
        if name in PROFILE_COMMANDS:
            self.counts["as_recorded_profile"] += 1
            return commit
        data, why = recorded_input(commit)
        if data is None:
            self.not_re_decidable[why] += 1
            return commit
        try:
            command: Command = command_from_input(name, data)
        except (KeyError, TypeError) as exc:
            self.not_re_decidable[f"{name}: recorded input does not fit ({exc})"] += 1
            return commit
        now = parse_timestamp(commit.recorded_at)
        assert now is not None  # written by the server as YYYY-MM-DDTHH:MM:SSZ
        ids = (f"{commit.commit_id}:sim:{n}" for n in itertools.count())
        env = Env(lambda: next(ids), now, self.catalog())
        self.counts["re_decided"] += 1
        if why != "recorded":
            self.counts["re_decided_from_events"] += 1
        try:
            events = decide(
                participant_state(self.shadow.rows.get(commit.participant_id)), command, env
            )
        except DomainError:
            self.counts["refused"] += 1
            events = []
        return replace(commit, events=tuple(events))

    def catalog(self) -> Catalog:
        """The definitions active now, overlaid with the changed ones."""
        if self._catalog is None:
            self._catalog = overlay(self.definitions.values(), self.changes)
        return self._catalog

    def _roll(self, day: str) -> None:
        if day != self.day:
            self._close_day()
            self.day = day

    def _close_day(self) -> None:
        if self.day is None:
            return
        rec, sim = self.recorded, self.shadow
        self.days.append(
            {
                "day": self.day,
                "points_awarded": _diff(rec.awarded, sim.awarded),
                "points_deducted": _diff(rec.deducted, sim.deducted),
                "liability": _diff(rec.liability(), sim.liability()),
                "tiers": _counts(rec.tiers(), sim.tiers()),
                "badges": _counts(rec.badges(), sim.badges()),
                "participants_with_another_tier": len(self.tier_differences()),
            }
        )
        for side in (rec, sim):
            side.awarded = side.deducted = 0

    def tier_differences(self) -> list[dict[str, Any]]:
        return [
            {"participant_id": pid, "recorded": a, "simulated": b}
            for pid in sorted(self.recorded.rows)
            if (a := self.recorded.tier_of(pid)) != (b := self.shadow.tier_of(pid))
        ]

    def report(self) -> dict[str, Any]:
        """The comparison, per day of the period (UTC dates) and at its end."""
        self._close_day()
        self.day = None
        awarded = [d["points_awarded"] for d in self.days]
        rec, sim = self.recorded, self.shadow
        return {
            "tenant": self.tenant,
            "from": self.start,
            "to": self.end,
            "definitions_changed": [{"kind": k, "code": c} for k, c in sorted(self.changes)],
            "commits": {
                "before_period": self.counts["before_period"],
                "in_period": self.counts["in_period"],
                "re_decided": self.counts["re_decided"],
                "re_decided_from_events": self.counts["re_decided_from_events"],
                "refused_now": self.counts["refused"],
                "profile_as_recorded": self.counts["as_recorded_profile"],
                "not_re_decidable": sum(self.not_re_decidable.values()),
                "not_re_decidable_reasons": dict(sorted(self.not_re_decidable.items())),
            },
            "days": self.days,
            "total": {
                "points_awarded": _diff(
                    sum(a["recorded"] for a in awarded), sum(a["simulated"] for a in awarded)
                ),
                "liability": _diff(rec.liability(), sim.liability()),
                "tiers": _counts(rec.tiers(), sim.tiers()),
                "badges": _counts(rec.badges(), sim.badges()),
            },
            "participants_with_another_tier": self.tier_differences(),
        }


def overlay(rows: Iterable[DefinitionRow | None], changes: Changes) -> Catalog:
    """The catalog of the active ``rows`` with ``changes`` replacing, adding or removing
    definitions by (kind, code), in the order DefinitionQueries.active gives."""
    known = {(r.kind, r.code): r for r in rows if r is not None}
    active = {key: r for key, r in known.items() if r.is_active}
    entries = {key: (r.created_at, r.id, r.body) for key, r in active.items()}
    for (kind, code), body in changes.items():
        entries.pop((kind, code), None)
        if body.get("is_active", True) is False:
            continue
        before = known.get((kind, code))
        fields = {k: v for k, v in body.items() if k not in ("code", "id", "is_active")}
        ident = before.id if before is not None else f"simulated:{kind}:{code}"
        entries[(kind, code)] = (before.created_at if before else "~", ident, fields)
    ordered = sorted(entries.items(), key=lambda kv: (kv[0][0], kv[1][0], kv[0][1]))
    return Catalog.of((kind, ident, code, body) for (kind, code), (_, ident, body) in ordered)


def _diff(recorded: int, simulated: int) -> dict[str, int]:
    return {"recorded": recorded, "simulated": simulated, "difference": simulated - recorded}


def _counts(recorded: Counter[str], simulated: Counter[str]) -> dict[str, dict[str, int]]:
    return {code: _diff(recorded[code], simulated[code]) for code in sorted(recorded | simulated)}
