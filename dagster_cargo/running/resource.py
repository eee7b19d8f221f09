"""``CargoResource``: the Dagster resource wrapping :class:`~cargo_gtm.CargoClient`."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
from cargo_gtm import DEFAULT_BASE_URL, BusyPolicy, CargoClient, RetryPolicy
from cargo_gtm.download import restore_caller_columns
from cargo_gtm.errors import CargoError, CargoInputError, CargoNotFoundError, CargoStepError
from cargo_gtm.estimate import CreditEstimate, recent_materializations, try_estimate
from cargo_gtm.inputs import chunk_records, play_input, records_data, to_json_records
from cargo_gtm.models import Batch, Play, Release, Tool
from cargo_gtm.running import (
    UNLIMITED,
    Clock,
    PollingGuidance,
    StepSettings,
    WaitSettings,
    estimate_error,
    no_estimate,
    run_ramped,
    tighter_budget,
)
from dagster._config.field_utils import IntEnvVar
from pydantic import Field, PrivateAttr, field_validator

from ..definitions.workspace_data import CargoWorkflowProps, props_from
from .attempts import (
    attempt_tag_key,
    find_reusable_batches,
    intent_tag_key,
    run_group,
)
from .execution import BatchRunSpec, CargoBatchResult, execute_batches, step_failure
from .input_checks import check_output_node_slug, check_play_arguments, check_run_input, report_unknown_record_ids
from .metadata import estimate_metadata, with_output_node
from .ramp_rounds import play_ramps, ramped_before, run_play_ramped
from .settings import check_setting, defer_unset_env_fields, deferred_value
from .single_run import run_single, single_run_applies
from .unreported import resume_for_this_step

__all__ = ["CargoResource", "CargoTokenExposureWarning"]

_warned_literal_token = False


class CargoTokenExposureWarning(UserWarning):
    """``CargoResource(api_token=...)`` was given the token itself rather than ``dg.EnvVar``."""


def _built_by_dagster() -> bool:
    """Whether Dagster itself is re-creating the resource from resolved config (at run start, or
    in ``process_config_and_initialize``): then the user's own object held an EnvVar, not a literal."""
    caller = sys._getframe(2).f_code.co_filename.replace("\\", "/")  # the caller of __init__
    return "/dagster/_config/pythonic_config/" in caller


def _warn_literal_token() -> None:
    global _warned_literal_token
    if _warned_literal_token:
        return
    _warned_literal_token = True
    warnings.warn(
        "CargoResource(api_token=...) was given the token itself, not dg.EnvVar('CARGO_API_TOKEN'). "
        "Dagster keeps resource config as it is given: the token will be visible on the UI's resource "
        "page and in the launchpad's default config, and stored in every job snapshot in the instance "
        "database. Pass api_token=dg.EnvVar('CARGO_API_TOKEN') so that only the variable's name is shown.",
        CargoTokenExposureWarning,
        stacklevel=3,
    )

DEFAULT_BATCH_URL_TEMPLATE = "https://app.getcargo.io/workspaces/{workspace_uuid}/workflows/{workflow_uuid}/batches/{batch_uuid}"


