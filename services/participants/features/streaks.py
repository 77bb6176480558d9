"""Streaks: one tick per period, grace after a missed period, freezes that bridge missed periods.

A streak definition (schemas/json/definitions/streak.v1.json) sets the ``period`` (``daily``: a
calendar date, ``weekly``: an ISO week starting Monday), the ``timezone`` those periods are read in
(IANA, default UTC), ``grace_period_hours`` (default 0) and an optional ``freeze_allowance``.
The participant's streak lives in ``sections["streaks"][code]`` (schemas/sections.py). The rules
are written out in docs/streaks.md; everything here is pure (the instant is always an argument).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.events import StreakBroken, StreakExtended
from services.participants.commands import RecordStreak
from services.participants.domain import UnknownDefinition, decider
from services.participants.engine import Catalog, Draft

DAILY, WEEKLY = "daily", "weekly"
WEEK, MONTH = "week", "month"
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Rules:
    """A streak definition as the rules read it."""

    period: str = DAILY
    tz: ZoneInfo = _UTC
    grace: timedelta = timedelta(0)
    freeze_per: str | None = None  # "week" | "month"; None: no freezes
    freeze_max: int = 0  # granted per allowance period
    freeze_cap: int = 0  # stockpile cap

    @classmethod
    def of(cls, definition: dict[str, Any]) -> Rules:
        allowance = definition.get("freeze_allowance") or {}
        per_period = int(allowance.get("max") or 0)
        cap = allowance.get("stockpile_max")
        return cls(
            period=WEEKLY if definition.get("period") == WEEKLY else DAILY,
            tz=zone(definition.get("timezone")),
            grace=timedelta(hours=int(definition.get("grace_period_hours") or 0)),
            freeze_per=(MONTH if allowance.get("per_period") == MONTH else WEEK)
            if per_period > 0
            else None,
            freeze_max=per_period,
            freeze_cap=per_period if cap is None else int(cap),
        )


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name``; UTC when unset or unknown (a bad definition must not break reads)."""
    if not name:
        return _UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return _UTC


# --------------------------------------------------------------------------------------------
# Periods: numbered so that consecutive periods differ by one (a date ordinal, a week number).


def local_date(moment: datetime, rules: Rules) -> date:
    return moment.astimezone(rules.tz).date()


def period_index(moment: datetime, rules: Rules) -> int:
    """The number of the streak period holding ``moment`` (date 0001-01-01 was a Monday)."""
    ordinal = local_date(moment, rules).toordinal()
    return ordinal if rules.period == DAILY else (ordinal - 1) // 7


def _first_day(index: int, rules: Rules) -> date:
    return date.fromordinal(index if rules.period == DAILY else index * 7 + 1)


def period_key(index: int, rules: Rules) -> str:
    """``2026-02-14`` for a day, ``2026-W07`` for an ISO week."""
    first = _first_day(index, rules)
    if rules.period == DAILY:
        return first.isoformat()
    year, week, _ = first.isocalendar()
    return f"{year:04d}-W{week:02d}"


def period_start(index: int, rules: Rules) -> datetime:
    """The instant period ``index`` begins: local midnight of its first day (DST-aware)."""
    first = _first_day(index, rules)
    # A midnight skipped by a DST jump resolves (fold=0) to the instant of the jump itself.
    return datetime(first.year, first.month, first.day, tzinfo=rules.tz).astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Freeze allowance periods: calendar weeks or months in the streak's zone.


def _allowance_index(day: date, per: str) -> int:
    return (day.toordinal() - 1) // 7 if per == WEEK else day.year * 12 + day.month - 1


def _allowance_key(day: date, per: str) -> str:
    if per == WEEK:
        year, week, _ = day.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return f"{day.year:04d}-{day.month:02d}"


def _key_day(key: str) -> date | None:
    """The first day of an allowance key (``2026-W07`` or ``2026-02``); None if unreadable."""
    try:
        if "-W" in key:
            year, week = key.split("-W")
            return date.fromisocalendar(int(year), int(week), 1)
        year, month = key.split("-")
        return date(int(year), int(month), 1)
    except (ValueError, TypeError):
        return None


def granted(stored: dict[str, Any], rules: Rules, at: datetime) -> tuple[int, str | None]:
    """Freezes available at ``at`` after granting every allowance period begun since the last
    grant (the first grant is the current period's), and the last period granted."""
    available = int(stored.get("freezes_available") or 0)
    if rules.freeze_per is None:
        return 0, None
    today = local_date(at, rules)
    current = _allowance_index(today, rules.freeze_per)
    through = stored.get("freezes_granted_through")
    last_day = _key_day(through) if isinstance(through, str) else None
    if last_day is None:
        periods = 1
    else:
        periods = current - _allowance_index(last_day, rules.freeze_per)
    if periods <= 0:  # nothing new (or a late tick): keep the stored grant
        return available, through
    topped = max(available, min(rules.freeze_cap, available + rules.freeze_max * periods))
    return topped, _allowance_key(today, rules.freeze_per)


# --------------------------------------------------------------------------------------------
# Judging a streak at an instant: one function for the decider and for every read.


