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
