"""The data-key store (SQLite file): one key per participant, destroyed for good, cache bounds."""

from __future__ import annotations

import base64
import os
import sqlite3
from pathlib import Path

import pytest

from projections.data_keys import KeyStoreError, open_data_keys
from projections.poison import is_poison


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keys.db'}"


def test_a_participant_gets_one_key_that_every_process_sees(tmp_path: Path) -> None:
    one, two = open_data_keys(url(tmp_path)), open_data_keys(url(tmp_path))
    kid, key = one.key_for_write("acme", "p1")
    assert len(key) == 32
    assert one.key_for_write("acme", "p1") == (kid, key)
    assert two.key_for_write("acme", "p1") == (kid, key), "the first key created wins"
    assert two.key_for_read("acme", "p1", kid) == key
    assert two.key_for_read("acme", "p2", kid) is None
    assert one.key_for_write("globex", "p1")[1] != key


def test_keys_for_many_participants_come_in_one_transaction_and_keep_existing_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = open_data_keys(url(tmp_path)), open_data_keys(url(tmp_path))
    existing = two.key_for_write("acme", "p1")
    transactions = 0
    begin = type(one.db).transaction

    def counted(db: object, **kwargs: bool) -> object:
        nonlocal transactions
        transactions += db is one.db
        return begin(db, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(type(one.db), "transaction", counted)
    one.keys_for_write([("acme", "p1"), ("acme", "p2"), ("acme", "p2"), ("globex", "p3")])
    assert transactions == 1
    assert one.key_for_write("acme", "p1") == existing, "the first key created wins"
    assert one.key_for_write("acme", "p2") == two.key_for_write("acme", "p2")
    assert one.key_for_write("globex", "p3") == two.key_for_write("globex", "p3")
    assert transactions == 1, "every key is cached"
    one.keys_for_write([("acme", "p1"), ("acme", "p2")])
    assert transactions == 1


def test_a_destroyed_key_is_gone_and_a_new_one_has_another_id(tmp_path: Path) -> None:
    keys = open_data_keys(url(tmp_path))
    kid, key = keys.key_for_write("acme", "p1")
    assert keys.destroy("acme", "p1") is True
    assert keys.key_for_read("acme", "p1", kid) is None
    assert keys.destroy("acme", "p1") is False
    new_kid, new_key = keys.key_for_write("acme", "p1")
    assert (new_kid, new_key) != (kid, key)
    assert keys.key_for_read("acme", "p1", kid) is None, "the old id never opens again"
    assert keys.key_for_read("acme", "p1", new_kid) == new_key


def test_another_process_stops_using_a_destroyed_key_within_the_cache_ttl(tmp_path: Path) -> None:
    clock = Clock()
    eraser = open_data_keys(url(tmp_path))
    other = open_data_keys(url(tmp_path), ttl=30.0)
    other.clock, other._swept = clock, 0.0
    kid, key = other.key_for_write("acme", "p1")
    eraser.destroy("acme", "p1")
    assert other.key_for_read("acme", "p1", kid) == key, "cached: the documented bound"
    clock.now = 31.0
    assert other.key_for_read("acme", "p1", kid) is None
    assert other.key_for_write("acme", "p1")[0] != kid
    other.forget("acme", "p1")  # what the projector does on ParticipantErased
    other.key_for_write("acme", "idle")
    clock.now = 62.0
    other.key_for_write("acme", "p3")  # a lookup sweeps keys expired meanwhile from memory
    assert ("acme", "idle") not in other._cache


def test_the_destroyed_key_leaves_no_copy_in_the_sqlite_files(tmp_path: Path) -> None:
    keys = open_data_keys(url(tmp_path))
    for n in range(5):
        keys.key_for_write("acme", f"other-{n}")
    _, key = keys.key_for_write("acme", "p1")
    with sqlite3.connect(tmp_path / "keys.db") as conn:  # as an autocheckpoint would
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    keys.key_for_write("acme", "p2")
    keys.destroy("acme", "p1")
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("keys.db*"))
    assert base64.b64encode(key) not in stored
    assert base64.b64encode(keys.key_for_write("acme", "p2")[1]) in stored, "the others stay"


def test_with_a_master_key_data_keys_are_stored_wrapped(tmp_path: Path) -> None:
    master = os.urandom(32)
    keys = open_data_keys(url(tmp_path), master_key=master)
    kid, key = keys.key_for_write("acme", "p1")
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("keys.db*"))
    assert base64.b64encode(key) not in stored and key not in stored
    assert open_data_keys(url(tmp_path), master_key=master).key_for_read("acme", "p1", kid) == key
    with pytest.raises(KeyStoreError, match="GAMIFY_ENCRYPTION_KEY"):
        open_data_keys(url(tmp_path))  # refused at start-up, not at the first read
    with pytest.raises(KeyStoreError, match="does not unwrap"):
        open_data_keys(url(tmp_path), master_key=os.urandom(32))
    assert not is_poison(KeyStoreError("x")), "a key-store problem never quarantines records"


def test_the_key_store_location_and_master_key_come_from_the_environment(tmp_path: Path) -> None:
    from services.config import ConfigError, Settings

    embedded = Settings.from_env({"GAMIFY_DATA_DIR": str(tmp_path)})
    assert embedded.data_keys_url == f"sqlite:///{tmp_path / 'keys.db'}"
    assert embedded.encryption_key is None
    pg = Settings.from_env({"GAMIFY_DATABASE_URL": "postgresql://u@h/db?schema=rebuild"})
    assert pg.data_keys_url == "postgresql://u@h/db?schema=gamify_keys", (
        "a schema replay never uses"
    )
    own = Settings.from_env({"GAMIFY_KEY_STORE_URL": "postgresql://u@vault/keys"})
    assert own.data_keys_url == "postgresql://u@vault/keys"
    master = os.urandom(32)
    (tmp_path / "master").write_text(base64.b64encode(master).decode() + "\n")
    env = {"GAMIFY_ENCRYPTION_KEY_FILE": str(tmp_path / "master")}
    assert Settings.from_env(env).encryption_key == master
    assert "encryption_key" not in repr(Settings.from_env(env)), "never logged"
    with pytest.raises(ConfigError, match="32"):
        Settings.from_env({"GAMIFY_ENCRYPTION_KEY": base64.b64encode(b"short").decode()})
    with pytest.raises(ConfigError, match="GAMIFY_KEY_STORE_URL"):
        Settings.from_env({"GAMIFY_KEY_STORE_URL": "mysql://x"})


def test_a_replay_refuses_a_missing_key_store_instead_of_erasing_everyone(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="GAMIFY_KEY_STORE_URL"):
        open_data_keys(url(tmp_path), must_exist=True)
    open_data_keys(url(tmp_path)).close()
    open_data_keys(url(tmp_path), must_exist=True).close()
