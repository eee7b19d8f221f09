"""Heal after the fact: a job that re-runs the failed records of a finished Cargo batch.

Example:
    .. code-block:: python

        from dagster_cargo.definitions.heal_job import build_cargo_heal_job

        job = build_cargo_heal_job(resource_defs={"cargo": cargo})
        # launch with {"ops": {"cargo_heal_op": {"config": {"asset_key": "enriched", "retry_failed": 2}}}}

See :mod:`dagster_cargo.running.heal` for how a round works.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import Field

from ..running.heal import heal_batch
from ..running.resource import CargoResource

__all__ = ["CargoHealConfig", "build_cargo_heal_job", "cargo_heal_op", "last_materialized_batches"]


def _value(metadata: Mapping[str, Any], key: str) -> str | None:
    raw = metadata.get(key)
    raw = getattr(raw, "value", raw)
    return str(raw) if raw else None


def last_materialized_batches(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> list[str]:
    """The Cargo batches of ``asset_key``'s last materialization (its own, not its heal retries)."""
    records = instance.fetch_materializations(asset_key, limit=1).records
    mat = records[0].asset_materialization if records else None
    if mat is None:
        raise dg.Failure(description=f"Asset {asset_key.to_user_string()} has no materialization to heal.")
    metadata = mat.metadata
    uuids = (_value(metadata, "dagster-cargo/batch_uuids") or _value(metadata, "dagster-cargo/batch_uuid") or "")
    retries = set((_value(metadata, "dagster-cargo/retry_batch_uuids") or "").replace(";", ",").split(","))
    found = [u for u in uuids.split(",") if u and u not in retries]
    if not found:
        raise dg.Failure(description=f"The last materialization of {asset_key.to_user_string()} records no Cargo "
                         "batch (dagster-cargo/batch_uuid): nothing to heal.")
    return found


class CargoHealConfig(dg.Config):
    """What :data:`cargo_heal_op` heals: a finished batch, or the last materialization of a Cargo asset."""

    batch_uuid: str | None = Field(default=None, description="The finished batch (several: comma-separated chunks "
                                   "of one run, in order).")
    asset_key: str | None = Field(default=None, description="Or: heal the batch of this asset's last "
                                  "materialization ('cargo/enrich_company').")
    retry_failed: int = Field(default=1, description="Heal rounds: each re-runs the records still failing.")
    output_node_slug: str | None = Field(default=None, description="Download this node's outputs instead.")
    credit_budget: float | None = Field(default=None, description="Credits the retries may spend in all.")
    failed_rows: str = Field(default="keep", description="Records still failing: 'keep', 'drop' or 'fail'.")


@dg.op(out=dg.Out(dagster_type=Any, description="Every row of the batch, failed records re-run."),
       tags={"kind": "cargo"})
def cargo_heal_op(context: dg.OpExecutionContext, config: CargoHealConfig, cargo: CargoResource):  # type: ignore[no-untyped-def]
    """Re-run the failed records of a finished Cargo batch (or of an asset's last materialization)."""
    if bool(config.batch_uuid) == bool(config.asset_key):
        raise dg.Failure(description="Set exactly one of batch_uuid and asset_key in the op's config.")
    if config.batch_uuid:
        uuids = [u.strip() for u in config.batch_uuid.split(",") if u.strip()]
    else:
        uuids = last_materialized_batches(context.instance, dg.AssetKey.from_user_string(str(config.asset_key)))
    result = heal_batch(cargo, context, uuids, config.retry_failed, output_node_slug=config.output_node_slug,
                        credit_budget=config.credit_budget, failed_rows=config.failed_rows)
    return result.output()


def build_cargo_heal_job(name: str = "cargo_heal", *, resource_defs: Mapping[str, Any] | None = None
                         ) -> dg.JobDefinition:
    """A job of one :data:`cargo_heal_op` (resource key ``cargo``); launch it with run config
    ``{"ops": {"cargo_heal_op": {"config": {"asset_key": "cargo/enrich_company", "retry_failed": 2}}}}``."""

    @dg.job(name=name, resource_defs=dict(resource_defs) if resource_defs else None,
            description="Re-run the failed records of a finished Cargo batch.")
    def _heal() -> None:
        cargo_heal_op()

    return _heal
