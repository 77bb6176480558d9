"""Fold of the tiers feature's events into the participant row and its tables (to be built)."""
