"""Command-line exit codes that the README promises, for states a newcomer meets first."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import main


def test_replay_without_an_embedded_log_exits_3_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: exit 3 when the log cannot be reached (1 is reserved for --verify differences)."""
    monkeypatch.setenv("GAMIFY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GAMIFY_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("GAMIFY_DATABASE_URL", raising=False)
    assert main(["replay"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("gamify replay: no embedded log at ") and "log.db" in err
    assert not (tmp_path / "log.db").exists()
