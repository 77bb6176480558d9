"""End-to-end fixtures: a REAL `gamify serve` subprocess driven over HTTP.

* ``Server`` starts ``python -m services serve`` on a free port with its own data dir, waits for
  ``GET /healthz``, and can be stopped with any signal and started again (durability tests).
* ``server`` is module-scoped and parametrized over the two logs: ``embedded`` (SQLite log in the
  data dir) and ``kafka`` (the session broker of ``tests/kafka_broker.py``, a unique topic prefix
  per server so tests never see each other's data).
* ``api`` wraps one ``aiohttp.ClientSession`` (the ``client`` fixture) and checks on every reply
  that no traceback leaks and that every error body is ``{"detail": ...}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
API = "/api/v1/gamify"

ACME_KEY = "key-acme"
GLOBEX_KEY = "key-globex"
ADMIN_KEY = "key-admin"  # acme's admin key
# A module's tests share one server and tenant: the reference's 200 requests a minute would
# refuse them. Rate limits are tested in tests/unit/test_rate_limits.py and integration.
NO_RATE_LIMITS = {
    "GAMIFY_RATE_LIMIT_PER_KEY": "off",
    "GAMIFY_RATE_LIMIT_PER_TENANT": "off",
    "GAMIFY_RATE_LIMIT_INGEST_BURST": "off",
}
API_KEYS = f"acme:{ACME_KEY},globex:{GLOBEX_KEY},acme:{ADMIN_KEY}:admin"

MODES = ["embedded", "kafka"]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
KAFKA_FILES = ("services/adapters/kafka_event_log.py", "projections/sources/kafka.py")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def auth(key: str = ACME_KEY, **extra: str) -> dict[str, str]:
    """Request headers carrying ``key`` (plus any extra headers)."""
    return {"X-API-Key": key, **extra}


def new_pid(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------------------------
# The server process


class Server:
    """One `gamify serve` process on 127.0.0.1; ``restart`` keeps the data dir (and topic prefix)."""

    def __init__(self, mode: str, data_dir: Path, env: dict[str, str], port: int | None = None):
        self.mode = mode
        self.data_dir = data_dir
        self.env = dict(env)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_dir = data_dir.parent / f"{data_dir.name}-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._files: list[Any] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _paths(self) -> tuple[Path, Path]:
        return self.log_dir / f"run{self.runs}.out", self.log_dir / f"run{self.runs}.err"

    def start(self, timeout: float = START_TIMEOUT) -> Server:
        assert not self.running, "server already running"
        self.runs += 1
        out_path, err_path = self._paths()
        out, err = out_path.open("wb"), err_path.open("wb")
        self._files = [out, err]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GAMIFY_")}
        env.update(self.env)
        env["GAMIFY_DATA_DIR"] = str(self.data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._close_files()
                pytest.fail(
                    f"gamify ({self.mode}) exited with {code} during start-up\n{self.tail()}",
                    pytrace=False,
                )
            if self._healthy():
                return self
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        pytest.fail(
            f"gamify ({self.mode}) did not answer /healthz within {timeout:g}s\n{self.tail()}",
            pytrace=False,
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as reply:  # noqa: S310
                return reply.status == 200 and json.loads(reply.read()).get("status") == "ok"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send ``sig``; kill after ``timeout``. Returns the exit code (negative: killed by signal)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._close_files()
        return proc.returncode

    def restart(self, sig: int = signal.SIGTERM, *, new_port: bool = False) -> Server:
        self.stop(sig)
        if new_port:
            self.port = free_port()
        return self.start()

    def _close_files(self) -> None:
        for f in self._files:
            with contextlib.suppress(OSError):
                f.close()
        self._files = []

    def tail(self, chars: int = 4000) -> str:
        out_path, err_path = self._paths()
        parts = []
        for name, path in (("stdout", out_path), ("stderr", err_path)):
            with contextlib.suppress(OSError):
                for f in self._files:
                    with contextlib.suppress(OSError, ValueError):
                        f.flush()
                text = path.read_bytes().decode(errors="replace")
                parts.append(f"--- {name} (last {chars} chars) ---\n{text[-chars:]}")
        return "\n".join(parts)


class BrokerHolder:
    """Starts the session's Kafka-protocol broker on first use; skips when Kafka can't run."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._broker: Any = None
        self._error: str | None = None

    def get(self) -> Any:
        missing = [f for f in KAFKA_FILES if not (PROJECT_ROOT / f).exists()]
        if missing:
            pytest.skip(f"Kafka adapters not written yet: {', '.join(missing)}")
        if self._error is not None:
            pytest.fail(self._error, pytrace=False)
        if self._broker is None:
            if str(PROJECT_ROOT) not in sys.path:
                sys.path.insert(0, str(PROJECT_ROOT))
            try:
                from tests.kafka_broker import running_broker
            except ImportError as exc:
                pytest.skip(f"tests/kafka_broker.py not available: {exc}")
            try:
                self._broker = self._stack.enter_context(running_broker())
            except Exception as exc:  # no broker: fail every kafka test with the reason
                self._error = f"could not start a Kafka-protocol broker: {exc!r}"
                pytest.fail(self._error, pytrace=False)
        return self._broker

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[BrokerHolder]:
    holder = BrokerHolder()
    yield holder
    holder.close()


