"""The reward stock read model: one row per reward stream and one per code ever reserved."""
