"""Prometheus metrics of the projector: commits by verdict, records, lag per partition."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

COMMITS = Counter(
    "gamify_projector_commits_total",
    "Commits the projector handled, by verdict (applied, rejected, redelivered, invalid)",
    ["projection", "verdict"],
)
BATCHES = Counter("gamify_projector_batches_total", "Batches committed", ["projection"])
LAG = Gauge(
    "gamify_projector_lag_records",
    "Records on the log the projection has not applied yet, per partition",
    ["projection", "partition"],
)
