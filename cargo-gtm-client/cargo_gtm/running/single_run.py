"""One record through a tool as Cargo's *single run* (``POST /orchestration/runs``), exactly once.

These are the parts; :class:`~.run_handle.RunHandle` runs them as a step of the one run path.

A one-record batch makes Cargo list, query and schedule a batch before the record's run starts, and its
outputs come from two exports (the batch file and ``runs/download-outputs``). A single run skips all
that: it is created ``pending`` (``batchUuid: null``, CARGO-DOCS 11.1), polled with
``GET /orchestration/runs/{uuid}``, whose ``runContext`` holds each node's output keyed by node slug
(REFERENCE 3.5). Plays are refused (``playNotCompatible``): only tools run this way.

The result is what a one-record batch gives: :func:`run_dataframe` builds the same one-row DataFrame
(``_id``, ``_title``, the input fields, the output node's data spread into columns, ``_status`` and
``_error_message``; see :mod:`.outcomes`), and :func:`run_credit_split` the same credits (provider
``creditsUsedCount`` of each execution + 0.01 per billed node execution, CARGO-DOCS 5.1-5.2).

Exactly once
------------
A run spends credits and its create has no idempotency key. So, as for batches (:mod:`.reconcile`):

1. Before sending, the workflow's runs are listed (``runs/list`` with ``workflowUuid``): one page, and
   when the workflow has more runs than that page shows, every run created at or after the newest
   ``createdAt`` on it (``createdAfter``, every page). Whatever order Cargo lists runs in, this sees every
   run created at or after that *watermark* (Cargo's own clock, never this machine's): they existed before
   the create (``known``: never candidates). The :class:`RunIntent` can be recorded durably before the
   request leaves.
2. After an *ambiguous* failure (timeout or dropped connection once sent, or a 5xx), the current user is
   looked up and the workflow's runs by that user created at or after the watermark are listed. Candidates
   are standalone runs (``batchUuid`` null) not known before and not cancelled; each is proven by content:
   its first node's output in ``runContext`` (the record as Cargo received it) must hold the record's
   fields, with the same values.
3. Exactly one proven → adopted. Several, or candidates whose context cannot be read yet → stop with
   :class:`~.reconcile.CargoAmbiguousCreateError` naming them (nothing adopted, nothing created). None
   after letting Cargo settle → the create was not committed: it is sent once more.

The run a create makes is created after the watermark in Cargo's clock, so it is always among the runs
listed in step 2: a committed create is never mistaken for a lost one, whatever the clock skew.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..download.outcomes import RunOutcome, align_inputs, apply_outcomes, check_output_slug
from ..errors import CargoError, CargoInputError
from ..models import TERMINAL_RUN_STATUSES, Run, RunStatus
from ..paging import read_all
from .busy import send_when_free
from .reconcile import LIST_PAGE, CargoAmbiguousCreateError, CreateIntent, records_match, send_once
from .waiting import GUIDED_INTERVAL, PollingGuidance, wait_for_batches

if TYPE_CHECKING:
    from ..client import CargoClient
    from ..credits import CreditSplit

__all__ = ["RUN_POLL_INTERVAL", "RunIntent", "RunResult", "get_run_with_context", "list_all_runs",
           "run_intent", "create_run_once", "find_created_run", "wait_for_run", "cancel_run", "run_dataframe",
           "run_credit_split", "run_guidance", "TERMINAL_RUN_STATUSES", "fetch_change_records", "STUCK_PENDING_SECONDS"]

logger = logging.getLogger("cargo_gtm")

#: Cargo's polling guidance for runs (CARGO-DOCS 6.1: "poll runs every 2 s, batches every 5 s").
RUN_POLL_INTERVAL = 2.0
#: A run ``pending`` longer than this means the workflow is not enabled or has no deployed release (6.3).
STUCK_PENDING_SECONDS = 30.0


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


#: The intent of a single-run create: the same type as a batch create's (one intent type, one ledger).
RunIntent = CreateIntent


@dataclass(frozen=True)
class RunResult:
    """A run as ``GET /orchestration/runs/{uuid}`` returns it: the run and its per-node context."""

    run: Run
    context: dict[str, Any] = field(default_factory=dict)
    computed_configs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        return self.run.status in TERMINAL_RUN_STATUSES


def get_run_with_context(client: CargoClient, uuid: str) -> RunResult:
    """``GET /orchestration/runs/{uuid}``, keeping ``runContext`` and ``runComputedConfigs`` (keyed by node slug)."""
    run, context, computed = client.get_run_detail(uuid)
    return RunResult(run=run, context=context, computed_configs=computed)


def list_all_runs(client: CargoClient, workflow_uuid: str, *, created_after: str | None = None,
                  user_uuid: str | None = None, max_pages: int = 100) -> list[Run]:
    """Every run of the workflow (created at or after ``created_after``; by one user), all pages.

    Raises :class:`CargoError` past ``max_pages`` pages rather than return a partial list.
    """
    return read_all(
        lambda offset: client.list_runs(workflow_uuid=workflow_uuid, created_after=created_after,
                                        user_uuid=user_uuid, limit=LIST_PAGE, offset=offset or None).runs,
        page_size=LIST_PAGE, key=lambda run: run.uuid, max_pages=max_pages,
        too_many=lambda: CargoError(
            f"Workflow {workflow_uuid} has more than {LIST_PAGE * max_pages} runs since {created_after}; cannot "
            "list them all to make sure a single run is created exactly once.",
            hint="run this input as a batch (single_run_threshold=0) while the workflow is this busy."))


def run_intent(client: CargoClient, workflow_uuid: str, *, attempt_key: str | None = None) -> RunIntent:
    """The :class:`RunIntent` of a create about to be sent: the workflow's runs at their watermark now."""
    sent_at = _iso(datetime.now(timezone.utc))
    page = client.list_runs(workflow_uuid=workflow_uuid, limit=LIST_PAGE)
    runs, count = list(page.runs), page.count
    dated = [r.created_at for r in runs if r.created_at is not None]
    if not dated and count > len(runs):
        runs = list_all_runs(client, workflow_uuid)  # undated runs: nothing to take a watermark from
        dated = [r.created_at for r in runs if r.created_at is not None]
    if not dated:
        return CreateIntent(workflow_uuid=workflow_uuid, sent_at=sent_at, watermark=None,
                            at_watermark=tuple(sorted(r.uuid for r in runs)), attempt_key=attempt_key)
    # 1 ms early: whether Cargo's createdAfter includes the instant itself is not documented
    watermark = _iso(max(dated) - timedelta(milliseconds=1))
    if count > len(runs):  # not all seen: every run at or after the watermark, any order
        runs = [*runs, *list_all_runs(client, workflow_uuid, created_after=watermark)]
    return CreateIntent(workflow_uuid=workflow_uuid, sent_at=sent_at, watermark=watermark,
                        at_watermark=tuple(sorted({r.uuid for r in runs})), attempt_key=attempt_key)


