"""Fixtures of the system tests: real `gamify` processes against a real broker and PostgreSQL.

Every test in this directory gets the ``system`` marker (and only these tests do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.system.support import GamifyProcess


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
