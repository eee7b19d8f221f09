"""Billing and workspace models: usage metrics, subscription, workspace, user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from ._base import CargoModel, OpenStrEnum

__all__ = ["UsageUnit", "UsageItem", "UsageMetric", "Subscription", "Workspace", "User"]


class UsageUnit(OpenStrEnum):
    CREDITS = "billing.credits"
    RECORDS = "storage.records"
    EXECUTIONS = "orchestration.executions"


class UsageItem(CargoModel):
    slug: str
    count: float
    group_by: str | None = None


class UsageMetric(CargoModel):
    """Usage in one time bucket (REFERENCE §6.1, §9.15)."""

    date: datetime
    items: list[UsageItem] = Field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(item.count for item in self.items)


class Subscription(CargoModel):
    """The workspace's (enriched) subscription and credit balance (REFERENCE §9.15)."""

    uuid: str
    workspace_uuid: str | None = None
    provider: str | None = None
    plan: str | None = None
    cadence: str | None = None
    subscription_status: str | None = None
    subscription_available_credits_count: float = 0
    subscription_credits_used_count: float = 0
    additional_available_credits_count: float = 0
    has_credits: bool | None = None
    start_at: datetime | None = None
    reset_at: datetime | None = None
    end_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def credits_remaining(self) -> float:
        """Credits left in the current period: ``subscriptionAvailableCreditsCount -
        subscriptionCreditsUsedCount``, the formula Cargo documents (REFERENCE 6.2).

        Cargo does not document how ``additionalAvailableCreditsCount`` (top-ups) combines with it
        (CARGO-DOCS 5.9), so it is not added: read :attr:`additional_available_credits_count` beside it.
        """
        return self.subscription_available_credits_count - self.subscription_credits_used_count


class Workspace(CargoModel):
    uuid: str
    name: str
    max_concurrent_runs: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    metadata: dict[str, Any] | None = None


class User(CargoModel):
    uuid: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
