"""Sizes of the maps a participant carries (``attributes``, ``metadata``, ``properties``).

One place for the numbers the boundary (services/validation.py) checks on every request and the
domain checks on a merged profile, so a stored map is never larger than one request may send.
"""

MAX_MAP_KEYS = 100  # keys per object, at any level
MAX_MAP_DEPTH = 5  # levels of nesting inside the map
MAX_MAP_BYTES = 8192  # bytes as compact JSON
MAX_SAFE_NUMBER = 2**53 - 1  # numbers in maps: exact in every JSON reader (RFC 7493)
