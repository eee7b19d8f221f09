"""Single-record runs in Dagster: a tool input of a few records runs as Cargo single runs, not a batch.

:meth:`CargoResource.run_tool` (and every tool asset) routes an input of at most
``single_run_threshold`` records (default 1; 0 disables) here: each record becomes one
``POST /orchestration/runs`` (see :mod:`cargo_gtm.running.single_run`). The result is a
:class:`CargoRunResult`, a :class:`~dagster_cargo.running.execution.CargoBatchResult` with the same DataFrame
(one row per record, ``_status``/``_error_message``), the same credit figures and the same metadata keys,
plus ``dagster-cargo/run_uuid`` and ``dagster-cargo/mode = "single_run"`` (no batch UUID: there is none).

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg
from cargo_gtm.credits import CreditSplit
from cargo_gtm.download.outcomes import ERROR_COLUMN, STATUS_COLUMN
from cargo_gtm.errors import CargoError, CargoNotFoundError, CargoRequestError, CargoWaitTimeoutError
from cargo_gtm.models import Run, RunStatus
from cargo_gtm.running.reconcile import CargoAmbiguousCreateError
from cargo_gtm.running.single_run import (
    RunIntent,
    RunResult,
    cancel_run,
    create_run_once,
    fetch_change_records,
    find_created_run,
    get_run_with_context,
    run_credit_split,
    run_dataframe,
    run_guidance,
    wait_for_run,
)
from cargo_gtm.running.waiting import UNLIMITED, PollingGuidance
from dagster._core.errors import DagsterExecutionInterruptedError

from .attempts import BATCH_PREFIX, attempt_tag_key, run_group
from .execution import CargoBatchResult, credits_remaining_or_none
from .metadata import CargoMetadataSet, credits_by_node_metadata, estimate_metadata, first_failure, status_counts
from .runner import CargoRunner

if TYPE_CHECKING:
    from cargo_gtm import CargoClient
    from cargo_gtm.estimate import CreditEstimate

    from ..definitions.workspace_data import CargoWorkflowProps

__all__ = ["CargoRunResult", "single_run_applies", "run_single", "change_run_config", "RUN_PREFIX",
           "RUN_INTENT_PREFIX", "MODE_KEY", "RUN_UUID_KEY"]

RUN_PREFIX = "dagster-cargo/run."
RUN_INTENT_PREFIX = "dagster-cargo/run_intent."
RUN_CANDIDATES_PREFIX = "dagster-cargo/run_candidates."
MODE_KEY = "dagster-cargo/mode"
RUN_UUID_KEY = "dagster-cargo/run_uuid"
_USABLE = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.IDLE, RunStatus.SUCCESS)


@dataclass
class CargoRunResult(CargoBatchResult):
    """A :class:`CargoBatchResult` made by single runs (``batches`` is empty; ``runs`` holds them)."""

    runs: list[Run] = field(default_factory=list)

    @property
    def run_uuid(self) -> str | None:
        return self.runs[0].uuid if self.runs else None

    @property
    def credits_used(self) -> float:
        return self.credits.total if self.credits is not None else 0.0

    @property
    def runs_count(self) -> int:
        return len(self.runs)

    @property
    def executed_runs_count(self) -> int:
        return sum(1 for r in self.runs if r.status in (RunStatus.SUCCESS, RunStatus.ERROR))

    @property
    def failed_runs_count(self) -> int:
        return sum(1 for r in self.runs if r.status == RunStatus.ERROR)

    @property
    def succeeded_runs_count(self) -> int:
        return sum(1 for r in self.runs if r.status == RunStatus.SUCCESS)


def single_run_applies(props: CargoWorkflowProps, data: Mapping[str, Any], threshold: int) -> bool:
    """Whether ``data`` runs as single runs: a tool, ``records`` input of 1 to ``threshold`` records."""
    records = data.get("records") if data.get("kind") == "records" else None
    return props.type == "tool" and isinstance(records, list) and 0 < len(records) <= threshold


# -- run tags (exactly once across attempts) ---------------------------------------------
def _tag_key(context: Any, workflow_uuid: str, record: Mapping[str, Any], index: int) -> str | None:
    key = attempt_tag_key(context, workflow_uuid, {"single_run": dict(record), "index": index})
    return None if key is None else RUN_PREFIX + key[len(BATCH_PREFIX):]


def _sub_key(prefix: str, key: str) -> str:
    return prefix + key[len(RUN_PREFIX):]


def _tag(context: Any, tags: Mapping[str, str]) -> None:
    context.instance.add_run_tags(context.run.run_id, dict(tags))


def _earlier_run(context: Any, client: CargoClient, key: str, group: list[dg.DagsterRun]) -> Run | None:
    """The run an earlier attempt recorded under ``key``, if pending, running or succeeded."""
    for uuid in dict.fromkeys(r.tags[key] for r in group if r.tags.get(key)):
        try:
            run = get_run_with_context(client, uuid).run
        except CargoNotFoundError:
            continue
        except CargoError as exc:
            raise dg.Failure(description=(
                f"An earlier attempt of this step created Cargo run {uuid}, but it could not be read now: {exc}. "
                "Creating another could pay twice for the same record, so this step stops. Next step: re-execute "
                "once Cargo answers again (the step then attaches to that run); to pay for a new run on purpose, "
                "launch a new run instead of a re-execution."), metadata={RUN_UUID_KEY: uuid}) from exc
        if run.status in _USABLE or not run.status.is_known:
            return run
        context.log.info(f"Earlier Cargo run {uuid} ended {run.status.value}; starting a new one.")
    return None


def _from_intents(context: Any, client: CargoClient, key: str, group: list[dg.DagsterRun],
                  record: Mapping[str, Any]) -> Run | None:
    """Resolve intents recorded without a run (the process died around the create) by content."""
    known = {r.tags[key] for r in group if r.tags.get(key)}
    texts = dict.fromkeys(r.tags[_sub_key(RUN_INTENT_PREFIX, key)] for r in group
                          if r.tags.get(_sub_key(RUN_INTENT_PREFIX, key)))
    for text in texts:
        intent = RunIntent.from_json(text)
        context.log.info(f"An earlier attempt of this step sent a single-run create at {intent.sent_at} and "
                         "recorded no run; checking Cargo's runs created since for one holding this record.")
        try:
            run = find_created_run(client, record, intent, claimed=lambda: known)
        except CargoAmbiguousCreateError as exc:
            _tag(context, {_sub_key(RUN_CANDIDATES_PREFIX, key): ",".join(exc.candidates)})
            raise dg.Failure(description=str(exc), metadata={"dagster-cargo/candidate_runs": ", ".join(
                exc.candidates)}) from exc
        if run is not None:
            _tag(context, {key: run.uuid})
            if run.status in _USABLE:
                return run
    return None


def _start(context: Any, client: CargoClient, workflow_uuid: str, record: Mapping[str, Any], index: int,
           made: set[str]) -> Run:
    """Attach to this record's run from an earlier attempt, or create it exactly once."""
    key = _tag_key(context, workflow_uuid, record, index)
    if key is not None:
        group = run_group(context.instance, context.run)
        earlier = _earlier_run(context, client, key, group) or _from_intents(context, client, key, group, record)
        if earlier is not None:
            context.log.info(f"Attaching to Cargo run {earlier.uuid} ({earlier.status.value}), created by an "
                             "earlier attempt of this step, instead of starting a new one.")
            return earlier

    def on_intent(intent: RunIntent) -> None:
        if key is not None:
            _tag(context, {_sub_key(RUN_INTENT_PREFIX, key): intent.to_json()})

    try:
        run = create_run_once(client, workflow_uuid, record, on_intent=on_intent, claimed=made.copy)
    except CargoAmbiguousCreateError as exc:
        if key is not None and exc.candidates:
            _tag(context, {_sub_key(RUN_CANDIDATES_PREFIX, key): ",".join(exc.candidates)})
        raise
    if key is not None:
        _tag(context, {key: run.uuid})
    return run


