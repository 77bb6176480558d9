"""Integration tests talk to a real Kafka-protocol broker and PostgreSQL (fixtures: tests/conftest.py)."""
