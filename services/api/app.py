"""Assemble a Gamify process: one cleanup context per resource, no I/O until startup.

A process has roles: ``api`` (the HTTP API), ``projector`` (log -> read models), ``inbound``
(commands from Kafka), ``webhooks`` (log -> outbox -> receivers) and ``scheduler`` (time-driven
commits: point expiry). ``gamify serve`` runs them all; every process serves the ops routes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Collection
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import uuid_utils
from aiohttp import web
from limits.aio.storage import RedisStorage

from projections import runner
from projections.api_keys.queries import ApiKeyQueries
from projections.data_keys import open_data_keys
from projections.db import open_database
from projections.definitions.queries import DefinitionQueries
from projections.lag import LagMonitor, SingleFlight
from projections.leaderboards import LeaderboardQueries
from projections.participants.queries import ParticipantQueries
from projections.participants.store import PROJECTION, ParticipantStore, participant_store
from projections.past import PastQueries
from projections.progress import Progress
from projections.rewards.queries import RewardQueries
from projections.sources import LogSource
from projections.webhooks.outbox import Outbox
from services import metrics
from services.adapters.api_key_reader import ApiKeyStateReader
from services.adapters.read_model import DefinitionStateReader, ReadModelReader
from services.adapters.sealing_event_log import SealingEventLog
from services.api import docs_views
from services.api.access import access_middleware
from services.api.auth import KeyRing
from services.api.errors import error_middleware
from services.api.health import WorkerStatus, WriteHealth
from services.api.issued_keys import IssuedKeys
from services.api.keys import (
    api_key_queries_key,
    api_key_reader_key,
    data_keys_key,
    definition_queries_key,
    definition_reader_key,
    deps_key,
    issued_keys_key,
    key_ring_key,
    lag_key,
    leaderboard_queries_key,
    log_reader_key,
    past_queries_key,
    progress_key,
    queries_key,
    rate_limiter_key,
    reward_queries_key,
    reward_stock_key,
    settings_key,
    store_ping_key,
    webhook_outbox_key,
    workers_key,
    write_health_key,
)
from services.api.middlewares import auth_middleware, stamp_response
from services.api.quarantine_ops import quarantine_ctx
from services.api.rate_limits import RateLimiter, storage_for
from services.api.routes import OPS_ROUTES, ROUTES
from services.config import Settings
from services.participants.handlers import Deps
from services.rewards.reader import RewardStockReader

logger = logging.getLogger(__name__)

ALL_ROLES = frozenset({"api", "projector", "inbound", "webhooks", "scheduler"})
store_key = web.AppKey("store_key", ParticipantStore)
log_key = web.AppKey("log_key", object)
source_key = web.AppKey("source_key", object)
end_offsets_key = web.AppKey("end_offsets_key", object)

RESTART_DELAY = 1.0
WEBHOOK_FETCH_WAIT_MS = 250  # the webhook dispatcher's fetch.max.wait.ms (Kafka)
# The projector's, with own appends: on brokers that hold a fetch for all of it (tansu), a
# commit of another process is projected up to this much later (on Kafka, no later).
PROJECTOR_FETCH_WAIT_MS = 100
WORKER_STOP_TIMEOUT = 5.0  # seconds a worker gets to finish its batch when the process stops


def create_app(
    settings: Settings,
    *,
    key_ring: KeyRing | None = None,
    event_log: Any = None,
    roles: Collection[str] = ALL_ROLES,
) -> web.Application:
    """The Gamify app; ``event_log`` (an EventLog that is also a LogSource) replaces the real log."""
    app = web.Application(
        middlewares=[
            access_middleware,
            error_middleware,
            auth_middleware,
        ],
        client_max_size=settings.max_body_bytes,
        # aiohttp's own access log quotes the query string; services.api.access writes ours.
        handler_args={"access_log": None},
    )
    app.on_response_prepare.append(stamp_response)
    app[settings_key] = settings
    app[key_ring_key] = key_ring or KeyRing.from_specs(settings.api_keys)
    app[workers_key] = {}
    app[write_health_key] = WriteHealth()
    app[store_ping_key] = SingleFlight()
    app.cleanup_ctx.append(data_keys_ctx)
    app.cleanup_ctx.append(read_model_ctx)
    app.cleanup_ctx.append(webhook_outbox_ctx)
    if event_log is not None:
        app[log_key] = app[source_key] = app[log_reader_key] = event_log
        app[end_offsets_key] = event_log.end_offsets
    elif settings.kafka_bootstrap_servers:
        app.cleanup_ctx.append(kafka_log_ctx)
    else:
        app.cleanup_ctx.append(embedded_log_ctx)
    app.cleanup_ctx.append(lag_ctx)
    app.cleanup_ctx.append(quarantine_ctx)
    if roles & {"api", "inbound", "scheduler"}:
        app.cleanup_ctx.append(deps_ctx)
    if "projector" in roles:
        app.cleanup_ctx.append(projector_ctx)
    if "scheduler" in roles:
        app.cleanup_ctx.append(scheduler_ctx)
    if "inbound" in roles and settings.kafka_bootstrap_servers and event_log is None:
        app.cleanup_ctx.append(inbound_ctx)
    app.on_startup.append(docs_views.build_document)
    if "webhooks" in roles and event_log is None:
        app.cleanup_ctx.append(webhooks_ctx)
    app.add_routes(OPS_ROUTES)
    if "api" in roles:
        app.cleanup_ctx.append(issued_keys_ctx)
        app.cleanup_ctx.append(rate_limit_ctx)
        app.add_routes(ROUTES)
    return app


async def data_keys_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    if settings.data_keys_url.startswith("sqlite:///"):
        await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
    keys = await asyncio.to_thread(
        open_data_keys, settings.data_keys_url, master_key=settings.encryption_key
    )
    app[data_keys_key] = keys
    yield
    keys.close()


async def read_model_ctx(app: web.Application) -> AsyncIterator[None]:
    db = await asyncio.to_thread(open_database, app[settings_key].read_model_url)
    store = participant_store(db, keys=app[data_keys_key])
    await asyncio.to_thread(store.create_table)
    queries = ParticipantQueries(db)
    topic = app[settings_key].participant_events_topic
    app[store_key] = store
    app[queries_key] = queries
    app[definition_queries_key] = DefinitionQueries(db)
    app[definition_reader_key] = DefinitionStateReader(app[definition_queries_key])
    app[leaderboard_queries_key] = LeaderboardQueries(db)
    app[past_queries_key] = PastQueries(db, keys=app[data_keys_key])
    app[reward_queries_key] = RewardQueries(db)
    app[reward_stock_key] = RewardStockReader(app[reward_queries_key])
    app[api_key_queries_key] = ApiKeyQueries(db)
    app[api_key_reader_key] = ApiKeyStateReader(app[api_key_queries_key])
    app[progress_key] = Progress(lambda partition: queries.next_offset(topic, partition))
    yield
    db.close()


async def issued_keys_ctx(app: web.Application) -> AsyncIterator[None]:
    await asyncio.to_thread(app[api_key_queries_key].create_usage_table)
    issued = app[issued_keys_key] = IssuedKeys(app[api_key_queries_key])
    yield
    await issued.close()


async def rate_limit_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key].rate_limits
    storage = storage_for(settings)
    app[rate_limiter_key] = RateLimiter(settings, storage, on_error=metrics.RATE_LIMIT_ERRORS.inc)
    if settings.redis_url is not None and not await storage.check():
        logger.warning(
            "Redis at GAMIFY_REDIS_URL does not answer: rate limits are not enforced until it does"
        )
    yield
    if isinstance(storage, RedisStorage):
        await storage.bridge.storage.aclose()


async def embedded_log_ctx(app: web.Application) -> AsyncIterator[None]:
    from projections.sources.sqlite import SqliteLogReader, SqliteLogSource
    from services.adapters.sqlite_event_log import SqliteEventLog

    settings = app[settings_key]
    await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
    source = SqliteLogSource(settings.log_path, settings.participant_events_topic)
    log = SqliteEventLog(settings.log_path, on_append=source.wake)
    app[log_key], app[source_key], app[end_offsets_key] = log, source, source.end_offsets
    app[log_reader_key] = reader = SqliteLogReader(settings.log_path)
    yield
    log.close()
    source.close()
    reader.close()


async def kafka_log_ctx(app: web.Application) -> AsyncIterator[None]:
    from projections.sources.kafka import KafkaEndOffsets, KafkaLogSource
    from projections.sources.kafka_reader import KafkaLogReader
    from services.adapters.kafka_clients import client_options, topic_policy
    from services.adapters.kafka_event_log import KafkaEventLog

    settings = app[settings_key]
    bootstrap = settings.kafka_bootstrap_servers or ""
    connection = client_options(settings.kafka_security)
    log = KafkaEventLog(
        bootstrap,
        settings.participant_events_topic,
        partitions=settings.kafka_partitions,
        policy=topic_policy(settings),
        idempotence=settings.kafka_idempotence,
        connection=connection,
    )
    await log.start()  # refuses a topic that could lose events (TopicConfigError)
    end_offsets = KafkaEndOffsets(
        bootstrap, settings.participant_events_topic, connection=connection
    )
    app[log_key], app[end_offsets_key] = log, end_offsets
    reader = KafkaLogReader(bootstrap, settings.participant_events_topic, connection=connection)
    app[log_reader_key] = reader
    app[source_key] = source = KafkaLogSource(
        bootstrap,
        settings.participant_events_topic,
        # Names this process, so that its restart can remove the member a crash left behind.
        client_id=f"gamify-projector@{socket.gethostname()}:{settings.http_port}",
        group_id=f"{settings.kafka_topic_prefix}projections.{PROJECTION}",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        connection=connection,
        group_instance_id=settings.kafka_group_instance_id,
        own_appends=settings.project_own_appends,
        # This process's own commits reach its projector without a fetch (own appends): the
        # fetch brings other processes' commits and the confirmations. Idle, each consumer
        # sends a fetch every max wait (at 20 ms, most of an idle serve's CPU).
        fetch_max_wait_ms=PROJECTOR_FETCH_WAIT_MS if settings.project_own_appends else 20,
    )
    log.on_appended = source.offer
    yield
    await reader.stop()
    await end_offsets.stop()
    await log.stop()


async def lag_ctx(app: web.Application) -> AsyncIterator[None]:
    topic = app[settings_key].participant_events_topic
    store = app[store_key]
    monitor = LagMonitor(
        PROJECTION,
        app[end_offsets_key],
        lambda ps: store.next_offsets(topic, ps),  # type: ignore[arg-type]
    )
    app[lag_key] = monitor
    await monitor.measure()
    async with _background(monitor.run, "gamify-lag"):
        yield


async def deps_ctx(app: web.Application) -> AsyncIterator[None]:
    app[deps_key] = Deps(
        log=SealingEventLog(app[log_key], app[data_keys_key]),
        reader=ReadModelReader(
            app[queries_key],
            app[definition_queries_key],
            positions=lambda: tuple(sorted(app[progress_key].known().items())),
            log=app[log_reader_key],  # type: ignore[arg-type]
            keys=app[data_keys_key],
        ),
        progress=app[progress_key],
        clock=lambda: datetime.now(UTC),
        new_id=lambda: str(uuid_utils.uuid7()),
        projection_timeout=app[settings_key].write_timeout,
    )
    yield


async def projector_ctx(app: web.Application) -> AsyncIterator[None]:
    source: LogSource = app[source_key]  # type: ignore[assignment]
    status = WorkerStatus("projector", joined=lambda: getattr(source, "joined", True))
    app[workers_key]["projector"] = status

    async def project(stop: asyncio.Event) -> None:
        await runner.run(source, app[store_key], stop, on_advance=app[progress_key].advance)

    async with _background(project, "gamify-projector", restart=True, status=status):
        yield


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """The scheduler: expires due credits through the command path (services/scheduler.py)."""
    from projections.participants.expiry_queries import ExpiryQueries
    from services.scheduler import ExpiryScheduler

    settings = app[settings_key]
    scheduler = ExpiryScheduler(
        app[deps_key],
        ExpiryQueries(app[store_key].db),
        clock=lambda: datetime.now(UTC),
        interval=settings.scheduler_interval,
        batch=settings.scheduler_batch,
    )
    status = app[workers_key]["scheduler"] = WorkerStatus("scheduler")
    async with _background(scheduler.run, "gamify-scheduler", restart=True, status=status):
        yield


async def inbound_ctx(app: web.Application) -> AsyncIterator[None]:
    from services.adapters.kafka_clients import client_options, ensure_gamify_topics
    from services.inbound.processor import InboundProcessor, InboundTopics

    settings = app[settings_key]
    bootstrap = settings.kafka_bootstrap_servers or ""
    connection = client_options(settings.kafka_security)
    await ensure_gamify_topics(settings, events=False, inbound=True)
    processor = InboundProcessor(
        app[deps_key],
        bootstrap,
        InboundTopics(settings.inbound_topic, settings.dead_letter_topic),
        app[key_ring_key].tenants,
        group_id=f"{settings.kafka_topic_prefix}inbound",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        rewards=app[reward_stock_key],
        connection=connection,
        client_id=f"gamify-inbound@{socket.gethostname()}:{settings.http_port}",
        max_records=settings.inbound_max_records,
    )
    status = app[workers_key]["inbound"] = WorkerStatus("inbound")
    async with _background(processor.run, "gamify-inbound", restart=True, status=status):
        yield


async def webhook_outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    outbox = Outbox(app[store_key].db, keys=app[data_keys_key])
    await asyncio.to_thread(outbox.create_tables)
    app[webhook_outbox_key] = outbox
    yield


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The webhook dispatcher (log -> outbox, behind the projector) and the sender."""
    from projections.webhooks import dispatcher
    from services.webhooks.sender import Sender

    settings, outbox, store = app[settings_key], app[webhook_outbox_key], app[store_key]
    topic = settings.participant_events_topic
    source, close = _webhook_source(settings)

    async def projector_position(partition: int) -> int:
        found = await asyncio.to_thread(store.next_offsets, topic, [partition])
        return found.get(partition, 0)

    async def dispatch(stop: asyncio.Event) -> None:
        await dispatcher.run(source, outbox, projector_position, stop)

    def positions(partitions: list[int]) -> dict[int, int]:
        return outbox.next_offsets(topic, partitions)

    lag = LagMonitor(dispatcher.NAME, app[end_offsets_key], positions)  # type: ignore[arg-type]
    async with (
        _background(dispatch, "gamify-webhooks", restart=True),
        _background(Sender(outbox, settings.webhooks).run, "gamify-webhook-sender", restart=True),
        _background(lag.run, "gamify-webhook-lag"),
    ):
        yield
    close()


