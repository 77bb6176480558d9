"""Webhooks: the log's events as webhook payloads, the delivery outbox, the dispatcher."""
