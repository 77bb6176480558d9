"""The data-key store: one random AES-256 key per participant, kept outside the log.

Personal fields on the log are sealed with these keys (schemas/sealing.py); erasing a
participant destroys its key, which makes every copy of those fields unreadable, in the log and
in every replay (crypto-shredding). The store is its own table, ``data_keys``, in a database no
replay or rebuild touches: by default ``keys.db`` in the data directory (embedded) or the schema
``gamify_keys`` of the PostgreSQL read-model database; ``GAMIFY_KEY_STORE_URL`` names another.
docs/erasure.md explains the choices.

Keys are cached per process for ``ttl`` seconds. A destroyed key is dropped from this process's
cache at once and from other processes' caches within ``ttl``; a write sealed meanwhile with the
destroyed key by another process is unreadable like everything else it sealed (it reads as
erased), so a stale cache can lose data written right after an erasure but never reveal it.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from projections.db import SQLITE_PREFIX, Database, open_database, row
from schemas.sealing import KEY_BYTES, NONCE_BYTES, new_key

logger = logging.getLogger(__name__)

TABLE = "data_keys"
CREATE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    kid TEXT NOT NULL,
    material TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id))"""
DEFAULT_TTL = 30.0  # seconds a cached key (or its absence) is trusted


class KeyStoreError(RuntimeError):
    """The key store cannot give a key: a wrapped key without the master key, or a wrong one."""


class DataKeyStore:
    """Data keys in one table; optionally wrapped with a master key (AES-256-GCM).

    ``material`` is ``raw:<base64 key>``, or with a master key ``aesgcm:<base64 nonce>:<base64
    wrapped key>`` whose additional data is the tenant, participant and key id. Thread-safe;
    every method does blocking I/O on a miss (call from a thread on an event loop).
    """

    def __init__(
        self,
        db: Database,
        *,
        master_key: bytes | None = None,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if master_key is not None and len(master_key) != KEY_BYTES:
            raise ValueError("the master key must be 32 bytes (AES-256)")
        self.db = db
        self.master = None if master_key is None else AESGCM(master_key)
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[str, bytes, float]] = {}
        self._destroyed: set[tuple[tuple[str, str], str]] = set()
        self._swept = clock()
        self._lock = threading.Lock()

    def create_table(self) -> None:
        with self.db.transaction(commit=True) as c:
            c.execute(CREATE)

    def check(self) -> None:
        """Raise KeyStoreError now (at start-up) if the stored keys cannot be unwrapped."""
        with self.db.transaction(commit=False) as c:
            c.execute(f"SELECT tenant, participant_id, kid, material FROM {TABLE} LIMIT 1")  # noqa: S608
            found = row(c)
        if found is not None:
            self._unwrap((found[0], found[1]), found[2], found[3])

    def cached_write_key(self, tenant: str, participant_id: str) -> bool:
        """True when ``key_for_write`` would answer from the cache (no I/O)."""
        found = self._cache.get((tenant, participant_id))
        return found is not None and found[2] > self.clock()

    def key_for_write(self, tenant: str, participant_id: str) -> tuple[str, bytes]:
        """The participant's current (kid, key); a new random key on first use (or after erasure)."""
        ident = (tenant, participant_id)
        found = self._cache.get(ident)
        if found is not None and found[2] > self.clock():
            return found[0], found[1]
        kid, key = secrets.token_hex(8), new_key()
        with self.db.transaction(commit=True) as c:
            c.execute(
                self.db.sql(
                    f"INSERT INTO {TABLE} (tenant, participant_id, kid, material, created_at) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, participant_id) DO NOTHING"
                ),
                (tenant, participant_id, kid, self._wrap(ident, kid, key), _now()),
            )
            current = self._select(c, ident)
        if current is None:  # destroyed between the insert and the select: an erasure won
            raise KeyStoreError(f"the data key of {participant_id!r} was destroyed just now")
        self._remember(ident, *current)
        return current

    def keys_for_write(self, idents: Iterable[tuple[str, str]]) -> None:
        """``key_for_write`` for many (tenant, participant) at once: one transaction for those
        not cached, so a batch of new participants pays for one durable commit, not one each."""
        missing = [i for i in dict.fromkeys(idents) if not self.cached_write_key(*i)]
        if not missing:
            return
        fresh = [(i, secrets.token_hex(8), new_key()) for i in missing]
        insert = self.db.sql(
            f"INSERT INTO {TABLE} (tenant, participant_id, kid, material, created_at) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, participant_id) DO NOTHING"
        )
        created = _now()
        found: list[tuple[tuple[str, str], tuple[str, bytes] | None]] = []
        with self.db.transaction(commit=True) as c:
            c.executemany(
                insert, [(*i, kid, self._wrap(i, kid, key), created) for i, kid, key in fresh]
            )
            found = [(i, self._select(c, i)) for i in missing]
        for ident, current in found:
            if current is None:  # destroyed between the insert and the select: an erasure won
                raise KeyStoreError(f"the data key of {ident[1]!r} was destroyed just now")
            self._remember(ident, *current)

    def key_for_read(self, tenant: str, participant_id: str, kid: str) -> bytes | None:
        """The key ``kid`` of the participant, or None if it was destroyed.

        Key ids are random and never reused, so a kid found missing is remembered as destroyed
        for good; a key found is trusted for ``ttl`` seconds.
        """
        ident = (tenant, participant_id)
        if (ident, kid) in self._destroyed:
            return None
        found = self._cache.get(ident)
        if found is not None and found[0] == kid and found[2] > self.clock():
            return found[1]
        with self.db.transaction(commit=False) as c:
            current = self._select(c, ident)
        if current is not None:
            self._remember(ident, *current)
        if current is None or current[0] != kid:
            with self._lock:
                self._destroyed.add((ident, kid))
            return None
        return current[1]

    def destroy(self, tenant: str, participant_id: str) -> bool:
        """Delete the participant's key for good; True if there was one.

        SQLite: deleted with ``secure_delete`` (the page is overwritten) and the WAL truncated,
        so no copy stays in the database files. PostgreSQL: the row is deleted and the table
        vacuumed when possible (see docs/erasure.md for backups and WAL archives).
        """
        ident = (tenant, participant_id)
        with self.db.transaction(commit=True) as c:
            if self.db.kind == "sqlite":
                c.execute("PRAGMA secure_delete = ON")
            c.execute(
                self.db.sql(f"SELECT kid FROM {TABLE} WHERE tenant = ? AND participant_id = ?"),  # noqa: S608
                ident,
            )
            found = row(c)
            c.execute(
                self.db.sql(f"DELETE FROM {TABLE} WHERE tenant = ? AND participant_id = ?"),  # noqa: S608
                ident,
            )
        deleted = found is not None
        if found is not None:
            with self._lock:
                self._destroyed.add((ident, found[0]))
        self.forget(tenant, participant_id)
        self._scrub()
        return deleted

    def forget(self, tenant: str, participant_id: str) -> None:
        """Drop the participant's cached key (the projector calls it on ParticipantErased)."""
        with self._lock:
            self._cache.pop((tenant, participant_id), None)

    def close(self) -> None:
        self.db.close()

    def _remember(self, ident: tuple[str, str], kid: str, key: bytes) -> None:
        now = self.clock()
        with self._lock:
            self._cache[ident] = (kid, key, now + self.ttl)
            if now - self._swept >= self.ttl:  # expired keys leave memory, not only the answers
                self._swept = now
                for stale in [i for i, (_, _, until) in self._cache.items() if until <= now]:
                    del self._cache[stale]

    def _select(self, c: object, ident: tuple[str, str]) -> tuple[str, bytes] | None:
        c.execute(  # type: ignore[attr-defined]
            self.db.sql(
                f"SELECT kid, material FROM {TABLE} WHERE tenant = ? AND participant_id = ?"  # noqa: S608
            ),
            ident,
        )
        found = row(c)
        if found is None:
            return None
        return found[0], self._unwrap(ident, found[0], found[1])

    def _wrap(self, ident: tuple[str, str], kid: str, key: bytes) -> str:
        if self.master is None:
            return "raw:" + _b64(key)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = self.master.encrypt(nonce, key, _key_aad(ident, kid))
        return f"aesgcm:{_b64(nonce)}:{_b64(wrapped)}"

    def _unwrap(self, ident: tuple[str, str], kid: str, material: str) -> bytes:
        scheme, _, rest = material.partition(":")
        if scheme == "raw":
            return base64.b64decode(rest)
        if scheme != "aesgcm":
            raise KeyStoreError(f"unknown data-key format {scheme!r}")
        if self.master is None:
            raise KeyStoreError("data keys are wrapped: set GAMIFY_ENCRYPTION_KEY")
        nonce, _, wrapped = rest.partition(":")
        try:
            return self.master.decrypt(
                base64.b64decode(nonce), base64.b64decode(wrapped), _key_aad(ident, kid)
            )
        except InvalidTag as exc:
            raise KeyStoreError("GAMIFY_ENCRYPTION_KEY does not unwrap the data keys") from exc

    def _scrub(self) -> None:
        """Best effort once the row is gone: no copy of it left in a WAL or a dead tuple."""
        try:
            if self.db.kind == "sqlite":
                with closing(sqlite3.connect(self.db.path or "", isolation_level=None)) as conn:
                    conn.execute("PRAGMA busy_timeout = 5000")
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                with self.db.datastore.get_connection() as conn:
                    autocommit, conn.autocommit = conn.autocommit, True
                    try:
                        conn.execute(f"VACUUM {TABLE}")
                    finally:
                        conn.autocommit = autocommit
        except Exception:  # the row is deleted already; a busy database keeps the copy longer
            logger.warning("could not scrub the data-key store after an erasure", exc_info=True)


