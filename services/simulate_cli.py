"""`gamify simulate`: what recorded commands would have done under changed definitions.

Reads the log (embedded or Kafka) from the start with a group-less reader, folds it in memory
(services/simulation.py) and prints the difference per day as a table, or as JSON with
``--json``. Never writes: not to the log, not to the read models.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from projections.data_keys import KeyStoreError, open_data_keys
from projections.sources import LogSource
from schemas.codec import CodecError, decode
from schemas.events import Commit
from schemas.sealing import DataKeys
from services.config import Settings
from services.simulation import DefinitionsFileError, Simulation, load_changes
from services.validation import format_timestamp, parse_timestamp

OK, FAILED, USAGE = 0, 1, 2
READ_IDLE = 30.0  # seconds without a record before reading the log gives up

LogFactory = Callable[[], tuple[Callable[[], LogSource], Callable[[], Awaitable[Any]], Any]]


def add_simulate_parser(commands: Any) -> None:
    sim = commands.add_parser(
        "simulate",
        help="re-decide the recorded commands of a period under changed definitions (read-only)",
        description=(
            "Fold the log twice in memory: as recorded, and with every participant command of "
            "the period decided again under the definitions of FILE (earn rules, tiers, badges, "
            "challenges, ... as POST /admin/<resource> accepts them). Prints points awarded, "
            "points liability, tier and badge counts and participants whose tier would differ, "
            "per day. Writes nothing."
        ),
    )
    sim.add_argument(
        "--rules",
        required=True,
        type=Path,
        metavar="FILE",
        help='JSON: {"rules": [...], "tiers": [...], "badges": [...], "challenges": [...]}',
    )
    sim.add_argument("--from", dest="start", help="start of the period (recorded_at, inclusive)")
    sim.add_argument("--to", dest="end", help="end of the period (recorded_at, exclusive)")
    sim.add_argument("--tenant", help="the tenant (needed when the log holds several)")
    sim.add_argument("--json", action="store_true", help="print the report as JSON")


def simulate_command(settings: Settings, args: argparse.Namespace, log: LogFactory) -> int:
    try:
        start, end = _moment(args.start, "--from"), _moment(args.end, "--to")
        changes = load_changes(_read_json(args.rules), now=datetime.now(UTC))
    except (ValueError, OSError) as exc:
        for line in getattr(exc, "errors", None) or [str(exc)]:
            print(f"gamify simulate: {line}", file=sys.stderr)
        return USAGE
    try:
        # Event properties, reasons and attributes are sealed on the log (docs/erasure.md): the
        # rules read them, so the data keys must open them, as the projector does. A missing
        # store would read everyone as erased and simulate on empty properties: refused.
        keys = open_data_keys(
            settings.data_keys_url, master_key=settings.encryption_key, must_exist=True
        )
    except KeyStoreError as exc:
        print(f"gamify simulate: {exc}", file=sys.stderr)
        return FAILED
    try:
        commits, unreadable = asyncio.run(_read_log(log, keys))
    except Exception as exc:  # the log cannot be read: one line
        print(f"gamify simulate: cannot read the log: {exc}", file=sys.stderr)
        return FAILED
    finally:
        keys.close()
    tenant = args.tenant or _only_tenant(commits)
    if tenant is None:
        tenants = sorted({c.tenant for c in commits})
        print(
            f"gamify simulate: several tenants ({', '.join(tenants)}): pass --tenant",
            file=sys.stderr,
        )
        return USAGE
    report = simulate(commits, tenant, changes, start, end)
    report["commits"]["unreadable_records"] = unreadable
    print(json.dumps(report, indent=2) if args.json else render(report))
    return OK


def simulate(
    commits: Iterable[Commit],
    tenant: str,
    changes: Any,
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """The report of ``Simulation`` over ``commits`` (in log order)."""
    sim = Simulation(tenant, changes, start, end)
    for commit in commits:
        sim.add(commit)
    return sim.report()


def _moment(raw: str | None, flag: str) -> str | None:
    if raw is None:
        return None
    moment = parse_timestamp(raw)
    if moment is None:
        raise ValueError(f"{flag}: must be an ISO-8601 date-time, YYYY-MM-DDTHH:MM:SS[Z|±HH:MM]")
    return format_timestamp(moment)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DefinitionsFileError([f"{path}: not JSON: {exc}"]) from None


def _only_tenant(commits: list[Commit]) -> str | None:
    tenants = {c.tenant for c in commits}
    return next(iter(tenants)) if len(tenants) == 1 else None


async def _read_log(log: LogFactory, keys: DataKeys | None = None) -> tuple[list[Commit], int]:
    """Every commit on the log, partitions merged by ``recorded_at`` (each partition stays in
    log order), sealed personal fields opened with ``keys``, and how many records could not be
    decoded."""
    new_source, end_offsets, close = log()
    try:
        by_partition = await read_all(new_source(), end_offsets)
    finally:
        await close()
    unreadable = 0
    lists: list[list[Commit]] = []
    for records in by_partition.values():
        decoded = []
        for value in records:
            try:
                decoded.append(decode(value, keys))
            except CodecError:
                unreadable += 1
        lists.append(decoded)
    return list(heapq.merge(*lists, key=lambda c: c.recorded_at)), unreadable


async def read_all(
    source: LogSource, end_offsets: Callable[[], Awaitable[dict[int, int]]]
) -> dict[int, list[bytes]]:
    """Every record's value by partition, from the start to the end offsets seen first."""
    ends = {p: n for p, n in (await end_offsets()).items() if n > 0}

    async def from_the_start(partitions: Any) -> dict[int, int]:
        return {}

    found: dict[int, list[bytes]] = {p: [] for p in ends}
    read_to: dict[int, int] = {}
    await source.start(from_the_start)
    idle = time.monotonic() + READ_IDLE
    try:
        while any(read_to.get(p, -1) < n - 1 for p, n in ends.items()):
            if time.monotonic() > idle:
                raise TimeoutError(f"no record for {READ_IDLE:g}s; read up to {read_to}")
            for partition, records in (await source.read(5_000, 0.5)).items():
                idle = time.monotonic() + READ_IDLE
                for record in records:
                    if record.offset < ends.get(partition, 0):
                        found.setdefault(partition, []).append(record.value)
                    read_to[partition] = record.offset
    finally:
        await source.stop()
    return found


