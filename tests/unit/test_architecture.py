"""The dependency rules of STYLE.md §2, checked by parsing imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# The domain: decisions only. Time and ids come in as arguments (no clock or uuid calls).
PURE_MODULES = (
    "services/participants/commands.py",
    "services/participants/domain.py",
    "services/participants/engine.py",
    "services/participants/features/*.py",
    "services/definitions/domain.py",
    "services/keys/domain.py",
)
PURE_BANS = (
    "asyncio",
    "aiohttp",
    "aiokafka",
    "orjson",
    "uuid",
    "random",
    "time",
    "projections",
    "services.adapters",
    "services.api",
    "services.inbound",
)
CLOCK_CALLS = {"now", "utcnow", "today", "time", "uuid4", "uuid1", "uuid7"}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(pattern: str) -> list[Path]:
    return sorted(ROOT.glob(pattern))


def offending(paths: list[Path], banned: tuple[str, ...]) -> list[str]:
    return [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in paths
        for m in sorted(imports_of(p))
        if m.startswith(banned)
    ]


@pytest.mark.parametrize(
    ("pattern", "banned"),
    [
        ("schemas/**/*.py", ("services", "projections", "aiohttp", "aiokafka", "eventsourcing")),
        *[(pattern, PURE_BANS) for pattern in PURE_MODULES],
        ("services/participants/handlers.py", ("services.adapters", "services.api", "aiohttp")),
        ("services/participants/writes.py", ("services.adapters", "services.api", "aiohttp")),
        ("services/adapters/*.py", ("services.api",)),
        ("projections/**/*.py", ("services",)),
        ("projections/*/projector.py", ("projections", "eventsourcing", "aiohttp", "aiokafka")),
    ],
)
def test_dependency_rule(pattern: str, banned: tuple[str, ...]) -> None:
    paths = modules(pattern)
    assert paths, f"no module matches {pattern}"
    assert offending(paths, banned) == []


def test_api_modules_never_import_projection_internals() -> None:
    banned = ("projections.runner",) + tuple(
        f"projections.{p.parent.name}.{role}"
        for p in modules("projections/*/projector.py")
        for role in ("store", "projector")
    )
    allowed = {"services/api/app.py"}  # the composition root builds the store and the runner
    paths = [p for p in modules("services/api/*.py") if str(p.relative_to(ROOT)) not in allowed]
    assert offending(paths, banned) == []


def test_the_domain_never_reads_the_clock_or_makes_ids() -> None:
    calls = [
        f"{path.relative_to(ROOT)}:{node.lineno} calls {node.func.attr}()"
        for pattern in PURE_MODULES
        for path in modules(pattern)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_CALLS
    ]
    assert calls == []


def test_no_two_test_files_share_a_name() -> None:
    """pytest imports test modules by basename (no packages under tests/): two files with one
    name stop the whole run at collection ("import file mismatch")."""
    root = Path(__file__).resolve().parents[1]
    names = [p.name for p in root.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