def _webhook_source(settings: Settings) -> tuple[LogSource, Any]:
    """The dispatcher's own reader of the log (its own consumer group on Kafka)."""
    if settings.kafka_bootstrap_servers:
        from projections.sources.kafka import KafkaLogSource
        from services.adapters.kafka_clients import client_options

        kafka = KafkaLogSource(
            settings.kafka_bootstrap_servers,
            settings.participant_events_topic,
            group_id=f"{settings.kafka_topic_prefix}webhooks",
            client_id="gamify-webhooks",
            session_timeout_ms=settings.kafka_session_timeout_ms,
            # Idle, a consumer sends a fetch every max wait: at the projector's 20 ms these
            # fetches took ~7% of the serving loop under GET load (py-spy). On Kafka new records
            # end a fetch at once; brokers that hold it (tansu) delay a webhook by at most this.
            fetch_max_wait_ms=WEBHOOK_FETCH_WAIT_MS,
            connection=client_options(settings.kafka_security),
        )
        return kafka, lambda: None
    from projections.sources.sqlite import SqliteLogSource

    embedded = SqliteLogSource(settings.log_path, settings.participant_events_topic)
    return embedded, embedded.close


class _background:
    """Run ``work(stop)`` as a task for the life of a cleanup context; stop it on exit.

    With ``restart`` an error is logged and the work starts again after a delay: a projector or
    an inbound processor resumes from its stored positions, so a restart loses nothing.
    ``status`` (read by /readyz) follows whether the work runs and its last failure. On exit
    the work gets WORKER_STOP_TIMEOUT seconds to finish its batch, then it is cancelled.
    """

    def __init__(
        self, work: Any, name: str, *, restart: bool = False, status: WorkerStatus | None = None
    ) -> None:
        self.work, self.name, self.restart = work, name, restart
        self.status = status or WorkerStatus(name)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=self.name)

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.task), WORKER_STOP_TIMEOUT)
        except (TimeoutError, Exception):
            self.task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self.task

    async def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.status.running = True
                await self.work(self.stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.status.failed(exc)
                if not self.restart:
                    raise
                logger.exception("%s failed; restarting in %.1fs", self.name, RESTART_DELAY)
            finally:
                self.status.running = False
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), RESTART_DELAY)
