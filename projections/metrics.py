"""Prometheus metrics of the projector: commits by verdict, records, lag per partition."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

COMMITS = Counter(
    "gamify_projector_commits_total",
    "Records the projector handled, by verdict (applied, rejected, redelivered, quarantined)",
    ["projection", "verdict"],
)
BATCHES = Counter("gamify_projector_batches_total", "Batches committed", ["projection"])
LAG = Gauge(
    "gamify_projector_lag_records",
    "Records on the log the projection has not applied yet, per partition",
    ["projection", "partition"],
)
QUARANTINED = Counter(
    "gamify_projector_quarantined_total",
    "Records set aside because they cannot be applied, by kind (decode, value, store, engine)",
    ["projection", "kind"],
)
QUARANTINE_OPEN = Gauge(
    "gamify_projector_quarantined_records",
    "Quarantined records no operator has retried or acknowledged yet (read from the store)",
    ["projection"],
)
