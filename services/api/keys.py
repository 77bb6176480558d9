"""Every web.AppKey of the Gamify application, and nothing else."""

from __future__ import annotations

from aiohttp import web

from projections.api_keys.queries import ApiKeyQueries
from projections.data_keys import DataKeyStore
from projections.definitions.queries import DefinitionQueries
from projections.lag import LagMonitor, SingleFlight
from projections.leaderboards import LeaderboardQueries
from projections.participants.quarantine import QuarantineMonitor
from projections.participants.queries import ParticipantQueries
from projections.past import PastQueries
from projections.progress import Progress
from projections.rewards.queries import RewardQueries
from projections.webhooks.outbox import Outbox
from services.adapters.api_key_reader import ApiKeyStateReader
from services.adapters.read_model import DefinitionStateReader
from services.api.auth import KeyRing
from services.api.health import WorkerStatus, WriteHealth
from services.api.issued_keys import IssuedKeys
from services.api.rate_limits import RateLimiter
from services.config import Settings
from services.participants.handlers import Deps
from services.rewards.reader import RewardStockReader

settings_key = web.AppKey("settings_key", Settings)
key_ring_key = web.AppKey("key_ring_key", KeyRing)
queries_key = web.AppKey("queries_key", ParticipantQueries)
progress_key = web.AppKey("progress_key", Progress)
deps_key = web.AppKey("deps_key", Deps)
lag_key = web.AppKey("lag_key", LagMonitor)
definition_queries_key = web.AppKey("definition_queries_key", DefinitionQueries)
definition_reader_key = web.AppKey("definition_reader_key", DefinitionStateReader)
reward_queries_key = web.AppKey("reward_queries_key", RewardQueries)
reward_stock_key = web.AppKey("reward_stock_key", RewardStockReader)
leaderboard_queries_key = web.AppKey("leaderboard_queries_key", LeaderboardQueries)
quarantine_key = web.AppKey("quarantine_key", QuarantineMonitor)
past_queries_key = web.AppKey("past_queries_key", PastQueries)
log_reader_key = web.AppKey("log_reader_key", object)  # a projections.past.LogReader
workers_key = web.AppKey("workers_key", dict[str, WorkerStatus])
write_health_key = web.AppKey("write_health_key", WriteHealth)
store_ping_key = web.AppKey("store_ping_key", SingleFlight)  # one /readyz store ping at a time
rate_limiter_key = web.AppKey("rate_limiter_key", RateLimiter)
issued_keys_key = web.AppKey("issued_keys_key", IssuedKeys)
api_key_queries_key = web.AppKey("api_key_queries_key", ApiKeyQueries)
api_key_reader_key = web.AppKey("api_key_reader_key", ApiKeyStateReader)
webhook_outbox_key = web.AppKey("webhook_outbox_key", Outbox)
data_keys_key = web.AppKey("data_keys_key", DataKeyStore)  # docs/erasure.md
