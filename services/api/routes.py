"""The route table of the Gamify HTTP API."""

from __future__ import annotations

from aiohttp import web

from services.api import (
    admin_views,
    api_key_views,
    challenge_views,
    command_views,
    docs_views,
    engine_views,
    erasure_views,
    leaderboard_views,
    ops_views,
    participant_list_views,
    past_views,
    query_views,
    reward_views,
    streak_views,
    webhook_views,
)
from services.definitions.domain import KINDS

BASE = "/api/v1/gamify"
# Only the definition kinds: /admin/participants/{pid}, /admin/api-keys/{id}, /admin/webhooks
# have their own routes, and a method they lack must answer 405 with their own Allow, not fall
# through to the generic routes (whose Allow named methods that would then 404).
RESOURCE = "{resource:" + "|".join(KINDS) + "}"

OPS_ROUTES = [
    web.get("/healthz", ops_views.healthz),
    web.get("/readyz", ops_views.readyz),
    web.get("/metrics", ops_views.prometheus),
    *docs_views.ROUTES,
]

ROUTES = [
    web.post(f"{BASE}/participants", command_views.register_participant),
    web.get(f"{BASE}/participants/{{participant_id}}", query_views.get_participant),
    web.patch(f"{BASE}/participants/{{participant_id}}", command_views.update_participant),
    web.get(f"{BASE}/participants/{{participant_id}}/state", query_views.get_state),
    web.get(f"{BASE}/state/{{participant_id}}", query_views.get_state),
    web.get(f"{BASE}/participants/{{participant_id}}/history", past_views.get_history),
    web.get(f"{BASE}/participants/{{participant_id}}/points", query_views.get_points),
    web.get(
        f"{BASE}/participants/{{participant_id}}/points/transactions", query_views.get_transactions
    ),
    web.post(f"{BASE}/points/award", command_views.award_points),
    web.post(f"{BASE}/points/deduct", command_views.deduct_points),
    web.post(f"{BASE}/points/award-batch", command_views.award_points_batch),
    web.post(f"{BASE}/events", engine_views.track_event),
    web.post(f"{BASE}/events/batch", engine_views.track_events),
    web.get(f"{BASE}/participants/{{participant_id}}/events", engine_views.participant_events),
    web.post(f"{BASE}/badges/award", engine_views.award_badge),
    web.get(f"{BASE}/participants/{{participant_id}}/badges", engine_views.participant_badges),
    web.post(f"{BASE}/tiers/assign", engine_views.assign_tier),
    web.get(f"{BASE}/participants/{{participant_id}}/tier", engine_views.participant_tier),
    *api_key_views.ROUTES,  # before /admin/{resource}, which would match api-keys too
    *webhook_views.ROUTES,  # before /admin/{resource}, which would take /admin/webhooks
    *participant_list_views.ROUTES,  # before /admin/{resource}, which would take it too
    *erasure_views.ROUTES,  # before /admin/{resource}/{id}, which would take participants
    web.get(f"{BASE}/admin/{RESOURCE}", admin_views.list_definitions),
    web.post(f"{BASE}/admin/{RESOURCE}", admin_views.create),
    web.get(f"{BASE}/admin/{RESOURCE}/{{id}}", admin_views.get_definition),
    web.patch(f"{BASE}/admin/{RESOURCE}/{{id}}", admin_views.update),
    web.delete(f"{BASE}/admin/{RESOURCE}/{{id}}", admin_views.delete),
    web.post(f"{BASE}/admin/{{resource:tiers|badges}}/{{id}}/evaluate", admin_views.evaluate),
    *streak_views.ROUTES,
    *challenge_views.ROUTES,
    *reward_views.ROUTES,
    *leaderboard_views.ROUTES,
]
