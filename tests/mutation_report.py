"""Per-module mutation scores from mutmut's results (``mutants/**/*.py.meta``), for `make mutation`.

Usage: ``python -m tests.mutation_report [--survivors] [--min 90]``. A mutant is caught when a
test failed (or timed out) with it; survived when every test selected for it passed; "no tests"
when no test of tests/unit runs its function. The score of a module is caught / (caught +
survived + no tests), over the mutants mutmut has checked. Mutants listed in docs/mutation.md as
equivalent are counted as survived all the same: the score is the raw one. Exit 1 when a module
scores under ``--min``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

CAUGHT = {1, 3, 36, 24, -24, 152, 255, 37}  # killed, internal error, timeouts, type check
SURVIVED = {0}
NO_TESTS = {5, 33}

# Mutants outside the score, by name prefix, with the reason (docs/mutation.md).
NOT_SCORED = {
    "projections.leaderboards.xǁLeaderboardQueriesǁ": (
        "SQL reads of the read-model database, tested by tests/integration/test_leaderboards.py "
        "against SQLite and PostgreSQL, not part of the pure core"
    ),
    "services.participants.domain.x_decider_": "import-time registration (see below)",
    "services.participants.engine.x_consequence_": "import-time registration (see below)",
    "projections.participants.projector.x_writer_": "import-time registration (see below)",
    "projections.participants.projector.x_evolver_": "import-time registration (see below)",
}
IMPORT_TIME = (
    "Registration decorators run when their module is imported, before mutmut switches a mutant "
    "on, so no test can see their mutants; a broken registration fails every test of its feature."
)


def scored(name: str) -> bool:
    return not any(name.startswith(prefix) for prefix in NOT_SCORED)


def outcomes(meta: Path) -> dict[str, int | None]:
    """mutant name -> mutmut's exit code (None: not checked yet)."""
    data = json.loads(meta.read_text())
    return dict(data.get("exit_code_by_key", {}))


def tally(codes: dict[str, int | None]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for code in codes.values():
        if code is None:
            counts["unchecked"] += 1
        elif code in CAUGHT:
            counts["caught"] += 1
        elif code in SURVIVED:
            counts["survived"] += 1
        elif code in NO_TESTS:
            counts["no tests"] += 1
        else:
            counts["other"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("mutants"))
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    parser.add_argument("--min", type=float, default=90.0, help="lowest score allowed, percent")
    args = parser.parse_args(argv)
    metas = sorted(args.root.rglob("*.py.meta"))
    if not metas:
        print(f"no mutmut results under {args.root}/ (run `make mutation` first)", file=sys.stderr)
        return 2
    low = False
    print(f"{'module':<48} {'mutants':>7} {'caught':>6} {'surv.':>5} {'no t.':>5} {'score':>6}")
    totals: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for meta in metas:
        every = outcomes(meta)
        codes = {name: code for name, code in every.items() if scored(name)}
        skipped.update(p for name in every for p in NOT_SCORED if name.startswith(p))
        if not codes:
            continue
        counts = tally(codes)
        totals.update(counts)
        judged = counts["caught"] + counts["survived"] + counts["no tests"] + counts["other"]
        score = 100.0 * counts["caught"] / judged if judged else 0.0
        low = low or (judged > 0 and score < args.min)
        module = str(meta.relative_to(args.root)).removesuffix(".meta")
        unchecked = f"  ({counts['unchecked']} unchecked)" if counts["unchecked"] else ""
        print(
            f"{module:<48} {len(codes):>7} {counts['caught']:>6} {counts['survived']:>5} "
            f"{counts['no tests']:>5} {score:>5.1f}%{unchecked}"
        )
        if args.survivors:
            for name, code in sorted(codes.items()):
                if code is not None and code not in CAUGHT:
                    print(f"    {'no tests' if code in NO_TESTS else 'survived'}: {name}")
    judged = totals["caught"] + totals["survived"] + totals["no tests"] + totals["other"]
    overall = 100.0 * totals["caught"] / judged if judged else 0.0
    print(
        f"{'all':<48} {judged:>7} {totals['caught']:>6} {totals['survived']:>5} "
        f"{totals['no tests']:>5} {overall:>5.1f}%"
    )
    for prefix, n in sorted(skipped.items()):
        print(f"not scored: {n} mutants of {prefix}*: {NOT_SCORED[prefix]}")
    if skipped:
        print(f"({IMPORT_TIME})")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
