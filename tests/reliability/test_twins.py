"""Twins: identical inputs materialized at the same moment never share a batch (issue 19, item 1).

2 and 8 materializations of one asset over the same records run at once, each in its own Dagster run of one
shared instance, with their batch creates faulted (a 5xx: nothing created; a lost response: created, the
answer dropped). Every twin takes its create's watermark before any twin sends (a barrier), the worst
interleaving. Content cannot tell twins apart, so before the fix a twin whose create failed adopted its
sibling's batch: one batch reported twice, credits reported twice, and a cancelled twin cancelled the other's
batch. Now: every batch is reported by exactly one materialization, none is orphaned, credits reported equal
credits spent, and terminating one twin leaves the other's batch running.

The instance is SQLite here; ``tests/reliability/test_postgres_instance.py`` runs the same scenarios on
Postgres.
"""


import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.running import single_run as single_run_module
from cargo_gtm.running.clock import ManualClock
from cargo_gtm.running.handle import BatchHandle
from cargo_gtm.running.run_handle import RunHandle
from cargo_gtm.running.single_run import list_all_runs
from cargo_gtm_emulator import CargoEmulator
from dagster._core.errors import DagsterExecutionInterruptedError

from dagster_cargo import CargoResource

from ..conftest import TOKEN

pytestmark = pytest.mark.timeout(600)

CREATE = "POST /v1/orchestration/batches"
RUN_CREATE = "POST /v1/orchestration/runs"
RECORDS = pd.DataFrame({"domain": ["acme.com", "globex.com", "initech.io", "umbrella.co", "hooli.com"],
                        "company_name": ["Acme", "Globex", "Initech", "Umbrella", "Hooli"]})
SINGLE_RUN_RECORDS = 2  # a single-run twin runs the first records of RECORDS, one Cargo single run each
BARRIER_SECONDS = 3.0  # real seconds: only long enough to make every twin list before any twin sends


@dataclass(frozen=True)
class TwinKind:
    """What the twins run: ``"batch"`` (one batch of RECORDS each) or ``"run"`` (Cargo single runs, one per record
    of the first SINGLE_RUN_RECORDS records: ``single_run_threshold`` covers them)."""

    name: str
    create: str  # the create request the faults hit
    units_per_twin: int
    resource: tuple[tuple[str, Any], ...] = ()

    def records(self) -> pd.DataFrame:
        return RECORDS if self.name == "batch" else RECORDS.head(SINGLE_RUN_RECORDS)


KINDS = {"batch": TwinKind("batch", CREATE, 1),
         "run": TwinKind("run", RUN_CREATE, SINGLE_RUN_RECORDS, (("single_run_threshold", SINGLE_RUN_RECORDS),))}


@dataclass
class TwinsOutcome:
    """What the twins did: per run, its success and the units (batches or single runs) it reported; what Cargo
    holds (``units``: uuid -> status) and billed."""

    succeeded: list[bool]
    reported: list[list[str]]
    credits_reported: float
    credits_spent: float
    units: dict[str, str] = field(default_factory=dict)  # uuid -> status
    errors: list[str] = field(default_factory=list)

    @property
    def reporters(self) -> Counter[str]:
        return Counter(u for uuids in self.reported for u in uuids)

    @property
    def orphans(self) -> list[str]:
        return [u for u in self.units if u not in self.reporters]

    @property
    def shared(self) -> list[str]:
        return [u for u, n in self.reporters.items() if n > 1]

    def figures(self) -> str:
        return (f"{len(self.reported)} twins, {sum(self.succeeded)} succeeded; {len(self.units)} units in Cargo, "
                f"{len(self.shared)} shared, {len(self.orphans)} orphans; credits reported "
                f"{self.credits_reported:g} / spent {self.credits_spent:g}; errors: {self.errors}")