def _user_uuid(run: Run) -> str | None:
    extra = run.model_extra or {}
    value = extra.get("userUuid", extra.get("user_uuid"))
    return str(value) if value else None


def _start_output(result: RunResult) -> Any:
    """The output of the run's first node (the record as Cargo received it), or None when not there yet."""
    for execution in result.run.executions:
        if execution.node_slug in result.context:
            return result.context[execution.node_slug]
    return result.context.get("start")


def _verdict(client: CargoClient, record: Mapping[str, Any], run: Run) -> bool | None:
    """True: this run holds ``record``; False: it does not; None: its context cannot be read yet."""
    if run.batch_uuid or run.status in (RunStatus.CANCELLED, RunStatus.CANCELLING):
        return False
    try:
        result = get_run_with_context(client, run.uuid)
    except CargoError as exc:
        logger.warning("Could not read candidate run %s: %s", run.uuid, exc)
        return None
    start = _start_output(result)
    if not isinstance(start, Mapping):
        return None  # pending: nothing executed yet
    sent = {k: v for k, v in record.items() if k not in ("_id", "_title")}
    return records_match([sent], [dict(start)]) and all(k in start for k in sent)


def _ambiguous(workflow_uuid: str, why: str, uuids: Sequence[str], proven: int, cause: BaseException | None
               ) -> CargoAmbiguousCreateError:
    return CargoAmbiguousCreateError(
        f"Creating a Cargo single run of workflow {workflow_uuid} failed ambiguously{why} and {len(uuids)} run(s) "
        f"created since may hold this record: {', '.join(uuids)} ({proven} proven to hold exactly this record, "
        f"{len(uuids) - proven} whose context could not be read yet). None was adopted and none created.",
        hint="look at these runs in Cargo (workflow's runs, no batch) and cancel any extra one, then re-execute "
        "the step (it re-checks them and attaches to the one that is provably its own).",
        candidates=list(uuids))


