"""Assemble the aiohttp application: one cleanup context per resource, no I/O until startup."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from projections import runner
from projections.participants.queries import ParticipantQueries
from projections.db import open_database
from projections.participants.store import ParticipantStore, participant_store
from projections.progress import Progress
from projections.sources import LogSource
from services.adapters.read_model import ReadModelReader
from services.api.auth import KeyRing
from services.api.errors import error_middleware
from services.api.keys import deps_key, key_ring_key, progress_key, queries_key, settings_key
from services.api.middlewares import auth_middleware
from services.api.routes import ROUTES
from services.config import Settings
from services.participants.handlers import Deps
from services.participants.ports import EventLog

logger = logging.getLogger(__name__)

store_key = web.AppKey("store_key", ParticipantStore)
log_key = web.AppKey("log_key", object)
source_key = web.AppKey("source_key", object)

RESTART_DELAY = 1.0


def create_app(
    settings: Settings,
    *,
    key_ring: KeyRing | None = None,
    event_log: Any = None,
    project: bool = True,
) -> web.Application:
    """The Gamify app; ``event_log`` (an EventLog that is also a LogSource) replaces the real log."""
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=settings.max_body_bytes
    )
    app[settings_key] = settings
    app[key_ring_key] = key_ring or KeyRing.from_specs(settings.api_keys)
    app.cleanup_ctx.append(read_model_ctx)
    if event_log is not None:
        app[log_key] = event_log
        app[source_key] = event_log
    elif settings.kafka_bootstrap_servers:
        app.cleanup_ctx.append(kafka_log_ctx)
    else:
        app.cleanup_ctx.append(embedded_log_ctx)
    app.cleanup_ctx.append(deps_ctx)
    if project:
        app.cleanup_ctx.append(projector_ctx)
    app.add_routes(ROUTES)
    return app


async def read_model_ctx(app: web.Application) -> AsyncIterator[None]:
    db = await asyncio.to_thread(open_database, app[settings_key].read_model_url)
    store = participant_store(db)
    await asyncio.to_thread(store.create_table)
    queries = ParticipantQueries(db)
    topic = _topic(app)
    app[store_key] = store
    app[queries_key] = queries
    app[progress_key] = Progress(lambda partition: queries.next_offset(topic, partition))
    yield
    db.close()


async def embedded_log_ctx(app: web.Application) -> AsyncIterator[None]:
    from projections.sources.sqlite import SqliteLogSource
    from services.adapters.sqlite_event_log import SqliteEventLog

    settings = app[settings_key]
    await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
    source = SqliteLogSource(settings.log_path, settings.participant_events_topic)
    log = SqliteEventLog(settings.log_path, on_append=source.wake)
    app[log_key], app[source_key] = log, source
    yield
    log.close()
    source.close()


async def kafka_log_ctx(app: web.Application) -> AsyncIterator[None]:
    from projections.sources.kafka import KafkaLogSource
    from services.adapters.kafka_event_log import KafkaEventLog

    settings = app[settings_key]
    bootstrap = settings.kafka_bootstrap_servers or ""
    log = KafkaEventLog(
        bootstrap,
        settings.participant_events_topic,
        partitions=settings.kafka_partitions,
        idempotence=settings.kafka_idempotence,
    )
    await log.start()
    app[log_key] = log
    app[source_key] = KafkaLogSource(
        bootstrap,
        settings.participant_events_topic,
        group_id=f"{settings.kafka_topic_prefix}projections.participants",
    )
    yield
    await log.stop()


async def deps_ctx(app: web.Application) -> AsyncIterator[None]:
    log: EventLog = app[log_key]  # type: ignore[assignment]
    app[deps_key] = Deps(
        log=log,
        reader=ReadModelReader(app[queries_key]),
        progress=app[progress_key],
        clock=lambda: datetime.now(UTC),
        new_id=lambda: str(uuid.uuid4()),
        projection_timeout=app[settings_key].write_timeout,
    )
    yield


async def projector_ctx(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(_supervise(app, stop), name="gamify-projector")
    yield
    stop.set()
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def _supervise(app: web.Application, stop: asyncio.Event) -> None:
    """Run the projector; on an error, log it and start again from the stored position."""
    source: LogSource = app[source_key]  # type: ignore[assignment]
    while not stop.is_set():
        try:
            await runner.run(source, app[store_key], stop, on_advance=app[progress_key].advance)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("projector failed; restarting in %.1fs", RESTART_DELAY)
            await asyncio.sleep(RESTART_DELAY)


def _topic(app: web.Application) -> str:
    return app[settings_key].participant_events_topic
