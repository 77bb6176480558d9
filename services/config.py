"""Settings of a Gamify process, read from the environment by the composition root."""

from __future__ import annotations

import base64
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.rate_limit_config import RateLimitConfigError, RateLimitSettings


class ConfigError(ValueError):
    """An environment variable holds a value Gamify cannot use."""


# Every variable Gamify reads (the README's Configuration table lists the same set; a unit test
# holds the two together). Anything else named GAMIFY_* is most likely a typo, and a typo of
# GAMIFY_KAFKA_BOOTSTRAP_SERVERS would silently run the embedded log: start-up names them.
VARIABLES = frozenset(
    f"GAMIFY_{name}"
    for name in """
    API_KEYS DATA_DIR DATABASE_URL KEY_STORE_URL ENCRYPTION_KEY ENCRYPTION_KEY_FILE
    KAFKA_BOOTSTRAP_SERVERS KAFKA_TOPIC_PREFIX KAFKA_PARTITIONS KAFKA_IDEMPOTENCE
    KAFKA_SESSION_TIMEOUT_MS INBOUND_MAX_RECORDS KAFKA_GROUP_INSTANCE_ID PROJECT_OWN_APPENDS
    KAFKA_REPLICATION_FACTOR KAFKA_MIN_INSYNC_REPLICAS KAFKA_ALLOW_FINITE_RETENTION
    KAFKA_SECURITY_PROTOCOL KAFKA_SSL_CAFILE KAFKA_SSL_CERTFILE KAFKA_SSL_KEYFILE
    KAFKA_SSL_KEY_PASSWORD KAFKA_SSL_CHECK_HOSTNAME KAFKA_SASL_MECHANISM KAFKA_SASL_USERNAME
    KAFKA_SASL_PASSWORD HTTP_HOST HTTP_PORT WRITE_TIMEOUT_MS MAX_BODY_BYTES HTTP_READ_TIMEOUT_MS
    READY_MAX_LAG READY_STALL_MS SHUTDOWN_TIMEOUT_MS READY_FAIL_ON_QUARANTINE LOG_LEVEL
    RATE_LIMIT_PER_KEY RATE_LIMIT_PER_TENANT RATE_LIMIT_INGEST_BURST REDIS_URL REDIS_KEY_PREFIX
    WEBHOOKS_MAX_ATTEMPTS WEBHOOKS_BACKOFF_MS WEBHOOKS_BACKOFF_FACTOR WEBHOOKS_TIMEOUT_MS
    WEBHOOKS_CONCURRENCY WEBHOOKS_POLL_MS SCHEDULER_INTERVAL_MS SCHEDULER_BATCH
    WEBHOOKS_ALLOW_PRIVATE
    """.split()
)
# Read by the test suite, never by the service (README, below the Configuration table): exact
# names, so a typo of one of them is named too.
TEST_VARIABLES = frozenset(
    f"GAMIFY_{name}"
    for name in """
    TEST_KAFKA_BOOTSTRAP TEST_KAFKA_KIND TEST_KAFKA_IDEMPOTENCE TEST_POSTGRES_URL TEST_REDIS_URL
    E2E_LOG_LEVEL SYSTEM_LOG_LEVEL FUZZ_EXAMPLES FUZZ_SEED
    """.split()
)
SHOWN_NAME = 80  # characters of an unknown name the warning shows


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``GAMIFY_*`` names in ``environ`` that Gamify does not read, sorted, each followed by
    ``" (did you mean <known name>?)"`` when a known name is close (a missing letter, a swapped
    word, lower case). Names are shown escaped (``\\n``, ``\\x1b``: a name cannot break the log
    line or drive a terminal) and cut at ``SHOWN_NAME`` characters; values are never shown.
    ``TEST_VARIABLES`` are not reported."""
    known = VARIABLES | TEST_VARIABLES
    found = []
    for name in sorted(environ):
        if not name.startswith("GAMIFY_") or name in known:
            continue
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.8)
        shown = name.encode("unicode_escape").decode("ascii")
        if len(shown) > SHOWN_NAME:
            shown = shown[:SHOWN_NAME] + "..."
        found.append(f"{shown} (did you mean {close[0]}?)" if close else shown)
    return found


@dataclass(frozen=True, slots=True)
class ApiKeySpec:
    """One configured key: its tenant, the key itself and whether it has the admin scope."""

    tenant: str
    key: str
    admin: bool = False


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How Kafka clients authenticate and encrypt; the password never appears in ``repr``.

    ``security_protocol`` is Kafka's ``security.protocol``; the ``ssl_*`` files are PEM paths
    (only with SSL or SASL_SSL); the ``sasl_*`` fields are needed with SASL_PLAINTEXT or SASL_SSL.
    """

    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """The webhook sender: retries, timeouts, concurrency and which addresses it may call.

    Attempt ``n`` (1-based) that fails is retried after ``backoff * factor ** (n - 1)`` seconds,
    up to ``max_attempts`` attempts (default 5 over 2+4+8+16 = 30 minutes), then ``failed``.
    """

    max_attempts: int = 5
    backoff: float = 120.0
    backoff_factor: int = 2
    timeout: float = 10.0
    concurrency: int = 4  # requests in flight per subscription
    poll_interval: float = 0.2
    allow_private: bool = False


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
    kafka_replication_factor: int = 1
    kafka_min_insync_replicas: int = 1
    kafka_allow_finite_retention: bool = False
    kafka_security: KafkaSecurity = KafkaSecurity()
    kafka_group_instance_id: str | None = None
    inbound_max_records: int = 2_000
    project_own_appends: bool = True
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    write_timeout: float = 10.0
    max_body_bytes: int = 256 * 1024
    http_read_timeout: float = 10.0
    log_level: str = "INFO"
    ready_max_lag: int = 1000
    ready_stall: float = 2.0
    ready_fail_on_quarantine: bool = False
    shutdown_timeout: float = 10.0
    rate_limits: RateLimitSettings = RateLimitSettings()
    webhooks: WebhookSettings = WebhookSettings()
    scheduler_interval: float = 10.0  # seconds between expiry passes (docs/points-expiry.md)
    scheduler_batch: int = 500  # participants read per query of a pass
    key_store_url: str | None = None
    encryption_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        env = {k: v for k, v in environ.items() if k.startswith("GAMIFY_") and v != ""}
        replication = _int(env, "GAMIFY_KAFKA_REPLICATION_FACTOR", 1, minimum=1)
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
            kafka_replication_factor=replication,
            kafka_min_insync_replicas=_min_insync_replicas(env, replication),
            kafka_allow_finite_retention=_bool(env, "GAMIFY_KAFKA_ALLOW_FINITE_RETENTION", False),
            kafka_security=kafka_security(env),
            kafka_group_instance_id=env.get("GAMIFY_KAFKA_GROUP_INSTANCE_ID"),
            inbound_max_records=_int(env, "GAMIFY_INBOUND_MAX_RECORDS", 2_000, minimum=1),
            project_own_appends=_bool(env, "GAMIFY_PROJECT_OWN_APPENDS", True),
            http_host=env.get("GAMIFY_HTTP_HOST", "127.0.0.1"),
            http_port=_int(env, "GAMIFY_HTTP_PORT", 8080, minimum=0),
            write_timeout=float(_int(env, "GAMIFY_WRITE_TIMEOUT_MS", 10_000, minimum=1)) / 1000,
            max_body_bytes=_int(env, "GAMIFY_MAX_BODY_BYTES", 256 * 1024, minimum=1024),
            http_read_timeout=_int(env, "GAMIFY_HTTP_READ_TIMEOUT_MS", 10_000, minimum=100) / 1000,
            log_level=env.get("GAMIFY_LOG_LEVEL", "INFO").upper(),
            ready_max_lag=_int(env, "GAMIFY_READY_MAX_LAG", 1000, minimum=0),
            ready_stall=_int(env, "GAMIFY_READY_STALL_MS", 2000, minimum=100) / 1000,
            ready_fail_on_quarantine=_bool(env, "GAMIFY_READY_FAIL_ON_QUARANTINE", False),
            shutdown_timeout=_int(env, "GAMIFY_SHUTDOWN_TIMEOUT_MS", 10_000, minimum=0) / 1000,
            rate_limits=_rate_limits(env),
            webhooks=webhook_settings(env),
            scheduler_interval=_int(env, "GAMIFY_SCHEDULER_INTERVAL_MS", 10_000, minimum=50) / 1000,
            scheduler_batch=_int(env, "GAMIFY_SCHEDULER_BATCH", 500, minimum=1),
            key_store_url=_database_url(env.get("GAMIFY_KEY_STORE_URL"), "GAMIFY_KEY_STORE_URL"),
            encryption_key=_encryption_key(env),
        )

    @property
    def participant_events_topic(self) -> str:
        return f"{self.kafka_topic_prefix}participant-events"

    @property
    def read_model_url(self) -> str:
        """The read-model database: GAMIFY_DATABASE_URL, or a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'gamify.db'}"

    @property
    def data_keys_url(self) -> str:
        """The data-key store (docs/erasure.md): GAMIFY_KEY_STORE_URL, else ``keys.db`` in the
        data directory, or the schema ``gamify_keys`` of a PostgreSQL read-model database (a
        fixed schema: a replay into another schema must find the same keys)."""
        if self.key_store_url:
            return self.key_store_url
        if self.database_url and not self.database_url.startswith("sqlite:///"):
            base, _, query = self.database_url.partition("?")
            kept = [p for p in query.split("&") if p and not p.startswith("schema=")]
            return f"{base}?{'&'.join([*kept, 'schema=gamify_keys'])}"
        return f"sqlite:///{self.data_dir / 'keys.db'}"

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


def webhook_settings(env: Mapping[str, str]) -> WebhookSettings:
    """GAMIFY_WEBHOOKS_* (durations in milliseconds)."""
    return WebhookSettings(
        max_attempts=_int(env, "GAMIFY_WEBHOOKS_MAX_ATTEMPTS", 5, minimum=1),
        backoff=_int(env, "GAMIFY_WEBHOOKS_BACKOFF_MS", 120_000, minimum=1) / 1000,
        backoff_factor=_int(env, "GAMIFY_WEBHOOKS_BACKOFF_FACTOR", 2, minimum=1),
        timeout=_int(env, "GAMIFY_WEBHOOKS_TIMEOUT_MS", 10_000, minimum=100) / 1000,
        concurrency=_int(env, "GAMIFY_WEBHOOKS_CONCURRENCY", 4, minimum=1),
        poll_interval=_int(env, "GAMIFY_WEBHOOKS_POLL_MS", 200, minimum=10) / 1000,
        allow_private=_bool(env, "GAMIFY_WEBHOOKS_ALLOW_PRIVATE", False),
    )


def parse_api_keys(raw: str) -> tuple[ApiKeySpec, ...]:
    """Parse ``TENANT:KEY`` or ``TENANT:KEY:admin`` items separated by commas.

    An error names the item by its position (1-based), never by its text: the text is a key.
    """
    specs = []
    first_seen: dict[str, int] = {}
    for position, item in enumerate((part.strip() for part in raw.split(",")), start=1):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(parts[:2]) or parts[2:] not in ([], ["admin"]):
            raise ConfigError(
                f"GAMIFY_API_KEYS item {position}: expected TENANT:KEY or TENANT:KEY:admin"
            )
        if parts[1] in first_seen:  # a key names one tenant and one scope, never two
            raise ConfigError(
                f"GAMIFY_API_KEYS items {first_seen[parts[1]]} and {position}: the same key twice"
            )
        first_seen[parts[1]] = position
        specs.append(ApiKeySpec(parts[0], parts[1], admin=parts[2:] == ["admin"]))
    return tuple(specs)


def kafka_security(env: Mapping[str, str]) -> KafkaSecurity:
    """The GAMIFY_KAFKA_SECURITY_PROTOCOL, _SSL_* and _SASL_* variables, checked together.

    Raises ConfigError naming the variable (never its value when it is a secret).
    """
    protocol = (
        _choice(env, "GAMIFY_KAFKA_SECURITY_PROTOCOL", None, SECURITY_PROTOCOLS) or "PLAINTEXT"
    )
    security = KafkaSecurity(
        security_protocol=protocol,
        ssl_cafile=env.get("GAMIFY_KAFKA_SSL_CAFILE"),
        ssl_certfile=env.get("GAMIFY_KAFKA_SSL_CERTFILE"),
        ssl_keyfile=env.get("GAMIFY_KAFKA_SSL_KEYFILE"),
        ssl_key_password=env.get("GAMIFY_KAFKA_SSL_KEY_PASSWORD"),
        ssl_check_hostname=_bool(env, "GAMIFY_KAFKA_SSL_CHECK_HOSTNAME", True),
        sasl_mechanism=_choice(env, "GAMIFY_KAFKA_SASL_MECHANISM", None, SASL_MECHANISMS),
        sasl_username=env.get("GAMIFY_KAFKA_SASL_USERNAME"),
        sasl_password=env.get("GAMIFY_KAFKA_SASL_PASSWORD"),
    )
    tls_only = {
        "GAMIFY_KAFKA_SSL_CAFILE": security.ssl_cafile,
        "GAMIFY_KAFKA_SSL_CERTFILE": security.ssl_certfile,
        "GAMIFY_KAFKA_SSL_KEYFILE": security.ssl_keyfile,
        "GAMIFY_KAFKA_SSL_KEY_PASSWORD": security.ssl_key_password,
        "GAMIFY_KAFKA_SSL_CHECK_HOSTNAME": env.get("GAMIFY_KAFKA_SSL_CHECK_HOSTNAME"),
    }
    sasl_only = {
        "GAMIFY_KAFKA_SASL_MECHANISM": security.sasl_mechanism,
        "GAMIFY_KAFKA_SASL_USERNAME": security.sasl_username,
        "GAMIFY_KAFKA_SASL_PASSWORD": security.sasl_password,
    }
    for name, value in tls_only.items():
        if value is not None and not security.uses_tls:
            raise ConfigError(
                f"{name} is set but GAMIFY_KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS;"
                " set GAMIFY_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"
            )
    for name, value in sasl_only.items():
        if security.uses_sasl and value is None:
            raise ConfigError(f"GAMIFY_KAFKA_SECURITY_PROTOCOL={protocol} needs {name}")
        if value is not None and not security.uses_sasl:
            raise ConfigError(
                f"{name} is set but GAMIFY_KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL;"
                " set GAMIFY_KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT"
            )
    if security.ssl_keyfile is not None and security.ssl_certfile is None:
        raise ConfigError("GAMIFY_KAFKA_SSL_KEYFILE is set without GAMIFY_KAFKA_SSL_CERTFILE")
    return security


def _min_insync_replicas(env: Mapping[str, str], replication: int) -> int:
    value = _int(env, "GAMIFY_KAFKA_MIN_INSYNC_REPLICAS", 1, minimum=1)
    if value > replication:
        raise ConfigError(
            f"GAMIFY_KAFKA_MIN_INSYNC_REPLICAS={value} exceeds GAMIFY_KAFKA_REPLICATION_FACTOR="
            f"{replication}: no write could ever be acknowledged"
        )
    return value


def _choice(
    env: Mapping[str, str], name: str, default: str | None, allowed: tuple[str, ...]
) -> str | None:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.upper() not in allowed:
        raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(allowed)}")
    return raw.upper()


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


def _rate_limits(env: Mapping[str, str]) -> RateLimitSettings:
    try:
        return RateLimitSettings.from_env(env)
    except RateLimitConfigError as exc:
        raise ConfigError(str(exc)) from None


def _database_url(raw: str | None, name: str = "GAMIFY_DATABASE_URL") -> str | None:
    if raw is None or raw.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return raw
    raise ConfigError(f"{name}: expected sqlite:///path/to/file.db or postgresql://user@host/db")


def _encryption_key(env: Mapping[str, str]) -> bytes | None:
    """GAMIFY_ENCRYPTION_KEY (base64 of 32 bytes) or the file GAMIFY_ENCRYPTION_KEY_FILE holds."""
    raw = env.get("GAMIFY_ENCRYPTION_KEY")
    name = "GAMIFY_ENCRYPTION_KEY"
    if raw is None and "GAMIFY_ENCRYPTION_KEY_FILE" in env:
        name = "GAMIFY_ENCRYPTION_KEY_FILE"
        try:
            raw = Path(env[name]).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {env[name]!r}: {exc.strerror}") from exc
    if raw is None:
        return None
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected base64 of 32 random bytes") from exc
    if len(key) != 32:
        raise ConfigError(f"{name}: expected base64 of 32 random bytes, got {len(key)} bytes")
    return key
