"""Start-up names GAMIFY_* variables Gamify does not read (a typo would otherwise be silent)."""

from __future__ import annotations

import subprocess
import sys

from services.config import unknown_variables


def test_a_typo_is_named_with_the_closest_variable() -> None:
    env = {
        "GAMIFY_KAFKA_BOOTSTRAP_SERVER": "broker:9092",
        "GAMIFY_HTTP_PORT": "8080",
        "GAMIFY_NONSENSE": "1",
        "PATH": "/bin",
    }
    assert unknown_variables(env) == [
        "GAMIFY_KAFKA_BOOTSTRAP_SERVER (did you mean GAMIFY_KAFKA_BOOTSTRAP_SERVERS?)",
        "GAMIFY_NONSENSE",
    ]


def test_names_are_escaped_cut_and_matched_whatever_their_case() -> None:
    """A name cannot forge a log line or drive a terminal; a long one is cut; a lower-case
    spelling of a known name is matched; test-only names are exact (their typos are named)."""
    env = {
        "GAMIFY_NL\nINJECT": "1",
        "GAMIFY_X\x1b[2JRED": "1",
        "GAMIFY_" + "A" * 5000: "1",
        "GAMIFY_log_level": "DEBUG",
        "GAMIFY_TEST_POSTGRE_URL": "x",
    }
    found = unknown_variables(env)
    assert "GAMIFY_NL\\nINJECT" in found
    assert "GAMIFY_X\\x1b[2JRED" in found
    assert "GAMIFY_" + "A" * 73 + "..." in found
    assert "GAMIFY_log_level (did you mean GAMIFY_LOG_LEVEL?)" in found
    assert "GAMIFY_TEST_POSTGRE_URL (did you mean GAMIFY_TEST_POSTGRES_URL?)" in found
    assert not any("\n" in line or "\x1b" in line for line in found)


def test_known_and_test_only_variables_are_not_reported() -> None:
    env = {
        "GAMIFY_DATABASE_URL": "sqlite:///x.db",
        "GAMIFY_TEST_POSTGRES_URL": "postgresql://x",
        "GAMIFY_E2E_LOG_LEVEL": "DEBUG",
        "GAMIFY_FUZZ_SEED": "1",
    }
    assert unknown_variables(env) == []


def test_the_cli_warns_at_start(tmp_path) -> None:
    """A real process: `gamify keys show-dev` logs the warning on stderr and still runs."""
    env = {
        "PATH": "/usr/bin:/bin",
        "GAMIFY_DATA_DIR": str(tmp_path),
        "GAMIFY_KAFKA_BOOTSTRAP_SERVER": "broker:9092",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services", "keys", "show-dev"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "GAMIFY_KAFKA_BOOTSTRAP_SERVER (did you mean GAMIFY_KAFKA_BOOTSTRAP_SERVERS?)" in (
        done.stderr
    )
