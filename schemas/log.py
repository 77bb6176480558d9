"""Positions and records of the participant-events log, the same for Kafka and the embedded log."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class LogPosition:
    """Where a record landed: Kafka's (partition, offset); the embedded log has partition 0."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record read back from the log."""

    partition: int
    offset: int
    value: bytes
