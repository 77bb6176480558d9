"""Admin definitions: the catalog of tiers, badges, streaks, rewards, challenges, leaderboards, rules."""
