"""CPU time of an idle `gamify serve` on Kafka (tansu): `python -m bench.idle_cpu [--tree PATH]`.

What a serving process spends with no request at all (consumers' fetches, lag monitors, polls),
in milliseconds of CPU per second, measured over ``--seconds`` after ``--settle`` seconds; the
trees given (``--tree NAME=PATH``, default this one) alternate ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.env import kafka_env, stop_children
from bench.reads_ab import TreeServer, cpu_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_cpu")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workdir", type=Path, default=Path("bench/results/.cache/idle-cpu"))
    args = parser.parse_args(argv)
    trees = [(n, Path(p).resolve()) for n, _, p in (t.partition("=") for t in args.tree)]
    trees = trees or [("this", Path(__file__).resolve().parents[1])]
    from tests.kafka_broker import start_tansu

    tansu = start_tansu()
    try:
        for rnd in range(args.rounds):
            for name, root in trees:
                work = args.workdir / f"{name}-{rnd}"
                server = TreeServer(f"idle-{name}", root, work / "data", work)
                server.env.update(kafka_env(tansu.bootstrap, f"idle{rnd}{name}.", 6))
                server.start()
                try:
                    server.wait_ready(120)
                    time.sleep(args.settle)
                    before = cpu_seconds(server.pid)
                    time.sleep(args.seconds)
                    used = cpu_seconds(server.pid) - before
                finally:
                    server.stop()
                print(f"{name} round {rnd}: {1000 * used / args.seconds:.1f} ms CPU per second idle",
                      flush=True)  # fmt: skip
    finally:
        stop_children()
        tansu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