@dataclass(frozen=True, slots=True)
class Standing:
    """A participant's streak seen from ``at`` (a tick at ``at``, or a read at now)."""

    period: int  # the period of ``at``
    last: int | None  # the period of the last counted tick (None: never ticked)
    count: int  # the stored count
    alive: bool  # the count can still be continued at ``at``
    freezes_used: int  # freezes the gap up to ``at`` consumes (0 within grace)
    freezes_available: int  # after grants up to ``at``, before ``freezes_used``
    granted_through: str | None

    @property
    def ticked_this_period(self) -> bool:
        return self.last is not None and self.period <= self.last

    @property
    def current(self) -> int:
        """The effective count at ``at``: 0 once the streak is broken."""
        return self.count if self.alive else 0

    @property
    def at_risk(self) -> bool:
        """Running, but not yet ticked in the current period."""
        return self.current > 0 and not self.ticked_this_period

    @property
    def freezes_left(self) -> int:
        return self.freezes_available - self.freezes_used


def parse_instant(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def judge(stored: dict[str, Any] | None, rules: Rules, at: datetime) -> Standing:
    """Where the streak stands at ``at``: which period, whether it still holds, what freezes do."""
    stored = stored or {}
    period = period_index(at, rules)
    available, through = granted(stored, rules, at)
    count = int(stored.get("count") or 0)
    raw_last = stored.get("last_recorded_at")
    last = period_index(parse_instant(raw_last), rules) if raw_last else None
    standing = Standing(period, last, count, False, 0, available, through)
    if last is None or count <= 0:
        return standing
    missed = period - last - 1
    if missed <= 0:
        alive, used = True, 0
    elif at < period_start(last + 2, rules) + rules.grace:  # late for one period, within grace
        alive, used = True, 0
    elif missed <= available:
        alive, used = True, missed
    else:
        alive, used = False, 0
    return Standing(period, last, count, alive, used, available, through)


@decider(RecordStreak)
def record(draft: Draft, command: RecordStreak) -> None:
    """A tick: nothing if its period (or a later one) already counted; else extend, bridge a gap
    with grace or freezes, or break and start again at 1."""
    definition = draft.catalog.streaks.get(command.streak_code)
    if definition is None:
        raise UnknownDefinition("streak", command.streak_code)
    at = (parse_instant(command.timestamp) if command.timestamp else draft.now).replace(
        microsecond=0
    )
    rules = Rules.of(definition)
    stored = draft.sections.get("streaks", {}).get(command.streak_code)
    standing = judge(stored, rules, at)
    draft.ensure_exists()
    if standing.ticked_this_period:  # the same period again, or a late tick of an earlier one
        return
    previous = standing.count if standing.alive else 0
    if standing.count > 0 and not standing.alive:
        draft.add(StreakBroken(code=command.streak_code, previous_count=standing.count))
    longest = int((stored or {}).get("longest") or 0)
    count = previous + 1
    draft.add(
        StreakExtended(
            code=command.streak_code,
            period=period_key(standing.period, rules),
            count=count,
            longest=max(longest, count),
            recorded_at=iso(at),
            freezes_used=standing.freezes_used,
            freezes_available=standing.freezes_left,
            freezes_granted_through=standing.granted_through,
            new_record=count > longest,
        )
    )


# --------------------------------------------------------------------------------------------
# Reads: GET /streaks, the profile's best streak, the state's streaks section.


def status(
    code: str, stored: dict[str, Any], definition: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """One entry of GET /participants/{pid}/streaks, judged at ``now``.

    A streak whose definition is inactive cannot be extended: its current count is 0.
    """
    longest = int(stored.get("longest") or 0)
    if definition is None:
        key = str(stored.get("period") or "")
        return {
            "code": code,
            "name": code,
            "current_count": 0,
            "longest_count": longest,
            "last_recorded_at": stored.get("last_recorded_at"),
            "is_at_risk": False,
            "period": WEEKLY if "-W" in key else DAILY,
            "freezes_available": int(stored.get("freezes_available") or 0),
        }
    rules = Rules.of(definition)
    standing = judge(stored, rules, now)
    return {
        "code": code,
        "name": definition.get("name", code),
        "current_count": standing.current,
        "longest_count": longest,
        "last_recorded_at": stored.get("last_recorded_at"),
        "is_at_risk": standing.at_risk,
        "period": rules.period,
        "freezes_available": standing.freezes_left,
    }


def is_at_risk(stored: dict[str, Any] | None, definition: dict[str, Any], now: datetime) -> bool:
    """Running (count > 0, not broken at ``now``) and no tick yet in ``now``'s period."""
    return judge(stored, Rules.of(definition), now).at_risk


def current_count(stored: dict[str, Any], definition: dict[str, Any] | None, now: datetime) -> int:
    """The effective count at ``now``: 0 once broken (or when the definition is inactive)."""
    if definition is None:
        return 0
    return judge(stored, Rules.of(definition), now).current


def best(states: dict[str, Any], catalog: Catalog, now: datetime) -> dict[str, Any] | None:
    """The participant's best streak for the profile: ``current``, ``longest``, ``last_activity_at``.

    The highest effective current count wins, then the longest, then the code; None when the
    participant never ticked a streak.
    """
    ranked = [
        (current_count(s, catalog.streaks.get(code), now), int(s.get("longest") or 0), code)
        for code, s in states.items()
    ]
    if not ranked:
        return None
    current, longest, code = min(ranked, key=lambda r: (-r[0], -r[1], r[2]))
    return {
        "current": current,
        "longest": longest,
        "last_activity_at": states[code].get("last_recorded_at"),
    }
