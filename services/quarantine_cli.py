"""`gamify quarantine list|show|retry|ack`: inspect and repair records the projector set aside."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from projections.data_keys import KeyStoreError, open_data_keys
from projections.db import open_database
from projections.participants.quarantine import (
    QUARANTINED,
    QuarantineEntry,
    QuarantineQueries,
)
from projections.participants.store import participant_store
from projections.poison import diagnose, digest, is_poison
from projections.sources import LogSource
from schemas.log import LogRecord
from services.config import Settings

OK, STILL_QUARANTINED, USAGE, FAILED = 0, 1, 2, 3
READ_TIMEOUT = 30.0


def add_quarantine_parser(commands: Any) -> None:
    """Register ``gamify quarantine`` and its subcommands on the CLI's subparsers."""
    parser = commands.add_parser(
        "quarantine",
        help="list, show, retry or acknowledge records the projector could not apply",
        description="Records the projector could not apply are kept aside (their position, the "
        "error and the SHA-256 of their bytes) and projection goes on. REF is PARTITION:OFFSET, "
        "OFFSET (partition 0, the embedded log) or a commit id.",
    )
    sub = parser.add_subparsers(dest="quarantine_command", required=True)
    listing = sub.add_parser("list", help="records still quarantined (--all: every entry)")
    listing.add_argument("--all", action="store_true", help="include retried and acknowledged")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = sub.add_parser("show", help="one entry, as JSON")
    show.add_argument("ref", metavar="REF")
    for name, text in (
        ("retry", "read the record from the log again and apply it if it still fits"),
        ("ack", "acknowledge: /readyz stops failing for it; the record stays unapplied"),
    ):
        action = sub.add_parser(name, help=text)
        which = action.add_mutually_exclusive_group(required=True)
        which.add_argument("ref", metavar="REF", nargs="?")
        which.add_argument("--all", action="store_true", help="every record still quarantined")


def quarantine_command(
    settings: Settings, args: argparse.Namespace, log: Callable[[], tuple[Any, Any, Any]]
) -> int:
    """Run a ``gamify quarantine`` subcommand; ``log()`` opens the log for ``retry``."""
    # Never create the data-key store here: an empty one would let a later replay rebuild every
    # participant as erased (projections/data_keys.py, must_exist).
    try:
        keys = open_data_keys(
            settings.data_keys_url, master_key=settings.encryption_key, must_exist=True
        )
    except KeyStoreError as exc:
        print(f"gamify quarantine: {exc}", file=sys.stderr)
        return 3
    db = open_database(settings.read_model_url)
    try:
        store = participant_store(db, keys=keys)
        store.create_table()
        queries = QuarantineQueries(db)
        if args.quarantine_command == "list":
            return _list(queries, args.all, args.json)
        if args.quarantine_command == "show":
            entry = queries.find(args.ref)
            if entry is None:
                print(f"gamify quarantine: no quarantined record {args.ref!r}", file=sys.stderr)
                return USAGE
            print(orjson.dumps(entry.as_dict(), option=orjson.OPT_INDENT_2).decode())
            return OK
        entries = _selected(queries, args)
        if entries is None:
            return USAGE
        if args.quarantine_command == "ack":
            for entry in entries:
                if entry.status != QUARANTINED:
                    print(f"{entry.position}: already {entry.status}")
                    continue
                queries.acknowledge(entry)
                print(f"{entry.position}: acknowledged")
            return OK
        return _retry(settings, store, queries, entries, log)
    finally:
        keys.close()
        db.close()


def _list(queries: QuarantineQueries, everything: bool, as_json: bool) -> int:
    entries = queries.entries(None if everything else QUARANTINED)
    for e in entries:
        if as_json:
            print(orjson.dumps(e.as_dict()).decode())
        else:
            verdict = f" -> {e.verdict}" if e.verdict else ""
            print(
                f"{e.position:>10}  {e.status}{verdict}  {e.kind}  {e.commit_id or '-'}  "
                f"{e.tenant or '-'}/{e.participant_id or '-'}  {e.error[:100]}"
            )
    if not as_json:
        print(f"{len(entries)} record(s)", file=sys.stderr)
    return OK


def _selected(queries: QuarantineQueries, args: argparse.Namespace) -> list[QuarantineEntry] | None:
    if args.all:
        return queries.entries(QUARANTINED)
    entry = queries.find(args.ref)
    if entry is None:
        print(f"gamify quarantine: no quarantined record {args.ref!r}", file=sys.stderr)
        return None
    return [entry]


def _retry(
    settings: Settings,
    store: Any,
    queries: QuarantineQueries,
    entries: list[QuarantineEntry],
    log: Callable[[], tuple[Any, Any, Any]],
) -> int:
    todo = [e for e in entries if e.status != "retried"]
    if not todo:
        print("gamify quarantine: nothing to retry", file=sys.stderr)
        return OK
    new_source, end_offsets, close = log()

    async def fetch() -> dict[tuple[int, int], LogRecord]:
        try:
            wanted = {(e.partition, e.offset) for e in todo}
            return await read_at(new_source(), end_offsets, wanted)
        finally:
            await close()

    try:
        found = asyncio.run(fetch())
    except Exception as exc:
        print(
            f"gamify quarantine: cannot read the log: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return FAILED
    code = OK
    for entry in todo:
        code = max(code, _retry_one(settings, store, queries, entry, found))
    return code


def _retry_one(
    settings: Settings,
    store: Any,
    queries: QuarantineQueries,
    entry: QuarantineEntry,
    found: dict[tuple[int, int], LogRecord],
) -> int:
    record = found.get((entry.partition, entry.offset))
    if record is None or digest(record.value) != entry.digest:
        why = "is no longer on the log" if record is None else "has other bytes than quarantined"
        print(f"{entry.position}: the record {why}; left quarantined", file=sys.stderr)
        return STILL_QUARANTINED
    try:
        verdict = store.retry(settings.participant_events_topic, record)
    except Exception as exc:
        if not is_poison(exc):
            print(f"{entry.position}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return FAILED
        info = diagnose(exc)
        queries.record_failure(entry, info.kind, info.error_type, info.message)
        print(f"{entry.position}: still fails ({info.kind} {info.error_type}): {info.message}")
        return STILL_QUARANTINED
    print(f"{entry.position}: retried: {verdict}")
    return OK


async def read_at(
    source: LogSource,
    end_offsets: Callable[[], Awaitable[dict[int, int]]],
    wanted: set[tuple[int, int]],
    timeout: float = READ_TIMEOUT,
) -> dict[tuple[int, int], LogRecord]:
    """The records at ``wanted`` (partition, offset) positions, read from a group-less source."""
    ends = await end_offsets()
    first: dict[int, int] = {}
    for partition, offset in wanted:
        first[partition] = min(first.get(partition, offset), offset)
    last = {p: max(o for q, o in wanted if q == p) for p in first}

    async def start_positions(partitions: Any) -> dict[int, int]:
        return {p: first.get(p, ends.get(p, 0)) for p in partitions}

    found: dict[tuple[int, int], LogRecord] = {}
    read_to: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    await source.start(start_positions)
    try:
        while time.monotonic() < deadline and not _done(last, read_to, ends):
            for partition, records in (await source.read(500, 0.5)).items():
                for record in records:
                    read_to[partition] = record.offset
                    if (partition, record.offset) in wanted:
                        found[(partition, record.offset)] = record
    finally:
        await source.stop()
    return found


def _done(last: dict[int, int], read_to: dict[int, int], ends: dict[int, int]) -> bool:
    return all(read_to.get(p, -1) >= min(offset, ends.get(p, 0) - 1) for p, offset in last.items())
