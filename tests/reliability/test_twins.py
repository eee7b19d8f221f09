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
from cargo_gtm.running.clock import ManualClock
from cargo_gtm.running.handle import BatchHandle
from cargo_gtm_emulator import CargoEmulator
from dagster._core.errors import DagsterExecutionInterruptedError

from dagster_cargo import CargoResource

from ..conftest import TOKEN

pytestmark = pytest.mark.timeout(600)

CREATE = "POST /v1/orchestration/batches"
RECORDS = pd.DataFrame({"domain": ["acme.com", "globex.com", "initech.io", "umbrella.co", "hooli.com"],
                        "company_name": ["Acme", "Globex", "Initech", "Umbrella", "Hooli"]})
BARRIER_SECONDS = 3.0  # real seconds: only long enough to make every twin list before any twin sends


@dataclass
class TwinsOutcome:
    """What the twins did: per run, its success and the batches it reported; what Cargo holds and billed."""

    succeeded: list[bool]
    reported: list[list[str]]
    credits_reported: float
    credits_spent: float
    batches: dict[str, str] = field(default_factory=dict)  # uuid -> status
    errors: list[str] = field(default_factory=list)

    @property
    def reporters(self) -> Counter[str]:
        return Counter(u for uuids in self.reported for u in uuids)

    @property
    def orphans(self) -> list[str]:
        return [u for u in self.batches if u not in self.reporters]

    @property
    def shared(self) -> list[str]:
        return [u for u, n in self.reporters.items() if n > 1]

    def figures(self) -> str:
        return (f"{len(self.reported)} twins, {sum(self.succeeded)} succeeded; {len(self.batches)} batches, "
                f"{len(self.shared)} shared, {len(self.orphans)} orphans; credits reported "
                f"{self.credits_reported:g} / spent {self.credits_spent:g}; errors: {self.errors}")


def twin_asset() -> dg.AssetsDefinition:
    @dg.asset(name="enriched_twin", kinds={"cargo"})
    def enriched_twin(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", RECORDS).materialize_result()

    return enriched_twin


def _patch_watermark_barrier(barrier: Any) -> None:
    """Every twin takes its create's watermark before any twin sends (at most ``BARRIER_SECONDS``: twins that
    take turns never all reach the barrier together, and then go on)."""
    original = CargoClient.create_intent

    def create_intent(self: CargoClient, *args: Any, **kwargs: Any) -> Any:
        intent = original(self, *args, **kwargs)
        try:
            barrier.wait(BARRIER_SECONDS)
        except threading.BrokenBarrierError:
            pass
        return intent

    CargoClient.create_intent = create_intent  # type: ignore[method-assign]


def _patch_interrupt(index: int, interrupt_after_polls: int | None) -> None:
    """Twin ``index`` is terminated (as Dagster does: an interrupt in the step) at its n-th poll."""
    if interrupt_after_polls is None:
        return
    original = BatchHandle.poll
    polls = [0]

    def poll(self: BatchHandle) -> Any:
        polls[0] += 1
        if polls[0] >= interrupt_after_polls:
            raise DagsterExecutionInterruptedError()
        return original(self)

    BatchHandle.poll = poll  # type: ignore[method-assign]


def _advance_clock(base_url: str) -> ManualClock:
    """A clock whose sleeps move the (shared, manual-clock) emulator by as much, through its control plane."""
    import httpx

    def advance(seconds: float) -> None:
        httpx.post(f"{base_url}/_emulator/clock/advance", json={"seconds": seconds},
                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).raise_for_status()

    return ManualClock(on_sleep=advance)


def _reported(result: dg.ExecuteInProcessResult) -> tuple[list[str], float]:
    mats = result.asset_materializations_for_node("enriched_twin")
    if not mats:
        return [], 0.0
    meta = {k: getattr(v, "value", v) for k, v in mats[0].metadata.items()}
    found = meta.get("dagster-cargo/batch_uuids") or meta.get("dagster-cargo/batch_uuid") or ""
    return [u for u in str(found).split(",") if u], float(meta.get("dagster-cargo/credits_used") or 0.0)


def _workflow_batches(emu: CargoEmulator) -> dict[str, str]:
    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        tool = next(t for t in client.list_tools() if t.name == "Enrich company")
        return {b.uuid: b.status.value for b in client.list_all_batches(tool.workflow_uuid)}


def twin_process(index: int, instance_ref: Any, base_url: str, barrier: Any, results: Any,
                 interrupt_after_polls: int | None, overrides: dict[str, Any]) -> None:
    """One twin: its own process and Dagster run on the shared instance."""
    _patch_watermark_barrier(barrier)
    _patch_interrupt(index, interrupt_after_polls)
    resource = CargoResource(api_token=TOKEN, base_url=base_url, poll_interval=0.05, max_poll_interval=0.5,
                             credit_breakdown=True, poll_timeout=10_000.0, **overrides
                             ).with_clock(_advance_clock(base_url))
    try:
        with dg.DagsterInstance.from_ref(instance_ref) as instance:
            result = dg.materialize([twin_asset()], resources={"cargo": resource}, instance=instance,
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
              interrupt: dict[int, int] | None = None, **resource_overrides: Any) -> TwinsOutcome:
    """``n`` identical materializations at once (one process and one Dagster run each) on ``instance``."""
    import multiprocessing

    for kind in faults:
        emu.faults.next(CREATE, kind)
    before = emu.credits_used
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=twin_process, args=(i, instance.get_ref(), emu.base_url, barrier, results,
                                                    (interrupt or {}).get(i), resource_overrides))
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
                        batches=_workflow_batches(emu), errors=[g[4] for g in got if g[4]])


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


@pytest.fixture
def twins_emulator(manual_emulator: CargoEmulator) -> CargoEmulator:
    return manual_emulator


def assert_twins_hold(outcome: TwinsOutcome, n: int) -> None:
    assert outcome.shared == [], outcome.figures()
    assert outcome.orphans == [], outcome.figures()
    assert outcome.credits_reported == outcome.credits_spent, outcome.figures()
    assert all(outcome.succeeded), outcome.figures()
    assert len(outcome.batches) == n, outcome.figures()  # one batch each: none shared, none paid twice


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
    assert outcome.succeeded == [False, True], outcome.figures()
    (survivor,) = outcome.reported[1]
    assert outcome.batches[survivor] == "success", outcome.figures()
    others = [u for u in outcome.batches if u != survivor]
    assert len(others) == 1, outcome.figures()
    assert outcome.batches[others[0]] in ("cancelled", "cancelling"), outcome.figures()
    assert outcome.shared == [], outcome.figures()