def _classify(client: CargoClient, record: Mapping[str, Any], listed: Sequence[Run], skip: set[str],
              user: str) -> tuple[list[Run], list[Run]]:
    """The listed runs proven to hold ``record``, and those that cannot be told yet (others dropped)."""
    proven: list[Run] = []
    undecided: list[Run] = []
    for run in listed:
        if run.uuid in skip or _user_uuid(run) not in (None, user):
            continue
        verdict = _verdict(client, record, run)
        if verdict is None:
            undecided.append(run)
        elif verdict:
            proven.append(run)
    return proven, undecided


def find_created_run(client: CargoClient, record: Mapping[str, Any], intent: RunIntent, *,
                     claimed: Callable[[], set[str]] | None = None,
                     settle_delays: tuple[float, ...] = (1.0, 3.0, 6.0),
                     cause: BaseException | None = None) -> Run | None:
    """The run ``intent``'s create made, proven by content; ``None`` when it made none (sending again is safe).

    Raises :class:`CargoAmbiguousCreateError` when several runs hold the record, some candidate's context
    cannot be read in time, or the runs cannot be listed.
    """
    why = f" ({cause})" if cause is not None else ""
    proven: list[Run] = []
    undecided: list[Run] = []
    try:
        user = client.get_current_user().uuid  # only now: the happy path never needs it
        for delay in (0.0, *settle_delays):
            client.sleep(delay)
            listed = list_all_runs(client, intent.workflow_uuid, created_after=intent.watermark, user_uuid=user)
            skip = set(intent.known) | (claimed() if claimed is not None else set())
            proven, undecided = _classify(client, record, listed, skip, user)
            if len(proven) > 1 or (len(proven) == 1 and not undecided):
                break
    except CargoError as exc:
        raise _cannot_list(intent, why, exc) from exc
    if len(proven) == 1 and not undecided:
        return proven[0]
    if not proven and not undecided:
        return None
    raise _ambiguous(intent.workflow_uuid, why, [r.uuid for r in [*proven, *undecided]], len(proven), cause)


def _cannot_list(intent: RunIntent, why: str, exc: BaseException) -> CargoAmbiguousCreateError:
    return CargoAmbiguousCreateError(
        f"Creating a Cargo single run of workflow {intent.workflow_uuid} may have failed{why}, and the workflow's "
        f"runs could not be listed to check whether it was created ({exc}).",
        hint=f"look at the workflow's standalone runs in Cargo (no batch) created since "
        f"{intent.watermark or intent.sent_at} before re-running, to avoid paying twice.", candidates=[])


