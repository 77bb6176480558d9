"""A newcomer's first commands: the development key, a taken port, the dev broker, the start line.

Each test runs the real `gamify` command line (a subprocess) with no GAMIFY_API_KEYS, as after a
fresh clone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import API, PROJECT_ROOT, Server, free_port

_SCRIPT = Path(sys.executable).parent / "gamify"
GAMIFY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "services"]
KEY_LINE = re.compile(r"X-API-Key: (gmf_dev_[0-9a-f]+)")


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMIFY_")}
    env.update({"GAMIFY_DATA_DIR": str(data_dir), "GAMIFY_LOG_LEVEL": "WARNING", **extra})
    return env


def gamify(
    data_dir: Path, *args: str, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [*GAMIFY, *args],
        cwd=PROJECT_ROOT,
        env=env_for(data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def show(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"


def status_with(base_url: str, key: str) -> int:
    request = urllib.request.Request(  # noqa: S310
        f"{base_url}{API}/participants/nobody/points", headers={"X-API-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture
def keyless_server(tmp_path: Path) -> Iterator[Server]:
    """An embedded server as `make run` starts it: no GAMIFY_API_KEYS (a development key)."""
    srv = Server("embedded", tmp_path / "data", {"GAMIFY_LOG_LEVEL": "WARNING"})
    yield srv
    srv.stop(signal.SIGKILL)


def stdout_of(server: Server) -> str:
    return (server.log_dir / f"run{server.runs}.out").read_text()


def test_the_start_line_names_the_roles_that_run_and_the_docs_page(keyless_server: Server) -> None:
    keyless_server.start()
    out = stdout_of(keyless_server)
    assert "gamify serve (api, projector, scheduler, webhooks): embedded log in " in out, out
    assert f"API docs: http://127.0.0.1:{keyless_server.port}{API}/docs" in out, out


def test_the_development_key_can_be_shown_again_and_rotated(keyless_server: Server) -> None:
    data = keyless_server.data_dir
    keyless_server.start()
    printed = KEY_LINE.search(stdout_of(keyless_server))
    assert printed, stdout_of(keyless_server)
    key = printed.group(1)
    assert (data / "dev_api_key.json").stat().st_mode & 0o777 == 0o600

    shown = gamify(data, "keys", "show-dev")
    assert shown.returncode == 0 and shown.stdout.strip() == key, show(shown)
    assert status_with(keyless_server.base_url, key) == 404  # authenticated; nobody is unknown

    keyless_server.stop()
    keyless_server.start()
    out = stdout_of(keyless_server)
    assert key not in out and "gamify keys show-dev" in out, out  # not printed on every start

    rotated = gamify(data, "keys", "rotate-dev")
    assert rotated.returncode == 0, show(rotated)
    new_key = rotated.stdout.strip()
    assert new_key.startswith("gmf_dev_") and new_key != key, show(rotated)
    assert "restart" in rotated.stderr, show(rotated)
    keyless_server.stop()
    keyless_server.start()
    assert status_with(keyless_server.base_url, new_key) == 404
    assert status_with(keyless_server.base_url, key) == 401
    assert gamify(data, "keys", "show-dev").stdout.strip() == new_key


def test_a_taken_port_is_one_line_naming_it_and_makes_no_key(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = gamify(tmp_path / "data", "serve", "--port", str(port), GAMIFY_HTTP_HOST="127.0.0.1")
    assert done.returncode != 0, show(done)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, show(done)
    assert f"port {port}" in lines[0] and "GAMIFY_HTTP_PORT" in lines[0], show(done)
    assert "gmf_dev_" not in done.stdout + done.stderr, show(done)
    assert not (tmp_path / "data" / "dev_api_key.json").exists()


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Lines of ``proc``'s stdout up to and including the one holding ``marker``."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    pytest.fail(f"no {marker!r} from the dev broker:\n{''.join(seen)}")


def test_dev_broker_runs_the_kafka_shape_and_idempotence_fails_in_one_line(
    tmp_path: Path,
) -> None:
    port = free_port()
    broker = subprocess.Popen(  # noqa: S603
        [*GAMIFY, "dev-broker", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        told = read_until(broker, "gamify serve", timeout=30)
        exports = dict(re.findall(r"export (GAMIFY_\w+)=(\S+)", told))
        assert exports["GAMIFY_KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{port}", told
        assert exports["GAMIFY_KAFKA_IDEMPOTENCE"] == "false", told

        kafka = {"GAMIFY_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
        refused = gamify(tmp_path / "a", "serve", "--port", str(free_port()), **kafka)
        assert refused.returncode == 1, show(refused)
        assert "Traceback" not in refused.stderr, show(refused)
        failed = [line for line in refused.stderr.splitlines() if "gamify serve: failed" in line]
        assert len(failed) == 1 and "GAMIFY_KAFKA_IDEMPOTENCE=false" in failed[0], show(refused)

        env = {k: v for k, v in exports.items() if k != "GAMIFY_DATA_DIR"}
        srv = Server("kafka", tmp_path / "b", {"GAMIFY_LOG_LEVEL": "WARNING", **env})
        try:
            srv.start()
            key = KEY_LINE.search(stdout_of(srv))
            assert key, stdout_of(srv)
            body = json.dumps({"participant_id": "u1", "amount": 5}).encode()
            request = urllib.request.Request(  # noqa: S310
                f"{srv.base_url}{API}/points/award",
                data=body,
                headers={"X-API-Key": key.group(1), "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                assert json.loads(reply.read())["new_balance"] == 5
            assert "(api, inbound, projector, scheduler, webhooks): Kafka at" in stdout_of(srv)
        finally:
            srv.stop()
    finally:
        broker.send_signal(signal.SIGTERM)
        out, _ = broker.communicate(timeout=15)
    assert broker.returncode == 0, out
    assert "gamify dev-broker: stopped" in out, out
