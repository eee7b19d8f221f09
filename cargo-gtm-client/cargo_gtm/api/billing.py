"""Cargo's billing area (``api.billing.*``): usage metrics and the subscription (REFERENCE.md section 6)."""

from __future__ import annotations

from datetime import date, datetime

from ..models import Subscription, UsageMetric
from ._base import ApiArea, date_param, parse_list, wire

__all__ = ["BillingAPI"]


class BillingAPI(ApiArea):
    """Endpoints under ``/billing``."""

    def get_usage_metrics(
        self, from_: str | date | datetime, to: str | date | datetime, *, group_by: str | None = None,
        unit: str | None = None, workflow_uuid: str | None = None, model_uuid: str | None = None,
        connector_uuid: str | None = None, integration_slug: str | None = None,
    ) -> list[UsageMetric]:
        """``GET /billing/usage/metrics`` (admin token required by Cargo)."""
        params = wire(from_=date_param(from_), to=date_param(to), group_by=group_by, unit=unit,
                      workflow_uuid=workflow_uuid, model_uuid=model_uuid, connector_uuid=connector_uuid,
                      integration_slug=integration_slug)
        return parse_list(self._get("/billing/usage/metrics", params), "metrics", UsageMetric)

    def get_subscription(self) -> Subscription:
        """``GET /billing/subscriptions``: the plan and credit balance."""
        return Subscription.model_validate(self._get("/billing/subscriptions")["subscription"])
