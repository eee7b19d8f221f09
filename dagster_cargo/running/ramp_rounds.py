"""A play with a credit budget and nothing to estimate from, run in ramp rounds (see :mod:`cargo_gtm.running.ramp`).

Cargo creates one batch over a play's filter; a large one passes the budget between two polls. So, as for a
tool, the play runs in rounds (1 record, then up to 50, then 500, then ``max_records_per_batch``, each sized to
what is left of the budget), over a **snapshot** of its selection:

* the snapshot: the record ids the play's ``filter`` (or ``segment``, or ``recordIds``) input selects, read once
  with Cargo's segment fetch, in Cargo's order (:func:`cargo_gtm.running.selection_ids`). Records that enter the
  filter after it are not run by this step, as a single batch does not run records that enter its filter after
  it is created;
* each round is a ``recordIds`` batch over the next ids of the snapshot: no id is in two rounds, and the rounds
  together are the snapshot (or the step fails with the figures when the budget runs out first);
* exactly-once: a round's ids are written to run tags (``dagster-cargo/ramp_ids.<key>``, keyed by the step and
  the round number, 1000 ids a tag) **before** its batch is created, and its batch is claimed like any batch of the step (attempt
  scope ``ramp<n>``, content = its ids). A re-executed step reads the rounds already fixed from its run group and
  runs them again with the same ids, so it attaches to their batches; the rounds after them come from a fresh
  snapshot less the ids already fixed. Even if the selection changed between the attempts, no record is run twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import dagster as dg
from cargo_gtm.errors import CargoStepError
from cargo_gtm.running import SNAPSHOT_KINDS, run_ramped, selection_ids

from .attempts import BATCH_PREFIX, attempt_tag_key, run_group
from .execution import BatchRunSpec, CargoBatchResult, step_failure

if TYPE_CHECKING:
    from cargo_gtm.running import StepSettings

    from ..definitions.workspace_data import CargoWorkflowProps
    from .runner import CargoRunner

__all__ = ["RAMP_IDS_PREFIX", "play_ramps", "ramped_before", "recorded_rounds", "run_play_ramped"]

RAMP_IDS_PREFIX = "dagster-cargo/ramp_ids."
IDS_PER_TAG = 1000


def play_ramps(props: CargoWorkflowProps, data: Mapping[str, Any]) -> bool:
    """Whether a play's input can run in ramp rounds (its selection can be read as record ids beforehand)."""
    return props.type == "play" and data.get("kind") in SNAPSHOT_KINDS


def round_tag_key(context: Any, workflow_uuid: str, data: Mapping[str, Any], n: int) -> str | None:
    """The run tag holding round ``n``'s record ids (None outside a run)."""
    key = attempt_tag_key(context, workflow_uuid, dict(data), scope=f"ramp{n}.ids")
    return None if key is None else RAMP_IDS_PREFIX + key[len(BATCH_PREFIX):]


def recorded_rounds(context: Any, workflow_uuid: str, data: Mapping[str, Any]) -> list[list[str]]:
    """The record ids of the rounds an earlier attempt of this step fixed, in round order (from the run group's
    tags); empty outside a run or on a first attempt."""
    if round_tag_key(context, workflow_uuid, data, 0) is None:
        return []
    tags: dict[str, str] = {}
    for run in run_group(context.instance, context.run):
        tags.update({k: v for k, v in run.tags.items() if k.startswith(RAMP_IDS_PREFIX)})
    rounds: list[list[str]] = []
    while (key := round_tag_key(context, workflow_uuid, data, len(rounds))) in tags:
        rounds.append(_read_round(key, tags))  # type: ignore[arg-type]
    return rounds


def round_tags(key: str, ids: list[str]) -> dict[str, str]:
    """The run tags of a round's ids: ``key`` holds the count and the first :data:`IDS_PER_TAG` ids, ``key.<j>``
    the next ones (a run tag value is a database ``TEXT``, 64 KB on MySQL)."""
    parts = [ids[i:i + IDS_PER_TAG] for i in range(0, len(ids), IDS_PER_TAG)] or [[]]
    tags = {key: json.dumps({"count": len(ids), "ids": parts[0]})}
    tags.update({f"{key}.{j}": json.dumps(part) for j, part in enumerate(parts[1:], 1)})
    return tags