# -- running ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    poll_interval: float
    max_poll_interval: float
    poll_timeout: float | None
    cancel_on_termination: bool
    credit_breakdown: bool
    failed_rows: str
    guidance: PollingGuidance

    @classmethod
    def of(cls, cargo: CargoRunner) -> _Settings:
        batch = PollingGuidance(average_interval=cargo.poll_average_interval) \
            if cargo.poll_average_interval > 0 else UNLIMITED
        return cls(cargo.poll_interval, cargo.max_poll_interval, cargo.poll_timeout, cargo.cancel_on_termination,
                   cargo.credit_breakdown, cargo.failed_rows, run_guidance(batch))


def _cancel(client: CargoClient, runs: Sequence[Run], log: Any, why: str) -> None:
    for run in runs:
        try:
            cancel_run(client, run)
            log.warning(f"Cancelled Cargo run {run.uuid} because {why}.")
        except CargoError as exc:
            log.warning(f"Could not cancel Cargo run {run.uuid} after {why}: {exc}. Cancel it in Cargo if it is "
                        "still running.")


def _wait_all(context: Any, client: CargoClient, runs: list[Run], s: _Settings) -> list[RunResult]:
    """Every run to its end (they run concurrently in Cargo; waited for in turn), cancelled on a stop."""
    results: list[RunResult] = []
    try:
        for run in runs:
            results.append(wait_for_run(client, run.uuid, timeout=s.poll_timeout, poll_interval=s.poll_interval,
                                        max_poll_interval=s.max_poll_interval, guidance=s.guidance))
    except (DagsterExecutionInterruptedError, KeyboardInterrupt):
        if s.cancel_on_termination:
            _cancel(client, runs[len(results):], context.log, "the Dagster run was terminated")
        raise
    except CargoWaitTimeoutError as exc:
        _cancel(client, runs[len(results):], context.log, f"it did not finish within {s.poll_timeout:g}s")
        raise dg.Failure(description=(
            f"Cargo run {exc.batch_uuid} was not finished after {s.poll_timeout:g}s (last status: {exc.last_status}). "
            "Next step: raise the resource's poll_timeout, or look at the run in Cargo."),
            metadata={RUN_UUID_KEY: exc.batch_uuid}) from exc
    return results


