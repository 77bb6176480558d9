"""Fixtures of the system tests: real `gamify` processes against a real broker and PostgreSQL.

Every test in this directory gets the ``system`` marker (and only these tests do).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests` is not an installed package
    sys.path.insert(0, str(_ROOT))

from tests.kafka_broker import Broker, running_broker  # noqa: E402
from tests.system.support import GamifyProcess  # noqa: E402

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.system)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """One broker for the session; fails (never skips) when none can be started."""
    with running_broker() as broker:
        yield broker


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., GamifyProcess]]:
    """``make(command, env, name)`` -> a not yet started process; all are killed at teardown."""
    made: list[GamifyProcess] = []

    def make(command: str, env: dict[str, str], name: str) -> GamifyProcess:
        proc = GamifyProcess(command, env, tmp_path / name)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.terminate()