def create_run_once(client: CargoClient, workflow_uuid: str, record: Mapping[str, Any], *,
                    release_uuid: str | None = None, intent: RunIntent | None = None,
                    on_intent: Callable[[RunIntent], None] | None = None,
                    claimed: Callable[[], set[str]] | None = None, attempt_key: str | None = None,
                    settle_delays: tuple[float, ...] = (1.0, 3.0, 6.0), max_sends: int = 2) -> Run:
    """``POST /orchestration/runs`` for ``record``, exactly once (see the module doc). **Spends credits.**

    ``concurrencyLimitReached`` (nothing created) is waited out as for batches (the client's busy policy).
    """
    if intent is None:
        intent = run_intent(client, workflow_uuid, attempt_key=attempt_key)
    if on_intent is not None:
        on_intent(intent)

    def send() -> Run:
        return send_when_free(lambda: client.create_run(workflow_uuid, record, release_uuid=release_uuid),
                              what=f"single run of workflow {workflow_uuid}", sleep=client.sleep,
                              policy=client.busy_policy, report=client.busy_report)

    return send_once(
        send, lambda cause: find_created_run(client, record, intent, claimed=claimed, settle_delays=settle_delays,
                                             cause=cause),
        what="single run", workflow_uuid=workflow_uuid, max_sends=max_sends)


def run_guidance(batch_guidance: PollingGuidance | None) -> PollingGuidance:
    """Run polling limits from the batch ones: Cargo asks 2 s for runs where it asks 5 s for batches, so a
    batch ``average_interval`` is scaled by 2/5 (default 5 s → 2 s); 0 (unlimited) stays 0."""
    avg = GUIDED_INTERVAL if batch_guidance is None else batch_guidance.average_interval
    scaled = avg * RUN_POLL_INTERVAL / GUIDED_INTERVAL if avg > 0 else 0.0
    return PollingGuidance(average_interval=scaled, large_batch_interval=0.0)


def wait_for_run(client: CargoClient, uuid: str, *, timeout: float | None = 3600.0, poll_interval: float = 1.0,
                 max_poll_interval: float = 30.0, guidance: PollingGuidance | None = None,
                 on_poll: Callable[[RunResult, float], None] | None = None) -> RunResult:
    """Poll ``GET /orchestration/runs/{uuid}`` (through the client's clock) until the run ends.

    The batches' polling loop (:func:`~.waiting.wait_for_batches`) with a run as its unit: the interval starts at
    ``poll_interval`` and grows x1.5 to ``max_poll_interval``, never more often than ``guidance`` allows on
    average (default: Cargo's 2 s for runs). A run still ``pending`` after 30 s is logged with Cargo's hint.
    Raises :class:`CargoWaitTimeoutError` past ``timeout`` (the run is not cancelled).
    """
    start = client.clock.monotonic()
    results: dict[str, RunResult] = {}

    def read(run_uuid: str) -> Run:
        result = results[run_uuid] = get_run_with_context(client, run_uuid)
        elapsed = client.clock.monotonic() - start
        if on_poll is not None:
            on_poll(result, elapsed)
        if result.run.status == RunStatus.PENDING and elapsed > STUCK_PENDING_SECONDS and "warned" not in results:
            results["warned"] = result
            logger.warning("Cargo run %s is still pending after %.0fs: Cargo says this means the workflow is not "
                           "enabled or has no deployed release.", run_uuid, elapsed)
        return result.run

    wait_for_batches(read, [uuid], timeout=timeout, poll_interval=poll_interval,  # type: ignore[arg-type]
                     max_poll_interval=max_poll_interval, raise_on_failure=False, sleep=client.sleep,
                     clock=client.clock.monotonic, guidance=guidance or run_guidance(None))
    return results[uuid]


def cancel_run(client: CargoClient, run: Run) -> None:
    """``POST /orchestration/runs/cancel`` with ``{workflowUuid, uuids: [run]}`` (REFERENCE 3.5)."""
    client.cancel_runs(run.workflow_uuid, [run.uuid])


def _last_executed(run: Run, context: Mapping[str, Any]) -> str | None:
    """Cargo's default output node: the last node the run executed (that has an output)."""
    done = [e.node_slug for e in run.executions if e.node_slug in context]
    return done[-1] if done else None


