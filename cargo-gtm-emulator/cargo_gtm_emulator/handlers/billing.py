"""Billing: usage metrics (daily buckets) and the enriched subscription (REFERENCE §6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..backend import billing
from ..errors import ApiError, zod_enum_error
from ..routing import Request, Router
from ..util import credit_number, iso
from .common import as_time

FILTERS = {"workflowUuid": "workflow_uuid", "modelUuid": "model_uuid", "connectorUuid": "connector_uuid",
           "integrationSlug": "integration_slug", "slug": "slug"}
UNITS = ("billing.credits", "storage.records", "orchestration.executions")
MAX_DAYS = 400


def usage_metrics(req: Request) -> dict[str, Any]:
    """GET /billing/usage/metrics — one bucket per UTC day from ``from`` to ``to`` (both days inclusive)."""
    q = req.query
    if q.get("from") in (None, "") or q.get("to") in (None, ""):
        raise ApiError(None, "from and to are required.", status=400)
    start, end = as_time(str(q["from"]), "from"), as_time(str(q["to"]), "to")
    assert start is not None and end is not None
    group_by = q.get("groupBy")
    if group_by is not None and group_by not in billing.GROUP_FIELDS:
        raise ApiError(None, f"Invalid groupBy: {group_by}.", status=400)
    unit = q.get("unit")
    if unit is not None and unit not in UNITS:  # exactly the three documented units (CARGO-DOCS 5.5)
        raise zod_enum_error("unit", unit, UNITS)
    first, last = billing.day_of(start), billing.day_of(end)
    if last < first:
        raise ApiError(None, "from must be before to.", status=400)
    if (last - first).days > MAX_DAYS:
        raise ApiError(None, f"Date range is limited to {MAX_DAYS} days.", status=400)
    matches = {attr: q[param] for param, attr in FILTERS.items() if q.get(param)}
    return {"metrics": billing.usage_metrics(req.store, first, last, unit, group_by, matches,
                                             agent_uuid=q.get("agentUuid") or None)}


def subscription(req: Request) -> dict[str, Any]:
    """GET /billing/subscriptions → ``{subscription: EnrichedSubscription}``."""
    s = req.store
    created = s.subscription_created
    start = billing.day_of(created)
    reset = start + timedelta(days=30 * (1 + int((req.now - start.timestamp()) // (30 * 86400))))
    ws = s.workspace_uuid
    return {"subscription": {
        "uuid": s.subscription_uuid, "workspaceUuid": ws, "provider": "orb",
        "customerOrbId": f"orb_cus_{ws[:8]}", "customerStripeId": f"cus_{ws[-12:]}",
        "subscriptionStatus": "active", "subscriptionStripeId": None,
        "subscriptionAvailableCreditsCount": s.credits_available,
        "subscriptionCreditsUsedCount": credit_number(s.credits_used),
        "additionalAvailableCreditsCount": s.credits_additional,
        "creditsOverageBehaviors": [{"unit": "billing.credits", "action": "deny"}],
        "creditsConsumptionBehaviors": [{"unit": "billing.credits", "action": "allow"}],
        "createdAt": iso(created), "updatedAt": iso(max(created, req.now)),
        "plan": "self-serve", "cadence": "monthly", "fixedPrice": 50000, "conversionRate": 1,
        "startAt": iso(start.timestamp()), "resetAt": iso(reset.timestamp()), "endAt": None,
        "hasPendingChange": False, "hasCredits": s.credits_remaining > 0, "futureChange": None, "topup": None,
    }}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("GET", "/billing/usage/metrics", usage_metrics)
    router.add("GET", "/billing/subscriptions", subscription)
