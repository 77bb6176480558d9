"""Engine features: each module registers its command deciders and consequence rules."""

from services.participants.features import (  # noqa: F401 - imported to register
    badges,
    challenges,
    evaluation,
    events,
    expiry,
    rewards,
    streaks,
    tiers,
)
