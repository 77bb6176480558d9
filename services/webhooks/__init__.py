"""Webhook deliveries: signing, outbound address checks and the sender loop."""
