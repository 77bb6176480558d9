"""Admin definitions (tiers, badges, streaks, rewards, challenges, leaderboards, rules)."""
