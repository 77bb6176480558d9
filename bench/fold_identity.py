"""A digest of every read-model row a mixed log projects to: compare two versions of the fold.

A seeded random log of participant commits with every event type the fold knows (registers,
profile updates, awards with and without expiry, deductions, expiries, tracked events, tiers,
badges, streaks, challenges, reward claims, erasures), stale versions (conflicts), repeated
idempotency keys (duplicates), and a leaderboard per metric created part-way (score rebuilds),
is applied to a fresh SQLite store in batches of several sizes. Every row of every table is
printed as a SHA-256 per table, so two checkouts (old and new fold) can be compared:

    python -m bench.fold_identity            # one digest line per table, then the total
    python -m bench.fold_identity --dump F   # also every row, as JSON lines, to F

Same seed, same log: the digests must match line for line between the two versions.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from typing import Any

import orjson

from bench.env import fresh_store
from projections.db import rows
from projections.participants import snapshots
from projections.participants.schema import table_names
from schemas import codec
from schemas.events import (
    DEFINITION,
    BadgeEarned,
    Causation,
    ChallengeCompleted,
    ChallengeProgressed,
    Commit,
    DefinitionCreated,
    Event,
    EventTracked,
    ParticipantErased,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    PointsExpired,
    RewardClaimed,
    StreakBroken,
    StreakExtended,
    TierChanged,
)
from schemas.log import LogRecord

TOPIC = "bench.fold-identity"
TENANTS = ("t1", "t2")


def _at(n: int) -> str:
    day, second = divmod(n, 3000)
    return f"2026-02-{1 + day % 27:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"


def _events(rnd: random.Random, n: int, version: int, lots: list[str]) -> list[Event]:
    """One to three random events of a participant at ``version``."""
    found: list[Event] = []
    for k in range(rnd.randint(1, 3)):
        tx = f"tx-{n}-{k}"
        pick = rnd.randrange(14)
        if pick == 0:
            found.append(
                ParticipantProfileUpdated(
                    changes={"display_name": rnd.choice(["Ann", "Bob", None])},
                    attributes_replaced=rnd.random() < 0.2,
                    attributes_set={rnd.choice("abc"): rnd.randint(0, 3)},
                    attributes_removed=[rnd.choice("abc")],
                )
            )
        elif pick in (1, 2, 3):
            expires = rnd.choice([None, None, "2026-03-01T00:00:00Z", "2026-02-20T00:00:00Z"])
            if expires:
                lots.append(tx)
            found.append(
                PointsAwarded(tx, rnd.randint(0, 50), 0, "quest", {"n": n}, expires_at=expires)
            )
        elif pick == 4:
            found.append(PointsDeducted(tx, rnd.randint(1, 30), 0, "shop", {}))
        elif pick == 5 and lots:
            found.append(PointsExpired(tx, lots.pop(0), 5, 0, "2026-02-20T00:00:00Z"))
        elif pick in (6, 7):
            name = rnd.choice(["login", "buy", "share"])
            found.append(EventTracked(f"e-{n}-{k}", name, {"v": k}, _at(n - rnd.randint(0, 99))))
        elif pick == 8:
            code = rnd.choice(["bronze", "silver"])
            found.append(TierChanged(code, code.title(), len(code), None, None, None, False))
        elif pick == 9:
            found.append(BadgeEarned(rnd.choice(["b1", "b2"]), "Badge", "rare", False))
        elif pick == 10:
            count = rnd.randint(1, 9)
            found.append(StreakExtended("daily", "day", count, count + 1, _at(n)))
        elif pick == 11:
            found.append(StreakBroken("daily", 3))
        elif pick == 12:
            window = rnd.choice(["w1", "w2"])
            found.append(ChallengeProgressed("c1", window, {"buy": rnd.randint(0, 5)}))
            if rnd.random() < 0.5:
                found.append(ChallengeCompleted("c1", window))
        else:
            found.append(RewardClaimed(f"cl-{n}", rnd.choice(["r1", "r2"]), "Mug", "item", None, 5))
    if rnd.random() < 0.01:
        found.append(ParticipantErased())
    return found


def build(seed: int, commits: int, participants: int) -> list[LogRecord]:
    """The log: participant commits in one partition, leaderboards created at a third."""
    rnd = random.Random(seed)  # noqa: S311 - a reproducible log, not a secret
    versions: dict[tuple[str, str], int] = {}
    lots: dict[tuple[str, str], list[str]] = {}
    keys: list[str] = []
    found: list[Commit] = []
    for n in range(commits):
        if n == commits // 3:
            for i, (metric, name) in enumerate((("points", None), ("events", None), ("events", "buy"))):  # fmt: skip
                body = {"metric": metric, **({"event_name": name} if name else {})}
                found.append(
                    Commit(
                        f"def-{i}", "t1", f"leaderboard:lb{i}", 0, _at(n),
                        Causation("leaderboards.create"),
                        (DefinitionCreated("leaderboard", f"id{i}", f"lb{i}", body),),
                        stream=DEFINITION,
                    )
                )  # fmt: skip
        who = (rnd.choice(TENANTS), f"p{rnd.randrange(participants)}")
        version = versions.get(who, 0)
        events = _events(rnd, n, version, lots.setdefault(who, []))
        if version == 0:
            events.insert(0, ParticipantRegistered("Zoë", None, {"a": 1}, auto_created=True))
        stale = version > 0 and rnd.random() < 0.05
        key = rnd.choice(keys) if keys and rnd.random() < 0.05 else f"k{n}"
        keys.append(key)
        found.append(
            Commit(
                f"c{n}", who[0], who[1], version - 1 if stale else version, _at(n),
                Causation("points.award", idempotency_key=key, fingerprint=f"f{n}"),
                tuple(events) if rnd.random() > 0.02 else (),
            )
        )  # fmt: skip
        if not stale:
            versions[who] = version + 1  # a duplicate key is rejected: later ones conflict
    return [LogRecord(0, i, codec.encode(c)) for i, c in enumerate(found)]


def digests(seed: int, commits: int, participants: int, dump: str | None) -> dict[str, str]:
    records = build(seed, commits, participants)
    snapshots.SNAPSHOT_EVERY = 10  # snapshots of most participants, not only the busiest
    out: dict[str, str] = {}
    lines: list[bytes] = []
    with fresh_store("sqlite", "gamify-fold-identity-") as store:
        start, sizes = 0, [1, 7, 50, 500, 2000]
        while start < len(records):
            size = sizes[start % len(sizes)]
            store.apply_batch(TOPIC, 0, records[start : start + size])
            start += size
        with store.db.transaction(commit=False) as c:
            for name in sorted(set(table_names("").values())):
                c.execute(f"SELECT * FROM {name}")  # noqa: S608 - our own table names
                found = sorted(orjson.dumps(list(r), default=str) for r in rows(c))
                out[name] = hashlib.sha256(b"\n".join(found)).hexdigest()[:16] + f" {len(found)}"
                lines += [name.encode() + b" " + line for line in found]
    if dump:
        with open(dump, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fold_identity", description=__doc__)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--commits", type=int, default=20000)
    parser.add_argument("--participants", type=int, default=300)
    parser.add_argument("--dump", metavar="FILE")
    args = parser.parse_args(argv)
    found: dict[str, Any] = digests(args.seed, args.commits, args.participants, args.dump)
    for name, value in found.items():
        print(f"{name:32} {value}")
    total = hashlib.sha256(orjson.dumps(found)).hexdigest()[:16]
    print(f"{'all tables':32} {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
