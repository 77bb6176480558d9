"""API keys issued and revoked through the admin API, as streams on the log."""