def _filter_stopped(run: Run, nodes: Sequence[Any]) -> bool:
    """Whether a ``filter`` node succeeded and its next node never executed (CARGO-DOCS 4.2: not an error)."""
    executed = {e.node_slug: e for e in run.executions}
    by_uuid = {n.uuid: n for n in nodes}
    for node in nodes:
        if (node.action_slug or "") != "filter" or node.slug not in executed:
            continue
        child = next((by_uuid[c] for c in node.children_uuids if c in by_uuid), None)
        if child is not None and str(executed[node.slug].status) == "success" and child.slug not in executed:
            return True
    return False


def _outcome(run: Run, nodes: Sequence[Any], record: Mapping[str, Any]) -> RunOutcome | None:
    """The run's outcome as the batch path records it (None: it simply succeeded)."""
    status = run.status.value
    if run.status == RunStatus.SUCCESS and _filter_stopped(run, nodes):
        status = "filtered"
    elif run.status == RunStatus.CANCELLING:
        status = "cancelled"
    if status == "success":
        return None
    return RunOutcome(record_id=str(run.record_id), record_title=run.record_title, status=status,
                      error=run.error_message, input=dict(record), run_uuid=run.uuid)


def run_dataframe(result: RunResult, record: Mapping[str, Any], *, nodes: Sequence[Any] = (),
                  output_node_slug: str | None = None) -> Any:
    """The one-row DataFrame a one-record batch of ``record`` would give (see :meth:`CargoClient.download_batch_dataframe`).

    ``nodes``: the release's nodes (filter stops, and checking ``output_node_slug`` against them).
    """
    from ..download.layout import OUTPUT_COLUMN, frame_from_rows, spread_output

    run = result.run
    if output_node_slug and nodes:
        check_output_slug(nodes, output_node_slug, str(run.release_uuid), run.uuid)
    outcome = _outcome(run, nodes, record)
    slug = output_node_slug or _last_executed(run, result.context)
    output = result.context.get(slug) if slug and outcome is None else None  # as the batch file: only successes
    fields = {k: v for k, v in record.items() if k not in ("_id", "_title")}
    row = {"_id": run.record_id, "_title": run.record_title, **fields,
           OUTPUT_COLUMN: dict(output) if isinstance(output, Mapping) else None}
    frame = spread_output(frame_from_rows([row]))
    frame, notes = apply_outcomes(frame, [outcome] if outcome is not None else [], [record])
    for note in notes:
        logger.warning("Run %s: %s", run.uuid, note)
    return align_inputs(frame, [record])


def run_credit_split(run: Run, nodes: Sequence[Any] = ()) -> CreditSplit:
    """The run's credits as Cargo bills them: each execution's provider ``creditsUsedCount`` + 0.01 per
    finished (succeeded or errored) node execution (:mod:`cargo_gtm.credits`)."""
    from ..credits import CreditSplit

    provider = 0.0
    executions = 0
    by_node: dict[str, float] = {}
    for execution in run.executions:
        credits = float(execution.credits_used_count)
        provider += credits
        if str(execution.status) in ("success", "error"):
            executions += 1
        if credits:
            by_node[execution.node_slug] = by_node.get(execution.node_slug, 0.0) + credits
    return CreditSplit(provider, executions, by_node)


def fetch_change_records(client: CargoClient, change_uuid: str, kinds: Sequence[str], *,
                         max_records: int = 500) -> list[dict[str, Any]]:
    """The records of a segment change (``POST /segmentation/changes/{uuid}/fetch``, pages of 100), for a
    tool to enrich them (a one-record change then runs as a single run).

    Raises :class:`CargoInputError` when the change holds more than ``max_records`` records of ``kinds``.
    """
    records: list[dict[str, Any]] = []
    while True:
        body = client.fetch_change(change_uuid, kinds, limit=100, offset=len(records))
        count = body.count
        if count > max_records:
            raise CargoInputError(
                f"Segment change {change_uuid} holds {count} records of kinds {list(kinds)}, more than {max_records} "
                "to pass to a tool as records.",
                hint="enrich large changes with a play (change batches), or raise max_records.")
        page = [dict(r) for r in body.records]
        records.extend(page)
        if not page or len(records) >= count:
            return records
