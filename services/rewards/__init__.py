"""Rewards: the code stock stream's decisions and the claim saga across two streams."""