def _apply_failed_rows(context: Any, frame: Any, policy: str, uuids: str) -> Any:
    failed = int((frame[STATUS_COLUMN] == "error").sum())
    if not failed:
        return frame
    example = first_failure(frame, ERROR_COLUMN)  # named by its input (domain, title), not Cargo's record id
    what = f"Cargo run(s) {uuids}: {failed} of {len(frame)} input records failed{example}"
    if policy == "fail":
        raise dg.Failure(description=f"{what}. The step fails because failed_rows='fail'. Next step: fix the input "
                         "or the tool and re-run, or use failed_rows='keep' to get them flagged in the output.",
                         metadata={RUN_UUID_KEY: uuids, "dagster-cargo/failed_rows": failed})
    if policy == "drop":
        context.log.warning(f"{what}; their rows were dropped (failed_rows='drop').")
        return frame.loc[frame[STATUS_COLUMN] != "error"].reset_index(drop=True)
    context.log.warning(f"{what}; their rows are kept with {STATUS_COLUMN}='error' and the reason in {ERROR_COLUMN}.")
    return frame


def _metadata(props: CargoWorkflowProps, runs: list[Run], slug: str | None, counts: Mapping[str, int],
              credits: CreditSplit, remaining: float | None) -> CargoMetadataSet:
    durations = [(r.finished_at - r.created_at).total_seconds() for r in runs if r.finished_at and r.created_at]
    statuses = sorted({r.status.value for r in runs})
    succeeded = counts.get("success", 0)
    return CargoMetadataSet(
        batch_status=",".join(statuses), workflow_uuid=props.workflow_uuid, workflow_name=props.name,
        workflow_type=props.type, output_node_slug=slug, runs_count=len(runs),
        executed_runs_count=sum(1 for r in runs if r.status in (RunStatus.SUCCESS, RunStatus.ERROR)),
        failed_runs_count=sum(1 for r in runs if r.status == RunStatus.ERROR),
        input_records=sum(counts.values()), failed_rows=counts.get("error", 0),
        skipped_rows=counts.get("skipped", 0), filtered_rows=counts.get("filtered", 0),
        credits_used=round(credits.total, 6), provider_credits=round(credits.provider, 6),
        execution_charge=credits.execution_charge, node_executions=credits.executions,
        credits_per_record=round(credits.total / succeeded, 6) if succeeded else None,
        credits_remaining=remaining, cargo_duration_seconds=max(durations) if durations else None,
    )