def _key_aad(ident: tuple[str, str], kid: str) -> bytes:
    return b"\x00".join((b"gamify.data-key.v1", ident[0].encode(), ident[1].encode(), kid.encode()))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def open_data_keys(
    url: str,
    *,
    master_key: bytes | None = None,
    ttl: float = DEFAULT_TTL,
    must_exist: bool = False,
) -> DataKeyStore:
    """The data-key store at ``url`` (sqlite:/// or postgresql://...?schema=...), table created.

    ``must_exist`` (replay): raise KeyStoreError instead of creating a missing store, because a
    replay with an empty key store would rebuild every participant as erased.
    """
    if must_exist and url.startswith(SQLITE_PREFIX):
        if not Path(url.removeprefix(SQLITE_PREFIX)).exists():
            raise KeyStoreError(f"no data-key store at {url}: set GAMIFY_KEY_STORE_URL")
    store = DataKeyStore(
        open_database(url, pool_size=4, derived=False), master_key=master_key, ttl=ttl
    )
    if must_exist and store.db.kind == "postgres":
        with store.db.transaction(commit=False) as c:
            c.execute("SELECT to_regclass(%s) AS found", (TABLE,))
            if row(c)[0] is None:  # type: ignore[index]
                store.close()
                raise KeyStoreError(f"no data-key store at {url}: set GAMIFY_KEY_STORE_URL")
    store.create_table()
    store.check()
    return store