def render(report: dict[str, Any]) -> str:
    """The report as terminal tables: per day, the end of the period, and the commits."""
    lines = [
        f"gamify simulate: tenant {report['tenant']}, "
        f"{report['from'] or 'the start'} to {report['to'] or 'the end'}; changed: "
        + (", ".join(f"{d['kind']} {d['code']}" for d in report["definitions_changed"]) or "none"),
        "",
        _row("day", "points awarded", "points deducted", "liability", "other tier"),
    ]
    for day in report["days"]:
        lines.append(
            _row(
                day["day"],
                _cell(day["points_awarded"]),
                _cell(day["points_deducted"]),
                _cell(day["liability"]),
                str(day["participants_with_another_tier"]),
            )
        )
    total = report["total"]
    lines += ["", _row("total", _cell(total["points_awarded"]), "", _cell(total["liability"]), "")]
    for name in ("tiers", "badges"):
        lines += ["", f"{name} at the end:  code  recorded -> simulated (difference)"]
        lines += [f"  {code}  {_cell(v)}" for code, v in total[name].items()] or ["  (none)"]
    moved = report["participants_with_another_tier"]
    lines += ["", f"participants whose tier would differ: {len(moved)}"]
    lines += [f"  {m['participant_id']}: {m['recorded']} -> {m['simulated']}" for m in moved[:50]]
    if len(moved) > 50:
        lines.append(f"  ... and {len(moved) - 50} more (--json lists all)")
    c = report["commits"]
    lines += [
        "",
        f"commits: {c['in_period']} in the period ({c['before_period']} before it, as recorded); "
        f"re-decided {c['re_decided']} ({c['re_decided_from_events']} rebuilt from events), "
        f"refused now {c['refused_now']}, profile as recorded {c['profile_as_recorded']}, "
        f"not re-decidable {c['not_re_decidable']}, unreadable {c.get('unreadable_records', 0)}",
    ]
    lines += [
        f"  not re-decidable: {n} x {why}" for why, n in c["not_re_decidable_reasons"].items()
    ]
    return "\n".join(lines)


def _cell(v: dict[str, int]) -> str:
    return f"{v['recorded']} -> {v['simulated']} ({v['difference']:+d})"


def _row(*cells: str) -> str:
    widths = (10, 26, 26, 26, 10)
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