class CargoResource(dg.ConfigurableResource):
    """Connects Dagster to a Cargo workspace.

    Example:

    ```python
    import dagster as dg
    from dagster_cargo import CargoResource

    @dg.asset(kinds={"cargo"})
    def scored_companies(context: dg.AssetExecutionContext, cargo: CargoResource):
        result = cargo.run_play(context, "Score inbound companies", limit=100)
        return result.materialize_result()

    defs = dg.Definitions(
        assets=[scored_companies],
        resources={"cargo": CargoResource(api_token=dg.EnvVar("CARGO_API_TOKEN"))},
    )
    ```
    """

    api_token: str = Field(
        description="Cargo API token (Settings → API Tokens). Pass dg.EnvVar('CARGO_API_TOKEN'); "
        "it is never logged or stored in metadata.",
    )
    workspace_uuid: str | None = Field(
        default=None,
        description="Workspace to act on, sent as the selected-workspace-uuid header. "
        "Optional for workspace-scoped API tokens. Given as dg.EnvVar, an unset variable leaves it unset "
        "(as for base_url, batch_url_template and max_credits_per_batch: their defaults apply).",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="Cargo API host; '/v1' is appended. Point it at the emulator for local runs.",
    )
    batch_url_template: str | None = Field(
        default=None,
        description="Link to a batch, with {workspace_uuid}, {workflow_uuid} and {batch_uuid} placeholders "
        "(recorded as dagster-cargo/batch_url). Default: Cargo's web app when base_url is Cargo's API "
        "host (api.getcargo.io); no link for other hosts, e.g. the emulator, which has no web app.",
    )
    request_timeout: float = Field(default=60.0, description="Per-request read timeout, seconds.")
    connect_timeout: float = Field(default=10.0, description="TCP connect timeout, seconds.")
    max_retries: int = Field(
        default=4,
        description="Retries of transient failures (timeouts, connection errors, 429, 5xx) on calls "
        "that are safe to repeat. Batch creation is never retried after an ambiguous failure.",
    )
    retry_max_elapsed: float = Field(default=120.0, description="Give up retrying a call after this many seconds.")
    poll_interval: float = Field(default=1.0, description="First and minimum batch poll interval, seconds.")
    max_poll_interval: float = Field(
        default=30.0,
        description="Longest interval between polls of a long batch, seconds. The next poll is planned "
        "from the batch's progress (at half the estimated time left), so a long cap costs no latency at the end; "
        "it bounds how late the credit budget and progress logs are checked.",
    )
    poll_average_interval: float = Field(
        default=5.0,
        description="Cargo's polling guidance: each batch is polled on average no more than once per this many "
        "seconds since the wait began, and a batch of 1,000+ records at most every 10 s after the first minute. "
        "The adaptive schedule spends the requests it saves early near the batch's expected end. 0 lifts both limits.",
    )
    poll_timeout: float = Field(
        default=3600.0,
        description="Cancel the batch and fail if it is not finished after this many seconds.",
    )
    cancel_on_termination: bool = Field(
        default=True,
        description="Cancel the Cargo batch when the Dagster run is terminated. Turn off if batches "
        "should finish even when the run worker is killed (e.g. autoscaling).",
    )
    concurrency_wait: float = Field(
        default=900.0,
        description="When Cargo refuses a batch create with concurrencyLimitReached (the workspace runs as much "
        "as it allows; nothing was created), wait and send it again (5 s, doubling to 60 s), each wait in the run "
        "log, for at most this many seconds in all; then fail with what to do. 0 fails at once.",
    )
    progress_log_interval: float = Field(
        default=30.0, description="Log batch progress to the run log at most this often, seconds."
    )
    max_records_per_batch: int = Field(
        default=5000,
        description="A tool input larger than this is split into several batches (chunks), run in parallel.",
    )
    max_batch_payload_bytes: int = Field(
        default=8 * 1024 * 1024,
        description="Split tool input so each create request stays under this many bytes of JSON (Cargo's "
        "ingress limit is not documented; its official client avoids bodies near 50 MiB).",
    )
    max_input_records: int = Field(
        default=1_000_000,
        description="Refuse, before any credit is spent, a tool input with more records than this.",
    )
    max_credits_per_batch: float | None = Field(
        default=None,
        description="Credit cap of every step (its batches or single runs together): a step that exceeds it is "
        "cancelled and the asset fails with the figures. A per-call credit_budget= applies too: the tighter of "
        "the two limits wins.",
    )
    estimate_credits: bool = Field(
        default=True,
        description="Before creating a batch, estimate its credits (records × credits per record from recent "
        "materializations or batches + execution charge; a few read calls), log it and record it beside the "
        "actual cost. With a budget (credit_budget / max_credits_per_batch) the estimate is always made, and a "
        "batch estimated over the budget is not created.",
    )
    failed_rows: str = Field(
        default="keep",
        description="Rows of input records whose run failed: 'keep' them, flagged with _status='error' and "
        "_error_message (every input record accounted for); 'drop' them; or 'fail' the step.",
    )
    credit_breakdown: bool = Field(
        default=True,
        description="After each batch, record credits per workflow node (runs/metrics) and the credits "
        "left in the subscription (3 extra API calls; billing needs an admin token).",
    )
    single_run_threshold: int = Field(
        default=1,
        description="A tool input of at most this many records runs as Cargo single runs (POST /orchestration/runs, "
        "one per record; faster to a result than a batch) instead of a batch; 0 disables. Plays always run as "
        "batches. Keep it small: Cargo's ramp advice is 1 record, then 50, then 500, and a batch serves many records "
        "with one create and one download (see the README, 'Single-record runs').",
    )
    resume_unreported: bool = Field(
        default=False,
        description="When a new materialization finds a batch of the same step and input that earlier failed runs "
        "paid for and no materialization reported (still running or succeeded), adopt it instead of paying for a "
        "new one. Off by default: a new run is a new request. The most specific setting wins: a materialization's "
        "run config resume_unreported (or run_tool(..., resume_unreported=)), then the run tag "
        "dagster-cargo/resume_unreported=true|false, then this field.",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="Allow plain http:// to a non-loopback host (the token would travel in clear text).",
    )

    _client: CargoClient | None = PrivateAttr(default=None)
    _clock: Clock | None = PrivateAttr(default=None)
    #: optional fields given as a dg.EnvVar unset when built: field → variable, read when used (see .settings)
    _deferred_env: dict[str, str] = PrivateAttr(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        deferred = defer_unset_env_fields(data)  # read again when the resource is used, not pinned to defaults
        token = data.get("api_token")
        if isinstance(token, str) and not isinstance(token, dg.EnvVar) and token and not _built_by_dagster():
            _warn_literal_token()
        super().__init__(**data)
        self._deferred_env = deferred

    @field_validator("base_url", "poll_timeout", "single_run_threshold", "max_credits_per_batch", mode="before")
    @classmethod
    def _checked(cls, value: Any, info: Any) -> Any:
        """Refuse, when the resource is built, settings that could only cost credits (see .settings)."""
        try:
            return check_setting(info.field_name, value)
        except CargoError as exc:
            raise ValueError(str(exc)) from None

    def with_clock(self, clock: Clock | None) -> CargoResource:
        """This resource, with every wait (polling, retries, downloads, busy waits, reconcile delays) and
        the wall-clock figure going through ``clock``: a
        :class:`~cargo_gtm.running.clock.ManualClock` in tests. Not config: Dagster's copies of the
        resource at run start keep it. Returns ``self``."""
        self.close()
        self._clock = clock
        return self

    def _with_updated_values(self, values: Mapping[str, Any] | None) -> Any:
        """Dagster's run-time copy of the resource (config resolved) keeps the injected clock."""
        out = super()._with_updated_values(values)
        out._clock = self._clock
        fields, given = type(self).model_fields, values or {}
        # still deferred unless the run's config gives the field a value of its own (e.g. the launchpad)
        out._deferred_env = {k: v for k, v in self._deferred_env.items()
                             if given.get(k, fields[k].default) == fields[k].default}
        return out

    def _setting(self, name: str) -> Any:
        """A field's value; an ``EnvVar`` read from the environment when the resource is used
        outside a run (inside a run, Dagster has already resolved it)."""
        value = getattr(self, name)
        if name in self._deferred_env:  # an EnvVar unset when the resource was built: read it now
            read = deferred_value(name, self._deferred_env[name])
            return value if read is None else read
        if isinstance(value, (dg.EnvVar, IntEnvVar)):
            resolved = value.get_value()
            if resolved is None and name == "api_token":
                raise CargoInputError(
                    f"CargoResource.api_token is dg.EnvVar({value.env_var_name!r}), which is not set in this "
                    f"process. Next step: export {value.env_var_name}=<your Cargo API token> and try again."
                )
            return resolved
        return value

    def __repr_args__(self) -> Any:  # never show the token in reprs, logs or tracebacks
        for name, value in super().__repr_args__():
            yield name, ("***" if name == "api_token" and value else value)

    def get_client(self) -> CargoClient:
        """The (cached) :class:`CargoClient` for this resource's configuration.

        Works in runs and outside them (scripts, notebooks): ``dg.EnvVar`` fields are read from
        the environment with :meth:`dagster.EnvVar.get_value`. Close it with :meth:`close`
        (or use the resource as a context manager) when done.
        """
        if self._client is None:
            clock: dict[str, Any] = {"clock": self._clock} if self._clock is not None else {}
            self._client = CargoClient(
                api_token=self._setting("api_token"),
                workspace_uuid=self._setting("workspace_uuid"),
                base_url=self._setting("base_url"),
                timeout=self.request_timeout,
                connect_timeout=self.connect_timeout,
                retry=RetryPolicy(max_attempts=self.max_retries + 1, max_elapsed=self.retry_max_elapsed),
                allow_insecure_http=self.allow_insecure_http,
                busy=BusyPolicy(max_wait=self.concurrency_wait),
                **clock,
            )
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        """Close the cached client (its HTTP connections); it is re-created on next use."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> CargoResource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch_url(self, batch: Batch) -> str | None:
        """Link to ``batch`` in Cargo's web app (``None`` when there is no web app to link to)."""
        template = self._setting("batch_url_template")
        if template is None:
            host = urlsplit(self._setting("base_url") or "").hostname or ""
            if host != "getcargo.io" and not host.endswith(".getcargo.io"):
                return None
            template = DEFAULT_BATCH_URL_TEMPLATE
        return str(template).format(
            workspace_uuid=batch.workspace_uuid or self._setting("workspace_uuid") or "",
            workflow_uuid=batch.workflow_uuid,
            batch_uuid=batch.uuid,
        )

    # -- running batches -----------------------------------------------------------------
    def run_batch(self, context: Any, spec: BatchRunSpec) -> CargoBatchResult:
        """Run ``spec`` to completion and return its outputs and metadata."""
        return self.run_batches(context, [spec])

    def run_batches(self, context: Any, specs: list[BatchRunSpec],
                    settings: StepSettings | None = None) -> CargoBatchResult:
        """Run several batches of one workflow together (one polling loop) as one result.

        ``settings``: the step's settings (budget, failed_rows, …), by default those of the first spec. The
        result's metadata carries ``dagster-cargo/wall_clock_seconds`` (this call, create to outputs
        downloaded) beside ``cargo_duration_seconds`` (Cargo's own createdAt → finishedAt).
        """
        client = self.get_client()
        client.busy_report = getattr(getattr(context, "log", None), "warning", None)  # waits, in the run log
        try:
            result = execute_batches(context, client, specs, batch_url_for=self.batch_url,
                                     poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval,
                                     poll_timeout=self.poll_timeout, cancel_on_termination=self.cancel_on_termination,
                                     progress_log_interval=self.progress_log_interval,
                                     credit_breakdown=self.credit_breakdown, guidance=self.wait_settings().guidance,
                                     settings=settings, resume_unreported=self.resume_unreported)
        finally:
            client.busy_report = None
        if result.batches:
            self._tag_run(context, result.batches, specs[0].attempt_scope if specs else None)
        return result

    def wait_settings(self) -> WaitSettings:
        """How this resource's steps wait (polling, timeout, termination, log cadence)."""
        guidance = PollingGuidance(average_interval=self.poll_average_interval) if self.poll_average_interval > 0 \
            else UNLIMITED
        return WaitSettings(poll_interval=self.poll_interval, max_poll_interval=self.max_poll_interval,
                            poll_timeout=self.poll_timeout, cancel_on_stop=self.cancel_on_termination,
                            progress_log_interval=self.progress_log_interval, guidance=guidance)

    def _tag_run(self, context: Any, batches: list[Batch], scope: str | None = None) -> None:
        """Readable run tags: ``dagster-cargo/batch_uuid.<op>`` (the batch UUIDs) and, where Cargo has
        a web app, ``dagster-cargo/batch_url.<op>`` (``<op>.<scope>`` for a scoped batch, e.g. a heal round).
        Best effort: outside a run there is nothing to tag."""
        try:
            instance, run_id, op_name = context.instance, context.run_id, context.op_def.name
        except Exception:
            return
        op_name = f"{op_name}.{scope}" if scope else op_name
        tags = {f"dagster-cargo/batch_uuid.{op_name}": ",".join(b.uuid for b in batches)}
        url = self.batch_url(batches[0])
        if url:
            tags[f"dagster-cargo/batch_url.{op_name}"] = url
        try:
            instance.add_run_tags(run_id, tags)
        except Exception as exc:  # reporting only: never fail the step over a tag
            context.log.debug(f"Could not tag the run with its Cargo batch: {exc}")

    def run_play(
        self,
        context: Any,
        play: str | Play | CargoWorkflowProps,
        *,
        data: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None,
        limit: int | None = None,
        output_node_slug: str | None = None,
        credit_budget: float | None = None,
        retry_failed: int = 0,
        resume_unreported: bool | None = None,
    ) -> CargoBatchResult:
        """Run a play (by name, UUID, :class:`Play` or workspace props) and return its outputs.

        Without ``data``, the play runs over its model's records matching ``filter``
        (all records when no filter), capped by ``limit``: Cargo's recommended
        ``{"kind": "filter"}`` input. Pass ``data`` for segment, change or recordIds input.
        ``resume_unreported``: see :meth:`run_workflow`.
        """
        props = self.workflow_props(play, "play")
        check_play_arguments(data, filter, limit, props.name)
        if data is None:
            data = play_input(props.model_uuid, filter=filter, limit=limit, play_name=props.name)
        return self.run_workflow(context, props, data, output_node_slug=output_node_slug, credit_budget=credit_budget,
                                 retry_failed=retry_failed, resume_unreported=resume_unreported)

    def run_tool(
        self,
        context: Any,
        tool: str | Tool | CargoWorkflowProps,
        records: Any,
        *,
        output_node_slug: str | None = None,
        credit_budget: float | None = None,
        retry_failed: int = 0,
        resume_unreported: bool | None = None,
    ) -> CargoBatchResult:
        """Run a tool over ``records`` (a DataFrame or an iterable of dicts).

        Values are sent as JSON, exactly (NaN/NaT → null, Timestamps → ISO strings, numpy scalars → numbers; a
        value JSON cannot carry exactly is refused before anything is created). The output's input columns hold
        the DataFrame's own values and dtypes, not their JSON form. Empty input creates no batch and spends no
        credit. ``resume_unreported``: see :meth:`run_workflow`.
        """
        props = self.workflow_props(tool, "tool")
        rows = to_json_records(records)
        columns = tuple(str(c) for c in getattr(records, "columns", ()))
        if not columns and rows:
            columns = tuple(rows[0])
        result = self.run_workflow(
            context, props, records_data(rows), output_node_slug=output_node_slug, empty_columns=columns,
            credit_budget=credit_budget, retry_failed=retry_failed, resume_unreported=resume_unreported,
        )
        result.frame = restore_caller_columns(result.frame, rows)
        return result

    def run_workflow(
        self,
        context: Any,
        props: CargoWorkflowProps,
        data: Mapping[str, Any],
        *,
        output_node_slug: str | None = None,
        empty_columns: tuple[str, ...] = (),
        credit_budget: float | None = None,
        retry_failed: int = 0,
        resume_unreported: bool | None = None,
    ) -> CargoBatchResult:
        """Run the play or tool described by ``props`` on ``data`` (checked locally first).

        ``credit_budget`` and the resource's ``max_credits_per_batch``: the tighter of the two cancels the
        step's batches (or single runs) and fails it once they use more credits than that.
        ``retry_failed=N``: re-run the records whose run failed, up to N rounds, paying only for them (see
        :mod:`dagster_cargo.running.heal`).
        ``resume_unreported``: for this call, whether a batch of the same step and input that earlier failed runs
        paid for and nobody reported is adopted (True) or paid for again (False); None (default) leaves it to the
        run tag ``dagster-cargo/resume_unreported``, else to the resource's field (see
        :mod:`dagster_cargo.running.unreported`). A workspace asset's run config passes it here.
        """
        with resume_for_this_step(resume_unreported):
            return self._run_workflow(context, props, data, output_node_slug=output_node_slug,
                                      empty_columns=empty_columns, credit_budget=credit_budget,
                                      retry_failed=retry_failed)

    def _run_workflow(self, context: Any, props: CargoWorkflowProps, data: Mapping[str, Any], *,
                      output_node_slug: str | None, empty_columns: tuple[str, ...], credit_budget: float | None,
                      retry_failed: int) -> CargoBatchResult:
        client = self.get_client()
        budget = tighter_budget(credit_budget, self._setting("max_credits_per_batch"))
        props, release = self._with_deployed_release(client, props, data, budget)
        data = check_run_input(client, props, data)  # before any credit is spent
        release = check_output_node_slug(client, props, output_node_slug, release)
        unknown_ids = report_unknown_record_ids(context, client, props, data)
        parts: list[Mapping[str, Any]] = [data]
        if data.get("kind") == "records" and data.get("records"):
            chunks = chunk_records(data["records"], max_records=self.max_records_per_batch,
                                   max_bytes=self.max_batch_payload_bytes, max_total=self.max_input_records)
            parts = [{"kind": "records", "records": chunk} for chunk in chunks]
            if len(parts) > 1:
                context.log.info(f"{len(data['records'])} records split into {len(parts)} Cargo batches "
                                 f"(at most {self.max_records_per_batch} records / "
                                 f"{self.max_batch_payload_bytes} bytes each).")
        if self.failed_rows not in ("keep", "drop", "fail"):
            raise CargoInputError(f"failed_rows must be 'keep', 'drop' or 'fail', not {self.failed_rows!r}.")
        listed = self._listing(client, props, parts, budget)
        estimate = self._estimate(context, props, parts, budget, listed)
        # the step's settings, once; the output node is Cargo's default (the last executed node) unless the caller
        # names one: a slug looked up now could belong to a release deployed after the batch (see client.outcomes)
        settings = StepSettings(workflow_uuid=props.workflow_uuid, workflow_name=props.name, workflow_type=props.type,
                                output_node_slug=output_node_slug, credit_budget=budget,
                                failed_rows=self.failed_rows,  # type: ignore[arg-type]
                                deployed_release=release, listed_batches=listed, empty_columns=empty_columns,
                                credit_breakdown=self.credit_breakdown, wait=self.wait_settings())
        specs = [BatchRunSpec(workflow_uuid=props.workflow_uuid, data=dict(part)) for part in parts]
        result = self._run_step(context, props, data, specs, settings, retry_failed, estimate)
        if estimate is not None:
            result.extra_metadata.update(estimate_metadata(estimate, result.credits_used if result.units else None))
        result.extra_metadata.update(unknown_ids)
        return self._with_output_node(result, output_node_slug, props, release)

    def _run_step(self, context: Any, props: CargoWorkflowProps, data: Mapping[str, Any], specs: list[BatchRunSpec],
                  settings: StepSettings, retry_failed: int, estimate: CreditEstimate | None) -> CargoBatchResult:
        """The step's one run path, by what it runs: single runs (a few records of a tool), ramp rounds (a
        budget and nothing to estimate from), heal rounds (``retry_failed``), or its batches."""
        if retry_failed:  # healing re-runs failed records as batches, so it keeps batches
            from .heal import heal_batches

            return heal_batches(self, context, specs, retry_failed, settings, model_uuid=props.model_uuid)
        if single_run_applies(props, data, self.single_run_threshold):
            single = run_single(self, context, props, data, settings=settings, estimate=estimate)
            if single is not None:  # None: Cargo refused single runs (nothing created), run a batch
                return single
        budget = settings.credit_budget
        if budget is not None and (self._ramps(data, budget, estimate) or self._ramped_before(context, props, data)):
            return self._run_ramped(context, data, settings)
        if budget is not None and play_ramps(props, data) and (
                estimate is None or estimate.credits is None or ramped_before(context, props, data)):
            ramped = run_play_ramped(self, context, props, data, settings)
            if ramped is not None:  # None: a selection of at most one record runs as the one batch it is
                return ramped
        return self.run_batches(context, specs, settings)

    def _ramps(self, data: Mapping[str, Any], budget: float | None, estimate: CreditEstimate | None) -> bool:
        """Whether a tool input runs in ramp rounds: a budget and nothing to estimate from (see
        :mod:`cargo_gtm.running.ramp`), and more records than a first round."""
        records = data.get("records") if data.get("kind") == "records" else None
        unknown = estimate is None or estimate.credits is None
        return budget is not None and unknown and isinstance(records, list) and len(records) > 1

    @staticmethod
    def _ramped_before(context: Any, props: CargoWorkflowProps, data: Mapping[str, Any]) -> bool:
        """Whether an earlier attempt of this step ran (or began to run) it in ramp rounds: a re-execution then
        ramps again, whatever its estimate says now (the earlier rounds' batches are history to estimate from
        now), so it attaches to each round's batch instead of paying for the input again as one batch."""
        records = data.get("records") if data.get("kind") == "records" else None
        if not isinstance(records, list) or not records:
            return False
        first = {"kind": "records", "records": [records[0]]}  # round 0, as _run_ramped sends it
        key = attempt_tag_key(context, props.workflow_uuid, first, scope="ramp0")
        if key is None:
            return False
        return any(r.tags.get(key) or r.tags.get(intent_tag_key(key)) for r in run_group(context.instance, context.run))

    def _run_ramped(self, context: Any, data: Mapping[str, Any], settings: StepSettings) -> CargoBatchResult:
        """Run a tool input in ramp rounds (1 record, then 50, then 500, each sized to what is left of the
        budget), each round a step of the one run path under its own attempt scope (``ramp<n>``)."""
        def run_round(records: list[Mapping[str, Any]], round_settings: StepSettings, n: int) -> CargoBatchResult:
            chunks = chunk_records(records, max_records=self.max_records_per_batch,
                                   max_bytes=self.max_batch_payload_bytes)
            specs = [BatchRunSpec(workflow_uuid=settings.workflow_uuid, data={"kind": "records", "records": list(c)},
                                  attempt_scope=f"ramp{n}") for c in chunks]
            return self.run_batches(context, specs, replace(round_settings, listed_batches=None) if n else
                                    round_settings)

        context.log.info(f"No credit estimate for Cargo {settings.what} and a budget of {settings.credit_budget:g}: "
                         "running it in rounds (1 record, then up to 50, then 500), each sized to what is left of "
                         "the budget.")
        try:
            records = list(data["records"])  # after 1, 50 and 500, a round is what fits, in batches run at once
            merged = run_ramped(records, settings, run_round, max_round=len(records), log=context.log)
        except CargoStepError as exc:
            raise step_failure(exc) from exc
        return CargoBatchResult.from_step(merged, self.batch_url(merged.batches[0]) if merged.batches else None)

    @staticmethod
    def _with_output_node(result: Any, named: str | None, props: CargoWorkflowProps, release: Release | None) -> Any:
        """``result`` with ``dagster-cargo/output_node_slug`` (see :func:`.metadata.with_output_node`)."""
        ran = result.batches or getattr(result, "runs", None) or []
        result.cargo_metadata = with_output_node(result.cargo_metadata, ran, named, release,
                                                 props.output_node_slug, props.release_uuid)
        return result

    def _estimating(self, parts: list[Mapping[str, Any]], budget: float | None) -> bool:
        """Whether the batches' credits are estimated before they are created."""
        empty = all(p.get("kind") == "records" and not p.get("records") for p in parts)
        return (self.estimate_credits or budget is not None) and not empty

    def _with_deployed_release(self, client: CargoClient, props: CargoWorkflowProps, data: Mapping[str, Any],
                               budget: float | None) -> tuple[CargoWorkflowProps, Release | None]:
        """Read the deployed release once, when the input checks (a tool's required form fields) or the
        estimate (its node count) need it and ``props`` (a workspace snapshot) does not have it; ``props``
        completed with it. Its node slugs also name the per-node credits later, without a second read."""
        needs_fields = props.type == "tool" and props.required_form_field_slugs is None and bool(data.get("records"))
        needs_nodes = not props.node_slugs and self._estimating([data], budget)
        if not (needs_fields or needs_nodes):
            return props, None
        try:
            release = client.get_deployed_release(props.workflow_uuid)
        except CargoNotFoundError:  # nothing deployed: no required fields; the estimate says what it can
            return props, None
        required = [f.slug for f in release.form_fields or [] if f.is_required]
        return props.model_copy(update={"required_form_field_slugs": required,
                                        "node_slugs": [n.slug for n in release.nodes]}), release

    def _listing(self, client: CargoClient, props: CargoWorkflowProps, parts: list[Mapping[str, Any]],
                 budget: float | None) -> tuple[Batch, ...] | None:
        """The workflow's newest batches (one page when Cargo lists newest first, else all of them), listed once
        for both the estimate (recent cost per record) and the create (its exactly-once watermark); None when
        there is no estimate (the create lists them)."""
        if not self._estimating(parts, budget):
            return None
        try:
            return tuple(client.list_newest_batches(props.workflow_uuid))
        except CargoError:  # the estimate reads what it can; the create lists them again
            return None

    def _estimate(self, context: Any, props: CargoWorkflowProps, parts: list[Mapping[str, Any]],
                  budget: float | None, listed: tuple[Batch, ...] | None = None) -> CreditEstimate | None:
        """Estimate the batches' credits (see :mod:`cargo_gtm.estimate`) and refuse them, before any is
        created, when the estimate exceeds ``budget``; not those an earlier attempt of the step created (see
        :meth:`_over_estimate`)."""
        if not self._estimating(parts, budget):
            return None
        estimate = try_estimate(self.get_client(), props.workflow_uuid, parts, listed=listed,
                                history=recent_materializations(context), nodes=len(props.node_slugs) or None)
        if estimate is None:
            return None
        context.log.info(f"Cargo {props.type} {props.name!r}: {estimate.describe()}.")
        if budget is not None and estimate.credits is not None and estimate.credits > budget:
            self._over_estimate(context, props, parts, budget, estimate)
        if budget is not None and estimate.credits is None:
            context.log.info(no_estimate(f"{props.type} {props.name!r}", budget))
        return estimate

    def _over_estimate(self, context: Any, props: CargoWorkflowProps, parts: list[Mapping[str, Any]],
                       budget: float, estimate: CreditEstimate) -> None:
        """An estimate over the budget refuses the step before any credit is spent, unless an earlier attempt of
        it (a re-execution's run group) already created every batch it runs (recorded, or found by its create
        intent, and still able to succeed): those are paid for, so they are attached to and reported, the budget
        holding while they run. When only some exist, the others are refused and the existing ones named. Ramp
        rounds and single runs are refused as a first attempt is (their later rounds or runs could not be counted)."""
        what = f"{props.type} {props.name!r}"
        keys = [attempt_tag_key(context, props.workflow_uuid, dict(p)) for p in parts]
        # the run path's own lookup: no call to Cargo for a step nothing recorded (a first attempt)
        found = find_reusable_batches(context, self.get_client(), keys, [dict(p) for p in parts])
        attached = {k: b for k, b in found.items() if b is not None}
        if attached and len(attached) == len(keys):
            context.log.warning(f"Cargo {what}: the estimate is over the budget of {budget:g} credits, but an "
                                f"earlier attempt of this step already created its batch(es) "
                                f"{', '.join(b.uuid for b in attached.values())}: attaching to them (the budget "
                                "holds while they run).")
            return
        running = sorted(b.uuid for b in attached.values())
        error = estimate_error(what, estimate.describe(), budget, {}, running=running, attached=len(attached))
        failure = step_failure(error)
        raise dg.Failure(description=failure.description, metadata={**estimate_metadata(estimate),
                                                                     **failure.metadata}) from error

    def workflow_props(self, item: str | Play | Tool | CargoWorkflowProps, kind: str) -> CargoWorkflowProps:
        """Resolve a play/tool name, UUID or API object to :class:`CargoWorkflowProps`."""
        if isinstance(item, CargoWorkflowProps):
            return item
        if not isinstance(item, str):
            return props_from(item)
        client = self.get_client()
        found: Play | Tool = client.find_play(item) if kind == "play" else client.find_tool(item)
        return props_from(found)

    def credits_remaining(self) -> float:
        """Credits left in the workspace's subscription."""
        return self.get_client().get_subscription().credits_remaining

    def credit_usage_summary(
        self,
        start: date | datetime | str,
        end: date | datetime | str,
        *,
        group_by: str = "workflow_uuid",
    ) -> Any:
        """Cargo usage per day and per play/tool (billing usage metrics) as a DataFrame.

        Each usage unit is asked for explicitly and kept in its own column, never added to another:
        ``credits`` (provider credits), ``executions`` (node executions) with ``execution_credits``
        (the execution charge, executions × 0.01) and ``storage_records``. Other columns: ``date``,
        ``group`` (a workflow UUID, or another ``group_by`` dimension), ``name`` (the play/tool name
        when grouping by workflow) and ``slug`` (Cargo's usage slug). See :func:`cargo_gtm.credits.usage_summary`.
        """
        from cargo_gtm.credits import usage_summary

        client = self.get_client()
        names: dict[str, str] = {}
        if group_by == "workflow_uuid":
            items: list[Play | Tool] = [*client.list_plays(), *client.list_tools()]
            names = {item.workflow_uuid: item.name for item in items}
        return usage_summary(client, start, end, group_by=group_by, names=names)

    def list_workflows_by_name(self) -> dict[str, Play | Tool]:
        """Plays and tools of the workspace, by name."""
        client = self.get_client()
        items: Iterable[Play | Tool] = [*client.list_plays(), *client.list_tools()]
        return {item.name: item for item in items}
