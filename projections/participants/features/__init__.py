"""Engine features' folds: each module registers evolve/writes_for handlers and its tables."""

from projections.participants.features import (  # noqa: F401 - imported to register
    badges,
    challenges,
    erasure,
    events,
    expiry,
    leaderboards,
    rewards,
    streaks,
    tiers,
)