def _read_round(key: str, tags: Mapping[str, str]) -> list[str]:
    """A round's ids from its tags; a round whose tags were not all written fails the step (guessing the rest
    could run a record twice)."""
    head = json.loads(tags[key])
    ids = [str(i) for i in head["ids"]]
    j = 1
    while f"{key}.{j}" in tags:
        ids.extend(str(i) for i in json.loads(tags[f"{key}.{j}"]))
        j += 1
    if len(ids) != head["count"]:
        raise dg.Failure(description=(
            f"An earlier attempt of this step fixed a ramp round of {head['count']} records, but its run tags "
            f"({key}…) hold {len(ids)}: re-running it could run a record twice, so nothing was started. "
            "Next step: run the asset anew (a new run, not a re-execution) once you have checked in Cargo which "
            "records its batches ran."))
    return ids


def ramped_before(context: Any, props: CargoWorkflowProps, data: Mapping[str, Any]) -> bool:
    """Whether an earlier attempt of this step began to run the play in rounds: a re-execution then ramps again
    (attaching to each round's batch), whatever its estimate says now."""
    return play_ramps(props, data) and bool(recorded_rounds(context, props.workflow_uuid, data))


def run_play_ramped(runner: CargoRunner, context: Any, props: CargoWorkflowProps, data: Mapping[str, Any],
                    settings: StepSettings) -> CargoBatchResult | None:
    """Run the play in ramp rounds over a snapshot of its selection (see the module docstring); None when the
    snapshot has at most one record and no round was fixed before (one batch of the input as given is then
    the same thing: the caller runs it)."""
    model_uuid = str(props.model_uuid or data.get("modelUuid"))
    fixed = recorded_rounds(context, props.workflow_uuid, data)
    taken = [i for ids in fixed for i in ids]
    fresh = selection_ids(runner.get_client(), data, model_uuid=model_uuid)
    if fresh is None and not fixed:
        return None  # input Cargo refuses as it is: its one batch says why
    seen = set(taken)
    ids = taken + [i for i in fresh or [] if i not in seen]
    if not fixed and len(ids) <= 1:
        return None
    context.log.info(
        f"No credit estimate for Cargo {settings.what} and a budget of {settings.credit_budget:g}: running its "
        f"{len(ids)} selected records (a snapshot of its {data.get('kind')} input, in Cargo's order) in rounds of "
        f"record ids (1 record, then up to 50, then 500), each sized to what is left of the budget"
        + (f"; {len(fixed)} round(s) fixed by an earlier attempt run again as they were." if fixed else "."))

    def run_round(chunk: list[str], round_settings: StepSettings, n: int) -> CargoBatchResult:
        if n >= len(fixed):  # fixed before the batch exists, so a re-execution runs the same ids
            key = round_tag_key(context, props.workflow_uuid, data, n)
            if key is not None:
                context.instance.add_run_tags(context.run_id, round_tags(key, chunk))
        step = max(1, runner.max_records_per_batch)
        specs = [BatchRunSpec(workflow_uuid=props.workflow_uuid, attempt_scope=f"ramp{n}",
                              data={"kind": "recordIds", "modelUuid": model_uuid, "ids": chunk[i:i + step]})
                 for i in range(0, len(chunk), step)]
        return runner.run_batches(context, specs, replace(round_settings, listed_batches=None) if n else
                                  round_settings)

    try:
        merged = run_ramped(ids, settings, run_round, max_round=runner.max_records_per_batch, log=context.log,
                            fixed=[len(r) for r in fixed])
    except CargoStepError as exc:
        raise step_failure(exc) from exc
    return CargoBatchResult.from_step(merged, runner.batch_url(merged.batches[0]) if merged.batches else None)
