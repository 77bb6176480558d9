"""The wire contract shared by every Gamify process: events, commits and their encoding."""
