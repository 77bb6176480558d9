"""Rewards: claims with per-participant caps and optional points deduction (to be built)."""
