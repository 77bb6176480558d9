"""Open the read-model database named by a URL: the only place database drivers are set up."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    InterfaceError,
    OperationalError,
)
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteDatastore

SQLITE_PREFIX = "sqlite:///"
_NORMAL, _FULL = "PRAGMA synchronous = NORMAL", "PRAGMA synchronous = FULL"
# The projector's own SQLite connection (``Database.transaction(derived=True)``): a page cache big
# enough for the B-tree pages a batch of thousands of rows touches (SQLite's default is 2 MiB;
# beyond it every random insert re-reads its leaf and spills dirty pages before the commit).
# A cap, not an allocation: pages are taken as they are used, by this one connection only.
# A checkpoint every 10,000 WAL pages (40 MiB) rather than SQLite's 1,000: a batch of 5,000
# commits writes more than 1,000, so every batch's commit also ran a checkpoint (two fsyncs
# under synchronous=NORMAL); a page a later batch writes again is copied once, not per batch.
DERIVED_PRAGMAS: tuple[str, ...] = (
    "PRAGMA cache_size = -65536",  # KiB: 64 MiB
    "PRAGMA wal_autocheckpoint = 10000",
)
SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class DatabaseUrlError(ValueError):
    """The URL names no database Gamify can use."""


@dataclass(frozen=True, slots=True)
class Database:
    """An eventsourcing datastore plus what differs between SQLite and PostgreSQL.

    SQL is written once with ``?`` placeholders; ``sql()`` turns it into the driver's style.
    Rows come back as tuples from both drivers (``rows()``/``row()``).
    """

    kind: str  # "sqlite" | "postgres"
    datastore: Any
    schema: str | None = None
    path: str | None = None  # the SQLite file
    _inline: dict[int, sqlite3.Connection] = field(default_factory=dict, compare=False)
    # Writing transactions in progress (threads): close() waits for them to end.
    _writing: list[int] = field(default_factory=lambda: [0], compare=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, compare=False)
    # SQLite: the connection derived transactions write through (created on first use), and who
    # holds it; see ``_derived_connection``.
    _derived: list[Any] = field(default_factory=list, compare=False)
    _derived_lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def inline_read(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row of a one-statement read, run in the calling thread without a transaction.

        SQLite only (``kind == "sqlite"``): for sub-millisecond primary-key reads on the event
        loop, where a worker-thread hop and BEGIN/ROLLBACK cost more than the read. Each thread
        gets its own autocommit, read-only connection; the statement is its own read
        transaction (WAL: it never waits for the projector's writes). Waits at most 1 s for a
        lock (only while the file is being recovered or its journal mode changes).
        """
        return self._inline_connection().execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def inline_rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Every row of a one-statement read, like ``inline_read`` (small results only)."""
        return self._inline_connection().execute(sql, params).fetchall()

    def _inline_connection(self) -> sqlite3.Connection:
        conn = self._inline.get(threading.get_ident())
        if conn is None:
            conn = sqlite3.connect(self.path or "", isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 1000")
            conn.execute("PRAGMA query_only = 1")
            self._inline[threading.get_ident()] = conn
        return conn

    @contextmanager
    def transaction(self, *, commit: bool, derived: bool = False) -> Iterator[Any]:
        """A transaction; on SQLite a writing one starts with BEGIN IMMEDIATE.

        A deferred BEGIN that reads first and writes later cannot upgrade while another
        process writes, and SQLite then fails at once ("database is locked") instead of waiting;
        taking the write lock up front makes it wait out the busy timeout like any writer.

        ``derived``: the transaction writes only what the log can give again, with the
        position it was derived up to (a projector's batch). On SQLite it then commits with
        ``synchronous = NORMAL`` (WAL, no fsync per commit): after a power loss the file is
        consistent, and a lost batch is lost together with its position and projected again.
        Every other writing transaction keeps ``FULL`` (fsync at commit).
        """
        if commit:
            with self._idle:
                self._writing[0] += 1
            try:
                with self._transaction(commit=commit, derived=derived) as c:
                    yield c
            finally:
                with self._idle:
                    self._writing[0] -= 1
                    self._idle.notify_all()
            return
        with self._transaction(commit=commit, derived=derived) as c:
            yield c

    @contextmanager
    def _transaction(self, *, commit: bool, derived: bool) -> Iterator[Any]:
        if self.kind == "sqlite" and commit and derived and self._derived_lock.acquire(False):
            try:
                if self.datastore.pool.closed:  # as the pool would: no transaction after close()
                    raise ConnectionPoolClosedError
                with _immediate(self._derived_connection()) as cursor:
                    yield cursor
            finally:
                self._derived_lock.release()
            return
        if self.kind == "sqlite" and commit:
            with self.datastore.get_connection(commit=True) as conn:
                # synchronous is per connection, and pool connections serve both kinds: every time
                with _immediate(conn, _NORMAL if derived else _FULL) as cursor:
                    yield cursor
            return
        with self.datastore.transaction(commit=commit) as c:
            yield c

    def _derived_connection(self) -> Any:
        """The SQLite connection of derived transactions (the projector's batches); call holding
        ``_derived_lock``.

        One connection kept out of the pool: the pool hands its connections out in turn, and a
        connection that another one wrote behind drops its whole page cache at its next
        transaction, so batch after batch started cold. This one keeps its cache (SQLite still
        drops it when another connection or process has written in between, so it is never
        stale) and has a bigger one (``DERIVED_PRAGMAS``), with ``synchronous = NORMAL`` set
        once. A second derived transaction while it is in use (two threads) takes a pool
        connection as before, so this never waits.
        """
        if not self._derived:
            conn = self.datastore.pool._create_connection()  # noqa: SLF001 - not a pool member
            for pragma in (_NORMAL, *DERIVED_PRAGMAS):
                conn.cursor().execute(pragma)
            self._derived.append(conn)
        return self._derived[0]

    def sql(self, text: str) -> str:
        return text if self.kind == "sqlite" else text.replace("?", "%s")

    def close(self, *, wait: float = 30.0) -> None:
        """Close every connection, once writing transactions still running end (``wait`` s at most).

        A task cancelled while its batch runs in a worker thread (a capped or interrupted replay,
        a shutdown) leaves the thread in the middle of its transaction; closing a SQLite
        connection under it would crash the process, so the batch is let finish (or roll back).
        """
        with self._idle:
            self._idle.wait_for(lambda: self._writing[0] == 0, timeout=wait)
        for conn in self._inline.values():
            conn.close()
        self._inline.clear()
        if self._derived_lock.acquire(timeout=wait):  # else a batch still runs on it: leave it
            try:
                for derived in self._derived:
                    derived.close()
                self._derived.clear()
            finally:
                self._derived_lock.release()
        self.datastore.close()


# What a store that is down, restarting, full or locked raises (psycopg's errors are wrapped
# by eventsourcing; a pool that found no connection in time raises psycopg_pool.PoolTimeout).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    sqlite3.OperationalError,
    OSError,
)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the store could not be used right now.

    Covers PostgreSQL down or restarting, a full disk, a locked SQLite file and network
    errors; programming errors (bad SQL, a bug) are not covered.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UNAVAILABLE) or _is_psycopg_operational(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_psycopg_operational(exc: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def row(cursor: Any) -> tuple[Any, ...] | None:
    found = cursor.fetchone()
    return None if found is None else _tuple(found)


def rows(cursor: Any) -> list[tuple[Any, ...]]:
    return [_tuple(r) for r in cursor.fetchall()]


def _tuple(found: Any) -> tuple[Any, ...]:
    return tuple(found.values()) if isinstance(found, dict) else tuple(found)


class _NormalSyncPool(SQLiteConnectionPool):
    """SQLite connections with ``synchronous=NORMAL``: a commit writes the WAL without fsync.

    The read models are derived from the log (DESIGN.md "Replay"): an OS crash or power loss
    may take the last committed transactions with it, rows and their tracking position
    together (WAL keeps the file consistent), and the projector applies those records again,
    to the same rows. A process crash loses nothing. The log itself (Kafka with ``acks=all``,
    or the embedded log.db, which keeps SQLite's FULL default) is what must be durable.
    With FULL every projector batch paid an fsync (~9 ms on the benchmark machine).
    """

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        conn._sqlite_conn.execute("PRAGMA synchronous = NORMAL")  # noqa: SLF001 - no other hook
        return conn


def open_database(url: str, *, pool_size: int = 8, derived: bool = True) -> Database:
    """Open ``sqlite:///path/file.db`` or ``postgresql://user:pw@host:port/db?schema=name``.

    ``derived``: everything in it is rebuilt from the log (read models), so SQLite files are
    opened with ``synchronous=NORMAL`` (see ``_NormalSyncPool``). A store the log cannot
    rebuild (the data keys of ``projections.data_keys``) passes ``derived=False`` and keeps
    SQLite's FULL default: a key, or its destruction, is never lost to a power cut.
    """
    if url.startswith(SQLITE_PREFIX):
        path = url.removeprefix(SQLITE_PREFIX)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        datastore = SQLiteDatastore(path, lock_timeout=30, pool_size=pool_size)
        if derived:
            datastore.pool = _NormalSyncPool(
                db_name=path, lock_timeout=30, pool_size=pool_size, max_overflow=10
            )
        return Database("sqlite", datastore, path=path)
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise DatabaseUrlError(
            f"unsupported database URL scheme {parts.scheme!r}: use sqlite:/// or postgresql://"
        )
    schema = parse_qs(parts.query).get("schema", ["public"])[0]
    if not SCHEMA_NAME.match(schema):
        raise DatabaseUrlError(f"schema {schema!r}: use letters, digits and _ (at most 63)")
    return Database("postgres", _postgres(parts, schema, pool_size), schema)


def _postgres(parts: Any, schema: str, pool_size: int) -> Any:
    from eventsourcing.postgres import PostgresDatastore

    class SchemaDatastore(PostgresDatastore):
        """Sets search_path on every connection so Gamify's SQL needs no schema prefix."""

        def after_connect_func(self) -> Callable[[Any], None]:
            base = super().after_connect_func()
            search_path = f'SET search_path TO "{schema}"'

            def after_connect(conn: Any) -> None:
                base(conn)
                conn.cursor().execute(search_path)

            return after_connect

    datastore = SchemaDatastore(
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        schema=schema,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_timeout=10,
    )
    # Open (and wait for) the pool once here: eventsourcing's lazy open with a timeout calls
    # pool.wait() on every checkout, which psycopg_pool does not allow from several threads.
    datastore.pool.open(wait=True, timeout=10)
    with datastore.transaction(commit=True) as c:
        c.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return datastore


@contextmanager
def _immediate(conn: Any, *first: str) -> Iterator[Any]:
    """A cursor in a ``BEGIN IMMEDIATE`` transaction on SQLite ``conn`` (after the ``first``
    statements, e.g. a pragma): rolled back if the block raises, else committed."""
    cursor = conn.cursor()
    for statement in first:
        cursor.execute(statement)
    cursor.execute("BEGIN IMMEDIATE")
    try:
        yield cursor
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
