"""Settings of a Gamify process, read from the environment by the composition root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable holds a value Gamify cannot use."""


@dataclass(frozen=True, slots=True)
class ApiKeySpec:
    """One configured key: its tenant, the key itself and whether it has the admin scope."""

    tenant: str
    key: str
    admin: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable; see the README's Configuration table."""

    api_keys: tuple[ApiKeySpec, ...] = ()
    data_dir: Path = Path("data")
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    kafka_topic_prefix: str = "gamify."
    kafka_partitions: int = 6
    kafka_idempotence: bool = True
    kafka_session_timeout_ms: int = 6_000
    kafka_group_instance_id: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    write_timeout: float = 10.0
    max_body_bytes: int = 256 * 1024
    log_level: str = "INFO"
    ready_max_lag: int = 1000
    ready_stall: float = 2.0
    shutdown_timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        env = {k: v for k, v in environ.items() if k.startswith("GAMIFY_") and v != ""}
        return cls(
            api_keys=parse_api_keys(env.get("GAMIFY_API_KEYS", "")),
            data_dir=Path(env.get("GAMIFY_DATA_DIR", "data")),
            database_url=_database_url(env.get("GAMIFY_DATABASE_URL")),
            kafka_bootstrap_servers=env.get("GAMIFY_KAFKA_BOOTSTRAP_SERVERS"),
            kafka_topic_prefix=env.get("GAMIFY_KAFKA_TOPIC_PREFIX", "gamify."),
            kafka_partitions=_int(env, "GAMIFY_KAFKA_PARTITIONS", 6, minimum=1),
            kafka_idempotence=_bool(env, "GAMIFY_KAFKA_IDEMPOTENCE", True),
            kafka_session_timeout_ms=_int(
                env, "GAMIFY_KAFKA_SESSION_TIMEOUT_MS", 6_000, minimum=1000
            ),
            kafka_group_instance_id=env.get("GAMIFY_KAFKA_GROUP_INSTANCE_ID"),
            http_host=env.get("GAMIFY_HTTP_HOST", "127.0.0.1"),
            http_port=_int(env, "GAMIFY_HTTP_PORT", 8080, minimum=0),
            write_timeout=float(_int(env, "GAMIFY_WRITE_TIMEOUT_MS", 10_000, minimum=1)) / 1000,
            max_body_bytes=_int(env, "GAMIFY_MAX_BODY_BYTES", 256 * 1024, minimum=1024),
            log_level=env.get("GAMIFY_LOG_LEVEL", "INFO").upper(),
            ready_max_lag=_int(env, "GAMIFY_READY_MAX_LAG", 1000, minimum=0),
            ready_stall=_int(env, "GAMIFY_READY_STALL_MS", 2000, minimum=100) / 1000,
            shutdown_timeout=_int(env, "GAMIFY_SHUTDOWN_TIMEOUT_MS", 10_000, minimum=0) / 1000,
        )

    @property
    def participant_events_topic(self) -> str:
        return f"{self.kafka_topic_prefix}participant-events"

    @property
    def read_model_url(self) -> str:
        """The read-model database: GAMIFY_DATABASE_URL, or a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'gamify.db'}"

    @property
    def inbound_topic(self) -> str:
        return f"{self.kafka_topic_prefix}inbound"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.kafka_topic_prefix}inbound-dlq"

    @property
    def log_path(self) -> str:
        """The SQLite file of the embedded log (used when no Kafka broker is configured)."""
        return str(self.data_dir / "log.db")


def parse_api_keys(raw: str) -> tuple[ApiKeySpec, ...]:
    """Parse ``TENANT:KEY`` or ``TENANT:KEY:admin`` items separated by commas."""
    specs = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]) or parts[2:] not in ([], ["admin"]):
            raise ConfigError(
                f"GAMIFY_API_KEYS item {item.split(':')[0]!r}:...: expected TENANT:KEY or "
                "TENANT:KEY:admin"
            )
        specs.append(ApiKeySpec(parts[0], parts[1], admin=parts[2:] == ["admin"]))
    return tuple(specs)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


def _database_url(raw: str | None) -> str | None:
    if raw is None or raw.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return raw
    raise ConfigError(
        "GAMIFY_DATABASE_URL: expected sqlite:///path/to/file.db or postgresql://user@host/db"
    )