def _result(context: Any, client: CargoClient, props: CargoWorkflowProps, records: Sequence[Mapping[str, Any]],
            results: list[RunResult], slug: str | None, s: _Settings) -> CargoRunResult:
    import pandas as pd

    releases: dict[str, list[Any]] = {}
    frames, credits = [], CreditSplit(0.0, 0)
    for record, result in zip(records, results):
        release = result.run.release_uuid or ""
        if release and release not in releases:
            releases[release] = list(client.get_release(release).nodes)
        nodes = releases.get(release, [])
        frames.append(run_dataframe(result, record, nodes=nodes, output_node_slug=slug))
        credits = credits + run_credit_split(result.run, nodes)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    runs = [r.run for r in results]
    uuids = ",".join(r.uuid for r in runs)
    counts = status_counts(frame)
    frame = _apply_failed_rows(context, frame, s.failed_rows, uuids)
    remaining = credits_remaining_or_none(client, context.log) if s.credit_breakdown else None
    meta = _metadata(props, runs, slug, counts, credits, remaining)
    extra: dict[str, Any] = {RUN_UUID_KEY: uuids, MODE_KEY: "single_run"}
    if s.credit_breakdown:
        extra.update(credits_by_node_metadata(credits.provider_by_node))
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    context.log.info(f"Cargo single run(s) {uuids} of tool {props.name!r}: {len(records)} record(s) ({summary}), "
                     f"{credits.total:g} credits ({credits.provider:g} provider + {credits.execution_charge:.2f} "
                     f"execution charge for {credits.executions} node executions).")
    return CargoRunResult(frame=frame, batches=[], cargo_metadata=meta, extra_metadata=extra, credits=credits,
                          statuses=counts, records_count=len(records), runs=runs)


def _budget_check(result: CargoRunResult, budget: float | None) -> None:
    if budget is None or result.credits_used <= budget:
        return
    raise dg.Failure(description=(
        f"Cargo run(s) {result.extra_metadata[RUN_UUID_KEY]} used {result.credits_used:g} credits, over this asset's "
        f"budget of {budget:g}; the runs finished before they could be stopped, so their output is not returned. "
        "Next step: raise credit_budget (run config, credit_budget= or the resource's max_credits_per_batch) if "
        "this cost is expected."), metadata={RUN_UUID_KEY: result.extra_metadata[RUN_UUID_KEY],
                                             "dagster-cargo/credits_used": result.credits_used,
                                             "dagster-cargo/credit_budget": float(budget)})


def _tag_runs(context: Any, runs: list[Run]) -> None:
    """Readable run tag ``dagster-cargo/run_uuid.<op>`` (best effort, as batches' ``batch_uuid.<op>``)."""
    try:
        _tag(context, {f"{RUN_UUID_KEY}.{context.op_def.name}": ",".join(r.uuid for r in runs)})
    except Exception:  # noqa: S110 - outside a run there is nothing to tag
        pass


def run_single(cargo: CargoRunner, context: Any, props: CargoWorkflowProps, data: Mapping[str, Any], *,
               output_node_slug: str | None = None, credit_budget: float | None = None,
               estimate: CreditEstimate | None = None) -> CargoRunResult | None:
    """Run each record of ``data`` (``records`` of a tool) as a Cargo single run; ``None`` when Cargo refuses
    single runs for this workflow (``playNotCompatible``, nothing created): the caller runs a batch instead."""
    client = cargo.get_client()
    started = client.clock.monotonic()
    settings = _Settings.of(cargo)
    records = [dict(r) for r in data["records"]]
    runs: list[Run] = []
    made: set[str] = set()
    client.busy_report = getattr(getattr(context, "log", None), "warning", None)
    try:
        for i, record in enumerate(records):
            runs.append(_start(context, client, props.workflow_uuid, record, i, made))
            made.add(runs[-1].uuid)
    except CargoRequestError as exc:
        if exc.reason != "playNotCompatible" or runs:
            raise
        context.log.info(f"Cargo refuses single runs for {props.name!r} (playNotCompatible): running a batch instead.")
        return None
    except (DagsterExecutionInterruptedError, KeyboardInterrupt, CargoError):
        _cancel(client, runs, context.log, "the step stopped before every run was created")
        raise
    finally:
        client.busy_report = None
    context.log.info(f"Cargo single run(s) {', '.join(r.uuid for r in runs)} of tool {props.name!r} started "
                     f"({len(records)} record(s), at most single_run_threshold={cargo.single_run_threshold}).")
    _tag_runs(context, runs)
    result = _result(context, client, props, records, _wait_all(context, client, runs, settings),
                     output_node_slug, settings)
    _budget_check(result, credit_budget)
    result.cargo_metadata = result.cargo_metadata.model_copy(
        update={"wall_clock_seconds": round(client.clock.monotonic() - started, 3)})
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
