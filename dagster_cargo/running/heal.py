"""Heal failed records: re-run only the records whose run failed, paying only for them.

Cargo's docs tell users to check ``failedRunsCount``, take the failed records and start a new batch over
just those (CARGO-DOCS 13.2: a ``recordIds`` batch for a play; a tool takes the subset of its ``records``).
``retry_failed=N`` (on :meth:`CargoResource.run_play` / ``run_tool`` / ``run_workflow`` and in a workspace
asset's run config) does that after the batch, up to ``N`` rounds:

* round ``n`` re-runs the records whose row is still ``_status == "error"``: a tool's records as the caller
  sent them, a play's record ids (``{"kind": "recordIds", "modelUuid", "ids"}``); nothing else is paid
  again. Cargo's ``runs`` replay kind is not used: its semantics are not documented (CARGO-DOCS 13.1).
* Each retry batch is created like any other (:meth:`CargoResource.run_batches`): attached to, never created
  twice, when the step is retried or re-executed. The round is part of the attempt's identity, so a round-2
  subset equal to round 1's gets its own batch.
* The rows are merged into one DataFrame in input order: each input record exactly once, with its final
  status. A record Cargo skips on the retry (a play's dedupe, ``runCreationRule: "once"``) keeps its error
  row and is not retried again.
* The credit budget covers the original batch and every retry; a round whose estimated cost (credits per
  record so far × records) would exceed what is left is not started.

Metadata (beside the usual ``dagster-cargo/*``, whose ``credits_used`` and run counts include the retries):
``dagster-cargo/records_healed``, ``dagster-cargo/records_still_failing``, ``dagster-cargo/retry_credits``,
``dagster-cargo/retry_rounds`` and ``dagster-cargo/retry_batch_uuids`` (rounds separated by ``;``).

After the fact, :func:`heal_batch` (and the op :data:`cargo_heal_op`, job :func:`build_cargo_heal_job`) heals a
finished batch, given its UUID or the asset whose last materialization recorded it.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import dagster as dg
from cargo_gtm.download import STATUS_COLUMN
from cargo_gtm.errors import CargoError, CargoInputError, CargoStepError
from cargo_gtm.models import Batch
from cargo_gtm.running import HealRows, StepSettings, apply_failed_rows, status_counts, unaffordable_round

from .execution import BatchRunSpec, CargoBatchResult
from .metadata import batch_metadata, credits_by_node_metadata
from .runner import CargoRunner

if TYPE_CHECKING:
    import pandas as pd
    from cargo_gtm.credits import CreditSplit

__all__ = ["HEAL_KEYS", "heal_batch", "heal_batches", "heal_result"]

#: The metadata keys a healed result adds.
HEAL_KEYS = ("dagster-cargo/records_healed", "dagster-cargo/records_still_failing", "dagster-cargo/retry_credits",
             "dagster-cargo/retry_rounds", "dagster-cargo/retry_batch_uuids")


def _tool_records(specs: Sequence[BatchRunSpec]) -> list[Mapping[str, Any]] | None:
    """The tool input of ``specs`` (chunks in order) as sent, or None when they are not ``records`` batches."""
    out: list[Mapping[str, Any]] = []
    for spec in specs:
        records = spec.records
        if records is None:
            return None
        out.extend(records)
    return out


def _check(retry_failed: int, failed_rows: str) -> None:
    """Refuse bad settings before anything is spent."""
    if retry_failed < 0:
        raise CargoInputError(f"retry_failed must be 0 or more (heal rounds), not {retry_failed}.")
    if failed_rows not in ("keep", "drop", "fail"):
        raise CargoInputError(f"failed_rows must be 'keep', 'drop' or 'fail', not {failed_rows!r}.")


def heal_batches(resource: CargoRunner, context: Any, specs: list[BatchRunSpec], retry_failed: int,
                 settings: StepSettings | None = None, *, model_uuid: str | None = None) -> CargoBatchResult:
    """Run ``specs`` (as :meth:`CargoResource.run_batches`, with the step's ``settings``, by default the first
    spec's), then re-run the records that failed, up to ``retry_failed`` rounds. ``model_uuid``: a play's model
    (its failed records are re-run by id)."""
    if settings is None:
        settings = specs[0].settings(resource.wait_settings(), resource.credit_breakdown)
    policy = settings.failed_rows
    _check(retry_failed, policy)
    first = resource.run_batches(context, specs, replace(settings, failed_rows="keep"))
    return heal_result(resource, context, first, settings, retry_failed, records=_tool_records(specs),
                       model_uuid=model_uuid, failed_rows=policy)


def heal_result(resource: CargoRunner, context: Any, result: CargoBatchResult, settings: StepSettings,
                retry_failed: int, *, records: Sequence[Mapping[str, Any] | None] | None = None,
                model_uuid: str | None = None, failed_rows: str = "keep", count_result: bool = True,
                ) -> CargoBatchResult:
    """Heal a finished ``result`` (its rows kept, failed ones flagged): up to ``retry_failed`` rounds.

    ``records``: a tool's input aligned with the result's rows (row ``i`` came from ``records[i]``);
    ``model_uuid``: a play's model. ``settings``: the step's settings each retry round runs with (workflow,
    output node, budget: what is left of it). ``failed_rows`` ('keep', 'drop', 'fail') is applied to the merged
    rows. ``count_result``: the result's batches were paid by this step (their credits are part of its total
    and budget).
    """
    _check(retry_failed, failed_rows)
    healer = _Healer(resource, context, result, settings, records, model_uuid, count_result)
    for n in range(1, retry_failed + 1):
        if not healer.run_round(n, retry_failed):
            break
    return healer.finish(failed_rows)


class _Healer:
    """The rounds of one heal: the merged rows (the core's :class:`HealRows`) and what was spent."""

    def __init__(self, resource: CargoRunner, context: Any, result: CargoBatchResult, template: StepSettings,
                 records: Sequence[Mapping[str, Any] | None] | None, model_uuid: str | None,
                 count_result: bool) -> None:
        self.resource, self.context, self.base, self.template = resource, context, result, template
        self.count_result = count_result
        self.rows = HealRows(result.frame, records=records, model_uuid=model_uuid, log=context.log,
                             what=template.what)
        self.rounds: list[CargoBatchResult] = []
        self.spent = result.credits_used if count_result else 0.0

    @property
    def log(self) -> Any:
        return self.context.log

    @property
    def frame(self) -> 'pd.DataFrame':
        return self.rows.frame

    def run_round(self, n: int, of: int) -> bool:
        """Run round ``n``; False when there is nothing (more) to do."""
        positions = self.rows.pending()
        if not positions:
            return False
        r = self.resource
        parts = self.rows.round_data(positions, max_records=r.max_records_per_batch,
                                     max_bytes=r.max_batch_payload_bytes)
        if not parts or not self._affordable(len(positions)):
            return False
        budget = self.template.credit_budget
        left = None if budget is None else max(budget - self.spent, 0.0)
        settings = replace(self.template, credit_budget=left, failed_rows="keep", listed_batches=None)
        specs = [BatchRunSpec(workflow_uuid=settings.workflow_uuid, data=data, attempt_scope=f"heal{n}")
                 for data, _ in parts]
        self.log.info(f"Healing round {n}/{of}: re-running the {len(positions)} records whose run failed, in "
                      f"{len(specs)} new Cargo batch(es) of {self._what()}.")
        result = r.run_batches(self.context, specs, settings)
        self.rounds.append(result)
        self.spent += result.credits_used
        self.rows.merge(result.frame, [p for _, ps in parts for p in ps])
        return True

    def _what(self) -> str:
        return self.template.what

    def _affordable(self, count: int) -> bool:
        budget = self.template.credit_budget
        if budget is None:
            return True
        rows = max(1, self.base.records_count or len(self.base.frame))
        per_record = self.base.credits_used / rows
        estimate = per_record * count
        if self.spent + estimate <= budget:
            return True
        self.log.warning(unaffordable_round(count, self._what(), estimate, per_record, self.spent, budget))
        return False

    # -- the result ----------------------------------------------------------------------------------------
    def _credits(self) -> 'CreditSplit | None':
        results = ([self.base] if self.count_result else []) + self.rounds
        splits = [r.credits for r in results if r.batches]
        if not splits or any(s is None for s in splits):
            return None
        total = splits[0]
        for split in splits[1:]:
            total = total + split  # type: ignore[operator]
        return total

    def heal_metadata(self, frame: 'pd.DataFrame') -> dict[str, Any]:
        still = 0 if STATUS_COLUMN not in frame.columns else int((frame[STATUS_COLUMN] == "error").sum())
        healed = self.rows.healed()
        uuids = ";".join(",".join(b.uuid for b in r.batches) for r in self.rounds)
        return {
            "dagster-cargo/records_healed": dg.MetadataValue.int(healed),
            "dagster-cargo/records_still_failing": dg.MetadataValue.int(still),
            "dagster-cargo/retry_credits": dg.MetadataValue.float(float(round(sum(r.credits_used for r in self.rounds), 6))),
            "dagster-cargo/retry_rounds": dg.MetadataValue.int(len(self.rounds)),
            "dagster-cargo/retry_batch_uuids": dg.MetadataValue.text(uuids),
        }

    def _apply_policy(self, frame: 'pd.DataFrame', policy: str, heal: dict[str, Any]) -> 'pd.DataFrame':
        """The step's one ``failed_rows`` policy (:func:`cargo_gtm.running.apply_failed_rows`) on the merged rows."""
        lead = f"{self._what()}"
        try:
            return apply_failed_rows(frame, policy, lead, self.log,
                                     suffix=f" and still failed after {len(self.rounds)} heal round(s)")
        except CargoStepError as exc:
            raise dg.Failure(description=str(exc), metadata=heal) from exc

    def finish(self, policy: str) -> CargoBatchResult:
        frame = self.frame.reset_index(drop=True)
        heal = self.heal_metadata(frame)
        frame = self._apply_policy(frame, policy, heal)
        batches: list[Batch] = ([*self.base.batches] if self.count_result else []) + [
            b for r in self.rounds for b in r.batches]
        credits = self._credits()
        counts = status_counts(frame)
        t = self.template
        meta = batch_metadata(batches, workflow_uuid=t.workflow_uuid, workflow_name=t.workflow_name,
                              workflow_type=t.workflow_type, output_node_slug=t.output_node_slug,
                              batch_url=self.resource.batch_url(batches[0]) if batches else None,
                              row_count=len(frame), credits=credits, statuses=counts)
        meta = meta.model_copy(update=self._carried())
        extra = {k: v for k, v in self.base.extra_metadata.items()
                 if not k.startswith("dagster-cargo/provider_credits/")}
        if credits is not None and self.resource.credit_breakdown:
            extra.update(credits_by_node_metadata(credits.provider_by_node))
        extra.update(heal)
        if self.rounds:
            self.log.info(f"Healed {heal['dagster-cargo/records_healed'].value} of {len(self.rows.originally_failed)} "
                          f"failed records of {self._what()} in {len(self.rounds)} round(s), for "
                          f"{heal['dagster-cargo/retry_credits'].value:g} credits.")
        return CargoBatchResult(frame=frame, batches=batches, cargo_metadata=meta, extra_metadata=extra,
                                credits=credits, statuses=counts, records_count=len(frame))

    def _carried(self) -> dict[str, Any]:
        """Fields of the first result that ``batch_metadata`` does not compute: wall-clock time (all rounds)
        and the credits left (read again after retries)."""
        results = ([self.base] if self.count_result else []) + self.rounds
        walls = [r.cargo_metadata.wall_clock_seconds for r in results if r.cargo_metadata.wall_clock_seconds]
        out: dict[str, Any] = {"wall_clock_seconds": round(sum(walls), 3) if walls else None}
        remaining = self.base.cargo_metadata.credits_remaining
        if self.rounds and self.resource.credit_breakdown:
            try:
                remaining = self.resource.get_client().get_subscription().credits_remaining
            except CargoError as exc:
                self.log.warning(f"Could not read the Cargo credit balance after the retries: {exc}")
                remaining = None
        out["credits_remaining"] = remaining
        return out


# -- after the fact ----------------------------------------------------------------------------------------------
def _props_for(resource: CargoRunner, workflow_uuid: str) -> Any:
    client = resource.get_client()
    for play in client.list_plays():
        if play.workflow_uuid == workflow_uuid:
            return resource.workflow_props(play, "play")
    for tool in client.list_tools():
        if tool.workflow_uuid == workflow_uuid:
            return resource.workflow_props(tool, "tool")
    raise dg.Failure(description=f"No play or tool of this workspace runs workflow {workflow_uuid} (deleted?): "
                     "its failed records cannot be run again.")


def _failed_inputs(resource: CargoRunner, batch: Batch) -> dict[str, list[dict[str, Any]]]:
    """Record id -> the inputs of the batch's failed runs (``runs/download-outputs``' ``input``)."""
    runs = resource.get_client().download_run_outputs_dataframe(batch.workflow_uuid, batch_uuid=batch.uuid)
    out: dict[str, list[dict[str, Any]]] = {}
    if "_status" not in runs.columns:
        return out
    for _, row in runs.loc[runs["_status"] == "error"].iterrows():
        value = row.get("input")
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("{") else None
        if isinstance(value, dict):
            out.setdefault(str(row.get("_record_id")), []).append(value)
    return out


def _aligned_inputs(frame: 'pd.DataFrame', inputs: dict[str, list[dict[str, Any]]]) -> list[Mapping[str, Any] | None]:
    """The input of each failed row (by record id, the n-th run of a repeated id for its n-th row)."""
    aligned: list[Mapping[str, Any] | None] = [None] * len(frame)
    if "_id" not in frame.columns or STATUS_COLUMN not in frame.columns:
        return aligned
    for p in [int(i) for i in frame.index[frame[STATUS_COLUMN] == "error"]]:
        queue = inputs.get(str(frame["_id"].iat[p]))
        if queue:
            aligned[p] = queue.pop(0)
    return aligned


def heal_batch(resource: CargoRunner, context: Any, batch_uuids: Sequence[str], retry_failed: int = 1, *,
               output_node_slug: str | None = None, credit_budget: float | None = None,
               failed_rows: str = "keep") -> CargoBatchResult:
    """Heal finished batches (chunks of one run, in order) after the fact: up to ``retry_failed`` rounds over
    their failed records. The result holds every row of the batches (each record once, its final status);
    its credits and budget are the retries' only (the batches were paid before). A tool's failed records are
    re-sent as Cargo recorded their input (``runs/download-outputs``, ``input``)."""
    import pandas as pd

    client = resource.get_client()
    batches = [client.get_batch(u) for u in batch_uuids]
    running = [b.uuid for b in batches if not b.is_terminal]
    if running:
        raise dg.Failure(description=f"Cargo batch(es) {', '.join(running)} are not finished: heal them once they "
                         "are (the asset or op that started them waits for them).")
    props = _props_for(resource, batches[0].workflow_uuid)
    frames = [client.download_batch_dataframe(b.uuid, output_node_slug, batch=b) for b in batches]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    records = None
    if props.type == "tool":
        inputs: dict[str, list[dict[str, Any]]] = {}
        for b in batches:
            for rid, found in _failed_inputs(resource, b).items():
                inputs.setdefault(rid, []).extend(found)
        records = _aligned_inputs(frame, inputs)
    base = CargoBatchResult(frame=frame, batches=batches, cargo_metadata=batch_metadata(
        batches, workflow_uuid=props.workflow_uuid, workflow_name=props.name, workflow_type=props.type,
        output_node_slug=output_node_slug, batch_url=None, row_count=len(frame)), records_count=len(frame))
    template = StepSettings(workflow_uuid=props.workflow_uuid, workflow_name=props.name, workflow_type=props.type,
                            output_node_slug=output_node_slug, credit_budget=credit_budget,
                            credit_breakdown=resource.credit_breakdown, wait=resource.wait_settings())
    result = heal_result(resource, context, base, template, retry_failed, records=records,
                         model_uuid=props.model_uuid, failed_rows=failed_rows, count_result=False)
    result.extra_metadata["dagster-cargo/healed_batch_uuids"] = dg.MetadataValue.text(",".join(batch_uuids))
    return result
