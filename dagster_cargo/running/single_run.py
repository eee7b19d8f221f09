"""Single-record runs in Dagster: a tool input of a few records runs as Cargo single runs, not a batch.

:meth:`CargoResource.run_tool` (and every tool asset) routes an input of at most
``single_run_threshold`` records (default 1; 0 disables) here: each record becomes one
``POST /orchestration/runs`` (see :mod:`cargo_gtm.running.single_run`). The result is a
:class:`~dagster_cargo.running.execution.CargoBatchResult` (the one result type) with the same DataFrame
(one row per record, ``_status``/``_error_message``), the same credit figures and the same metadata keys,
plus ``dagster-cargo/run_uuid`` and ``dagster-cargo/mode = "single_run"`` (no batch UUID: there is none).

The runs go through the same step loop as batches (:class:`cargo_gtm.running.StepDriver` over a
:class:`cargo_gtm.running.RunHandle`): polled concurrently, cancelled by a budget mid-run, by a timeout or
when the Dagster run is terminated; one ``failed_rows`` policy, one metadata builder, one ledger
(:class:`~dagster_cargo.running.attempts.RunTagLedger`).

Exactly once across Dagster retries and re-executions, as batches (:mod:`dagster_cargo.running.attempts`): per
record, the run intent is written on the Dagster run (``dagster-cargo/run_intent.<key>``) before the create
is sent, the run UUID (``dagster-cargo/run.<key>``) the moment it is created. A later attempt of the step
(same run group) attaches to a run that is pending, running or succeeded; resolves an intent recorded
without a run by content; and stops, naming the candidates, when that cannot be told.

Plays cannot run this way (Cargo answers ``playNotCompatible``): they always run as batches, and a tool that
Cargo refuses the same way falls back to a batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg
from cargo_gtm.errors import CargoRequestError
from cargo_gtm.running import RunHandle, RunRequest, StepSettings, fetch_change_records

from .attempts import RUN_CANDIDATES_PREFIX, RUN_INTENT_PREFIX, RUN_PREFIX, RunTagLedger, run_tag_key
from .execution import CargoBatchResult, execute_step
from .metadata import estimate_metadata

if TYPE_CHECKING:
    from cargo_gtm.estimate import CreditEstimate

    from ..definitions.workspace_data import CargoWorkflowProps
    from .runner import CargoRunner

__all__ = ["CargoRunResult", "single_run_applies", "run_single", "change_run_config", "RUN_PREFIX",
           "RUN_INTENT_PREFIX", "RUN_CANDIDATES_PREFIX", "MODE_KEY", "RUN_UUID_KEY"]

MODE_KEY = "dagster-cargo/mode"
RUN_UUID_KEY = "dagster-cargo/run_uuid"
#: The result of single runs is the one result type (its ``runs`` hold them, ``batches`` is empty).
CargoRunResult = CargoBatchResult
_tag_key = run_tag_key  # its old name


def single_run_applies(props: CargoWorkflowProps, data: Mapping[str, Any], threshold: int) -> bool:
    """Whether ``data`` runs as single runs: a tool, ``records`` input of 1 to ``threshold`` records."""
    records = data.get("records") if data.get("kind") == "records" else None
    return props.type == "tool" and isinstance(records, list) and 0 < len(records) <= threshold


def _tag_runs(context: Any, uuids: list[str]) -> None:
    """Readable run tag ``dagster-cargo/run_uuid.<op>`` (best effort, as batches' ``batch_uuid.<op>``)."""
    try:
        context.instance.add_run_tags(context.run.run_id, {f"{RUN_UUID_KEY}.{context.op_def.name}": ",".join(uuids)})
    except Exception:  # noqa: S110 - outside a run there is nothing to tag
        pass


def run_single(cargo: CargoRunner, context: Any, props: CargoWorkflowProps, data: Mapping[str, Any], *,
               settings: StepSettings, estimate: CreditEstimate | None = None) -> CargoBatchResult | None:
    """Run each record of ``data`` (``records`` of a tool) as a Cargo single run, through the step loop; ``None``
    when Cargo refuses single runs for this workflow (``playNotCompatible``, nothing created): the caller runs a
    batch instead."""
    client = cargo.get_client()
    records = [dict(r) for r in data["records"]]
    requests = [RunRequest(props.workflow_uuid, record, run_tag_key(context, props.workflow_uuid, record, i),
                           settings.output_node_slug) for i, record in enumerate(records)]
    handle = RunHandle.for_step(client, requests, settings, ledger=RunTagLedger(context, client))
    client.busy_report = getattr(getattr(context, "log", None), "warning", None)
    try:
        result = execute_step(context, handle, settings, batch_url_for=cargo.batch_url)
    except CargoRequestError as exc:
        if exc.reason != "playNotCompatible" or handle.units:
            raise
        context.log.info(f"Cargo refuses single runs for {props.name!r} (playNotCompatible): running a batch instead.")
        return None
    finally:
        client.busy_report = None
        if handle.units:
            _tag_runs(context, handle.uuids)
    if estimate is not None:
        result.extra_metadata.update(estimate_metadata(estimate, result.credits_used))
    return result


# -- sensors -----------------------------------------------------------------------------
def _workflow_type(asset: dg.AssetsDefinition) -> str | None:
    spec = next(iter(asset.specs))
    value = spec.tags.get("dagster-cargo/workflow_type") or (spec.metadata or {}).get("dagster-cargo/workflow_type")
    return str(getattr(value, "value", value)) if value is not None else None


def change_run_config(cargo: CargoRunner, asset: dg.AssetsDefinition, change_uuid: str,
                      kinds: Sequence[str], *, max_records: int = 500) -> dict[str, Any]:
    """The run config that enriches a segment change's records with ``asset``.

    A play asset gets the change itself (``change_uuid``: Cargo's ``change`` batch). A tool asset (tag or
    metadata ``dagster-cargo/workflow_type = tool``) gets the change's records (``changes/{uuid}/fetch``,
    without Cargo's ``_id``/``_title``) as ``records``: a change of one record then runs as a single run.
    A change of more than ``max_records`` records raises :class:`CargoInputError` (use a play for those).
    """
    op_name = asset.node_def.name
    if _workflow_type(asset) != "tool":
        return {"ops": {op_name: {"config": {"change_uuid": change_uuid, "change_kinds": list(kinds)}}}}
    records = fetch_change_records(cargo.get_client(), change_uuid, kinds, max_records=max_records)
    clean = [{k: v for k, v in r.items() if k not in ("_id", "_title")} for r in records]
    return {"ops": {op_name: {"config": {"records": clean}}}}
