"""The data-key store on PostgreSQL: keys shared by processes, destroyed (and vacuumed) for good."""

from __future__ import annotations

import logging
import os

import pytest

from projections.data_keys import TABLE, KeyStoreError, open_data_keys


def test_a_destroyed_key_is_gone_for_every_process_and_the_table_is_vacuumed(
    postgres_schema_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    master = os.urandom(32)
    one = open_data_keys(postgres_schema_url, master_key=master)
    two = open_data_keys(postgres_schema_url, master_key=master, ttl=0.0)
    try:
        kid, key = one.key_for_write("acme", "p1")
        assert two.key_for_write("acme", "p1") == (kid, key)
        with caplog.at_level(logging.WARNING, logger="projections.data_keys"):
            assert one.destroy("acme", "p1") is True
        assert caplog.records == [], "the VACUUM after the DELETE ran"
        assert two.key_for_read("acme", "p1", kid) is None
        assert one.key_for_read("acme", "p1", kid) is None
        with one.db.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) AS n FROM {TABLE}")  # noqa: S608
            assert c.fetchone()["n"] == 0
        assert two.key_for_write("acme", "p1")[0] != kid
    finally:
        one.close()
        two.close()


def test_a_replay_refuses_a_schema_without_a_key_store(postgres_schema_url: str) -> None:
    with pytest.raises(KeyStoreError, match="GAMIFY_KEY_STORE_URL"):
        open_data_keys(postgres_schema_url, must_exist=True)
    open_data_keys(postgres_schema_url).close()
    open_data_keys(postgres_schema_url, must_exist=True).close()