@pytest.fixture(scope="session")
def server_factory(
    tmp_path_factory: pytest.TempPathFactory, kafka_broker: BrokerHolder
) -> Iterator[Callable[[str], Server]]:
    """``make(mode)`` -> a configured, not yet started Server; all are stopped at session end."""
    made: list[Server] = []

    def make(mode: str) -> Server:
        env = {
            "GAMIFY_API_KEYS": API_KEYS,
            "GAMIFY_LOG_LEVEL": os.environ.get("GAMIFY_E2E_LOG_LEVEL", "WARNING"),
            **NO_RATE_LIMITS,
        }
        if mode == "kafka":
            broker = kafka_broker.get()
            env["GAMIFY_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
            env["GAMIFY_KAFKA_PARTITIONS"] = "3"
            # A restarted projector rejoins once the stopped member's session ends: tansu numbers
            # the first group generation 0, so aiokafka sends it no LeaveGroup on shutdown.
            env["GAMIFY_KAFKA_SESSION_TIMEOUT_MS"] = "2000"
            env["GAMIFY_KAFKA_TOPIC_PREFIX"] = f"t{uuid.uuid4().hex[:8]}."
            if not broker.idempotence_supported:
                env["GAMIFY_KAFKA_IDEMPOTENCE"] = "false"
        elif mode != "embedded":
            raise ValueError(mode)
        server = Server(mode, tmp_path_factory.mktemp(f"gamify-{mode}"), env)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture(scope="module", params=MODES)
def server(
    request: pytest.FixtureRequest, server_factory: Callable[[str], Server]
) -> Iterator[Server]:
    srv = server_factory(request.param).start()
    yield srv
    srv.stop()


# --------------------------------------------------------------------------------------------
# The HTTP client


@dataclass
class Reply:
    status: int
    body: Any
    text: str
    headers: Any

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.text[:500]!r})"


class Api:
    """Thin client of one server; every reply is checked for tracebacks and the error shape."""

    def __init__(self, session: aiohttp.ClientSession, server: Server) -> None:
        self.session = session
        self.server = server
        self._run = server.runs
        self._owned: list[aiohttp.ClientSession] = []

    def _current_session(self) -> aiohttp.ClientSession:
        """After a restart, a new session: pooled keep-alive connections went to the old process."""
        if self.server.runs != self._run:
            self._run = self.server.runs
            self.session = new_session()
            self._owned.append(self.session)
        return self.session

    async def close(self) -> None:
        for session in self._owned:
            await session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = ACME_KEY,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Reply:
        hdrs = {} if key is None else auth(key)
        hdrs.update(headers or {})
        if json_body is not None:
            data = json.dumps(json_body)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        url = f"{self.server.base_url}{API}{path}"
        session = self._current_session()
        async with session.request(method, url, data=data, headers=hdrs, params=params) as r:
            text = await r.text()
            reply = Reply(r.status, None, text, r.headers)
        assert "Traceback" not in text, reply
        assert 'File "' not in text, reply
        try:
            reply.body = json.loads(text) if text else None
        except ValueError:
            reply.body = None
        if reply.status >= 400:
            assert isinstance(reply.body, dict) and set(reply.body) == {"detail"}, reply
            assert reply.body["detail"], reply
        return reply

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", path, json_body=body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("PATCH", path, json_body=body, **kw)

    async def register(self, pid: str, key: str = ACME_KEY, **fields: Any) -> Reply:
        return await self.post("/participants", {"participant_id": pid, **fields}, key=key)

    async def _move(
        self,
        kind: str,
        pid: str,
        amount: Any,
        key: str,
        idem: str | None,
        body_idem: str | None,
        fields: dict[str, Any],
    ) -> Reply:
        body = {"participant_id": pid, "amount": amount, **fields}
        if body_idem is not None:
            body["idempotency_key"] = body_idem
        headers = {"Idempotency-Key": idem} if idem is not None else None
        return await self.post(f"/points/{kind}", body, key=key, headers=headers)

    async def award(
        self,
        pid: str,
        amount: Any,
        *,
        key: str = ACME_KEY,
        idem: str | None = None,
        body_idem: str | None = None,
        **fields: Any,
    ) -> Reply:
        return await self._move("award", pid, amount, key, idem, body_idem, fields)

    async def deduct(
        self,
        pid: str,
        amount: Any,
        *,
        key: str = ACME_KEY,
        idem: str | None = None,
        body_idem: str | None = None,
        **fields: Any,
    ) -> Reply:
        return await self._move("deduct", pid, amount, key, idem, body_idem, fields)

    async def points(self, pid: str, key: str = ACME_KEY) -> dict[str, Any]:
        reply = await self.get(f"/participants/{pid}/points", key=key)
        assert reply.status == 200, reply
        return reply.body  # type: ignore[no-any-return]

    async def ledger(
        self, pid: str, key: str = ACME_KEY, page: int = 1, page_size: int = 100
    ) -> dict[str, Any]:
        reply = await self.get(
            f"/participants/{pid}/points/transactions",
            key=key,
            params={"page": page, "page_size": page_size},
        )
        assert reply.status == 200, reply
        return reply.body  # type: ignore[no-any-return]


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=200)
    )


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp session for the test."""
    async with new_session() as session:
        yield session


@pytest.fixture
async def api_for(client: aiohttp.ClientSession) -> AsyncIterator[Callable[[Server], Api]]:
    """``api_for(server)`` -> an Api on ``client`` (a fresh session after each restart)."""
    made: list[Api] = []

    def make(srv: Server) -> Api:
        made.append(Api(client, srv))
        return made[-1]

    yield make
    for api in made:
        await api.close()


@pytest.fixture
def api(api_for: Callable[[Server], Api], server: Server) -> Api:
    return api_for(server)


@pytest.fixture
def pid() -> str:
    """A participant id no other test uses."""
    return new_pid()
