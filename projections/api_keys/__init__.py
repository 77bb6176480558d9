"""Issued API keys: the read model of the api_key streams (hashes only, never a key)."""