def twin_asset(kind: TwinKind = KINDS["batch"]) -> dg.AssetsDefinition:
    records = kind.records()

    @dg.asset(name="enriched_twin", kinds={"cargo"})
    def enriched_twin(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", records).materialize_result()

    return enriched_twin


def _barrier_wait(barrier: Any) -> None:
    try:
        barrier.wait(BARRIER_SECONDS)
    except threading.BrokenBarrierError:
        pass


def _patch_watermark_barrier(barrier: Any) -> None:
    """Every twin takes its create's watermark (a batch's or a single run's) before any twin sends (at most
    ``BARRIER_SECONDS``: twins that take turns never all reach the barrier together, and then go on)."""
    original = CargoClient.create_intent
    original_run = single_run_module.run_intent

    def create_intent(self: CargoClient, *args: Any, **kwargs: Any) -> Any:
        intent = original(self, *args, **kwargs)
        _barrier_wait(barrier)
        return intent

    def run_intent(*args: Any, **kwargs: Any) -> Any:
        intent = original_run(*args, **kwargs)
        _barrier_wait(barrier)
        return intent

    CargoClient.create_intent = create_intent  # type: ignore[method-assign]
    single_run_module.run_intent = run_intent


def _patch_interrupt(index: int, interrupt_after_polls: int | None, stopped: Any) -> None:
    """Twin ``index`` is terminated (as Dagster does: an interrupt in the step) at its n-th poll, and sets
    ``stopped`` once it has cancelled its units. The other twins (``interrupt_after_polls`` 0) hold their first
    poll until then (at most 120 real seconds), so that their polls' clock moves cannot finish the terminated
    twin's units before it stops, however slowly it is scheduled."""
    if interrupt_after_polls is None:
        return
    polls = [0]
    for handle in (BatchHandle, RunHandle):
        original, original_cancel = handle.poll, handle.cancel

        def poll(self: Any, _original: Any = original) -> Any:
            polls[0] += 1
            if interrupt_after_polls == 0:
                if polls[0] == 1:
                    stopped.wait(120)
            elif polls[0] >= interrupt_after_polls:
                raise DagsterExecutionInterruptedError()
            return _original(self)

        def cancel(self: Any, _original: Any = original_cancel) -> Any:
            try:
                return _original(self)
            finally:
                stopped.set()

        handle.poll = poll  # type: ignore[method-assign]
        if interrupt_after_polls:
            handle.cancel = cancel  # type: ignore[method-assign]


def _advance_clock(base_url: str) -> ManualClock:
    """A clock whose sleeps move the (shared, manual-clock) emulator by as much, through its control plane."""
    import httpx

    def advance(seconds: float) -> None:
        httpx.post(f"{base_url}/_emulator/clock/advance", json={"seconds": seconds},
                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).raise_for_status()

    return ManualClock(on_sleep=advance)


def _reported(result: dg.ExecuteInProcessResult) -> tuple[list[str], float]:
    """The units (batches, or single runs) the materialization reports, and its credits."""
    mats = result.asset_materializations_for_node("enriched_twin")
    if not mats:
        return [], 0.0
    meta = {k: getattr(v, "value", v) for k, v in mats[0].metadata.items()}
    found = (meta.get("dagster-cargo/batch_uuids") or meta.get("dagster-cargo/batch_uuid")
             or meta.get("dagster-cargo/run_uuid") or "")
    return [u for u in str(found).split(",") if u], float(meta.get("dagster-cargo/credits_used") or 0.0)


def _workflow_units(emu: CargoEmulator, kind: TwinKind) -> dict[str, str]:
    """What Cargo holds for the tool: its batches, or its single runs (runs of no batch); uuid -> status."""
    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        tool = next(t for t in client.list_tools() if t.name == "Enrich company")
        if kind.name == "batch":
            return {b.uuid: b.status.value for b in client.list_all_batches(tool.workflow_uuid)}
        return {r.uuid: r.status.value for r in list_all_runs(client, tool.workflow_uuid) if not r.batch_uuid}


def twin_process(index: int, instance_ref: Any, base_url: str, barrier: Any, results: Any,
                 interrupt_after_polls: int | None, overrides: dict[str, Any], kind_name: str = "batch",
                 stopped: Any = None) -> None:
    """One twin: its own process and Dagster run on the shared instance."""
    kind = KINDS[kind_name]
    _patch_watermark_barrier(barrier)
    _patch_interrupt(index, interrupt_after_polls, stopped)
    resource = CargoResource(api_token=TOKEN, base_url=base_url, poll_interval=0.05, max_poll_interval=0.5,
                             credit_breakdown=True, poll_timeout=10_000.0, **{**dict(kind.resource), **overrides}
                             ).with_clock(_advance_clock(base_url))
    try:
        with dg.DagsterInstance.from_ref(instance_ref) as instance:
            result = dg.materialize([twin_asset(kind)], resources={"cargo": resource}, instance=instance,
                                    raise_on_error=False, tags={"twin": str(index)})
            uuids, credits = _reported(result)
            error = ""
            if not result.success:
                failure = result.failure_data_for_node("enriched_twin")
                error = failure.error.cause if failure and failure.error and failure.error.cause else (
                    failure.error if failure else None)
                error = error.message.splitlines()[0] if error is not None else "failed"
    except BaseException as exc:  # the parent always hears back
        results.put((index, False, [], 0.0, f"twin process crashed: {exc!r}"))
        raise
    results.put((index, result.success, uuids, credits, error))


def run_twins(emu: CargoEmulator, instance: dg.DagsterInstance, n: int, *, faults: list[str],
              interrupt: dict[int, int] | None = None, kind: str = "batch", **resource_overrides: Any) -> TwinsOutcome:
    """``n`` identical materializations at once (one process and one Dagster run each) on ``instance``, running
    ``kind`` (``"batch"`` or ``"run"``: single runs) with ``faults`` on its creates."""
    import multiprocessing

    twin_kind = KINDS[kind]
    for fault in faults:
        emu.faults.next(twin_kind.create, fault)
    before = emu.credits_used
    ctx = multiprocessing.get_context("spawn")
    barrier, results, stopped = ctx.Barrier(n), ctx.Queue(), ctx.Event()
    polls = {i: (interrupt or {}).get(i, 0 if interrupt else None) for i in range(n)}  # 0: wait for the stop
    procs = [ctx.Process(target=twin_process, args=(i, instance.get_ref(), emu.base_url, barrier, results,
                                                    polls[i], resource_overrides, kind, stopped))
             for i in range(n)]
    for p in procs:
        p.start()
    got = [results.get(timeout=500) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    got.sort()
    return TwinsOutcome(succeeded=[g[1] for g in got], reported=[g[2] for g in got],
                        credits_reported=round(sum(g[3] for g in got), 6),
                        credits_spent=round(emu.credits_used - before, 6),
                        units=_workflow_units(emu, twin_kind), errors=[g[4] for g in got if g[4]])


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


@pytest.fixture
def twins_emulator(manual_emulator: CargoEmulator) -> CargoEmulator:
    return manual_emulator


def assert_twins_hold(outcome: TwinsOutcome, n: int, kind: str = "batch") -> None:
    assert outcome.shared == [], outcome.figures()
    assert outcome.orphans == [], outcome.figures()
    assert outcome.credits_reported == outcome.credits_spent, outcome.figures()
    assert all(outcome.succeeded), outcome.figures()
    # each twin its own units: none shared, none paid twice
    assert len(outcome.units) == n * KINDS[kind].units_per_twin, outcome.figures()
    assert all(len(uuids) == KINDS[kind].units_per_twin for uuids in outcome.reported), outcome.figures()


def assert_terminated_twin_left_the_other_alone(outcome: TwinsOutcome, kind: str = "batch") -> None:
    """Twin 0 was terminated while waiting: its own units are cancelled, twin 1's ran on and succeeded."""
    assert outcome.succeeded == [False, True], outcome.figures()
    survivors = outcome.reported[1]
    assert len(survivors) == KINDS[kind].units_per_twin, outcome.figures()
    assert all(outcome.units[u] == "success" for u in survivors), outcome.figures()
    others = [u for u in outcome.units if u not in survivors]
    assert len(others) == KINDS[kind].units_per_twin, outcome.figures()
    assert all(outcome.units[u] in ("cancelled", "cancelling") for u in others), outcome.figures()
    assert outcome.shared == [], outcome.figures()


EIGHT_FAULTS = ["server_error", "lost_create_response", "lost_create_response", "lost_create_response"]


@pytest.mark.parametrize("faults", [["server_error", "lost_create_response"], ["server_error"],
                                    ["lost_create_response"]])
def test_two_twins_with_create_faults_never_share_a_batch(twins_emulator, instance, faults):
    outcome = run_twins(twins_emulator, instance, 2, faults=faults)
    print("2 twins:", outcome.figures())
    assert_twins_hold(outcome, 2)


def test_eight_twins_with_create_faults_never_share_a_batch(twins_emulator, instance):
    # a 5xx is decided before the create runs, a lost response after it committed: each kind is met in
    # order by the creates that reach its decision point (so one 5xx: two in a row would fail a twin clearly
    # after its two sends, as the 2-twin 5xx case shows is right)
    faults = EIGHT_FAULTS
    outcome = run_twins(twins_emulator, instance, 8, faults=faults)
    print("8 twins:", outcome.figures())
    assert_twins_hold(outcome, 8)


def test_terminating_one_twin_leaves_the_other_batch_running(twins_emulator, instance):
    """Twin 0 is terminated while waiting; its own batch is cancelled, twin 1's keeps running and succeeds."""
    outcome = run_twins(twins_emulator, instance, 2, faults=["server_error", "lost_create_response"],
                        interrupt={0: 2})
    print("terminated twin:", outcome.figures())
    assert_terminated_twin_left_the_other_alone(outcome)
