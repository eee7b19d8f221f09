"""Attach a retried or re-executed Dagster step to the batch its earlier attempt created.

When a step creates a batch, the batch UUID is written as a tag on the Dagster run, under a
key derived from what the step runs (op, asset, partition, workflow and input). A step retry
runs in the same run; a re-execution ("re-execute from failure", run retries) carries the
``dagster/root_run_id`` tag linking it to the original run. Before creating a batch, the
step looks for that tag on its run group: if the earlier batch is still running or has
succeeded, it attaches to it instead of paying for a new one. A failed or cancelled batch is
not reused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dagster as dg

from .client import CargoClient
from .client.errors import CargoError, CargoNotFoundError
from .client.models import Batch, BatchStatus

__all__ = ["attempt_tag_key", "find_reusable_batch", "find_reusable_batches", "remember_batch"]

ROOT_RUN_TAG = "dagster/root_run_id"


def attempt_tag_key(context: Any, workflow_uuid: str, data: Any) -> str | None:
    """The run-tag key naming this step's batch, or ``None`` outside a real run."""
    try:
        context.run_id  # noqa: B018 - raises outside a run
        op_name = context.op_def.name
    except Exception:  # direct invocation without a run: nothing to attach to
        return None
    asset = ""
    try:
        if context.has_assets_def:
            asset = ",".join(sorted(k.to_user_string() for k in context.assets_def.keys))
    except Exception:
        asset = ""
    partition = context.partition_key if getattr(context, "has_partition_key", False) else None
    identity = json.dumps({"op": op_name, "asset": asset, "partition": partition, "workflow": workflow_uuid,
                           "data": data}, sort_keys=True, default=str)
    return "dagster-cargo/batch." + hashlib.sha1(identity.encode()).hexdigest()[:32]


def _run_group(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[dg.DagsterRun]:
    root = run.tags.get(ROOT_RUN_TAG, run.run_id)
    runs: dict[str, dg.DagsterRun] = {}
    current = instance.get_run_by_id(run.run_id)  # fresh: tags added during this run
    for candidate in [current, instance.get_run_by_id(root),
                      *instance.get_runs(filters=dg.RunsFilter(tags={ROOT_RUN_TAG: root}))]:
        if candidate is not None:
            runs[candidate.run_id] = candidate
    return list(runs.values())


def find_reusable_batch(context: Any, client: CargoClient, tag_key: str | None) -> Batch | None:
    """The batch an earlier attempt of this step created, if it is running or succeeded.

    A status this client does not know yet counts as "maybe still running": the step attaches
    and waits, since an unknown status is never taken as an ending. If the earlier batch cannot
    be read at all (after the client's retries), creating a new one could pay twice, so the step
    stops with a :class:`dagster.Failure` that says what to do instead. A batch Cargo says no
    longer exists (404) is not reused.
    """
    if tag_key is None:
        return None
    return find_reusable_batches(context, client, [tag_key])[tag_key]


def find_reusable_batches(context: Any, client: CargoClient, tag_keys: list[str | None]
                          ) -> dict[str | None, Batch | None]:
    """:func:`find_reusable_batch` for several keys, reading the run group once."""
    found: dict[str | None, Batch | None] = dict.fromkeys(tag_keys)
    keys = [k for k in found if k is not None]
    if not keys:
        return found
    group = _run_group(context.instance, context.run)
    for key in keys:
        found[key] = _reusable(context, client, key, group)
    return found


def _reusable(context: Any, client: CargoClient, tag_key: str, group: list[dg.DagsterRun]) -> Batch | None:
    seen: set[str] = set()
    for run in group:
        uuid = run.tags.get(tag_key)
        if not uuid or uuid in seen:
            continue
        seen.add(uuid)
        try:
            batch = client.get_batch(uuid)
        except CargoNotFoundError:
            context.log.info(f"Earlier Cargo batch {uuid} no longer exists; starting a new one.")
            continue
        except CargoError as exc:
            raise dg.Failure(
                description=(
                    f"An earlier attempt of this step created Cargo batch {uuid} (run {run.run_id}), but it "
                    f"could not be read now: {exc}. Creating another batch could pay twice for the same "
                    "records, so this step stops. Next step: re-execute once Cargo answers again (the step "
                    "then attaches to that batch); to pay for a new batch on purpose, launch a new run "
                    "instead of a re-execution."
                ),
                metadata={"cargo/batch_uuid": uuid},
            ) from exc
        status = batch.status
        if status == BatchStatus.SUCCESS:
            return batch
        if not status.is_known:
            context.log.warning(
                f"Earlier Cargo batch {uuid} reports status {status.value!r}, unknown to this client; "
                "treating it as still running and attaching to it rather than paying for a new batch."
            )
            return batch
        if not batch.is_terminal and status != BatchStatus.CANCELLING:
            return batch
        context.log.info(f"Earlier Cargo batch {uuid} ended {status.value}; starting a new one.")
    return None


def remember_batch(context: Any, tag_key: str | None, batch: Batch) -> None:
    """Tag the run with the batch this step created, for later attempts."""
    if tag_key is None:
        return
    context.instance.add_run_tags(context.run_id, {tag_key: batch.uuid})
