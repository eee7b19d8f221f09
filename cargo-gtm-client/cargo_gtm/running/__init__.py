"""Running things on Cargo: one handle protocol (start, poll, cancel, settle, fetch outputs) for batches
(:class:`BatchHandle`) and single runs (:class:`RunHandle`), driven by one loop (:class:`StepDriver`, in
:mod:`.step`); exactly-once creates (:mod:`.reconcile`, :mod:`.proof`), waiting (:mod:`.waiting`), the credit
budget (:mod:`.budget`), the clock (:mod:`.clock`).

These names are the public API of running for orchestrator layers (Dagster, Airflow): import them from
``cargo_gtm.running``.
"""

from .budget import (
    ASSET_BUDGET,
    BUDGET_HINT,
    BudgetWording,
    CreditBudget,
    StepBudgetError,
    budget_error,
    estimate_error,
    no_estimate,
    ramp_stopped,
    tighter_budget,
    unaffordable_round,
)
from .busy import BusyPolicy
from .clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
from .handle import BatchHandle, BatchRequest, CancelReport, Ledger, NoLedger, StartReport
from .heal import HealRows, RoundPart
from .ramp import SNAPSHOT_KINDS, merge_results, next_round_size, run_ramped, selection_ids
from .reconcile import CargoAmbiguousCreateError, CreateIntent
from .run_handle import RunHandle, RunRequest, run_one_record
from .single_run import (
    RunIntent,
    RunResult,
    cancel_run,
    create_run_once,
    fetch_change_records,
    find_created_run,
    get_run_with_context,
    run_guidance,
    run_intent,
    wait_for_run,
)
from .step import (
    FailedRows,
    ProgressLog,
    StepDriver,
    StepHandle,
    StepLog,
    StepResult,
    StepSettings,
    Verdict,
    WaitSettings,
    apply_failed_rows,
    credits_remaining_or_none,
    empty_result,
    status_counts,
    step_metadata,
)
from .waiting import (
    UNLIMITED,
    BatchPoller,
    BatchProgress,
    PollingGuidance,
    StatusSnapshot,
    raise_for_batch,
    timeout_error,
    wait_for_batches,
)

__all__ = [
    "ASSET_BUDGET", "BUDGET_HINT", "BudgetWording", "CreditBudget", "StepBudgetError", "budget_error", "estimate_error", "tighter_budget",
    "no_estimate", "ramp_stopped", "unaffordable_round",
    "BusyPolicy", "SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock",
    "BatchHandle", "BatchRequest", "CancelReport", "HealRows", "Ledger", "NoLedger", "RoundPart", "StartReport",
    "merge_results", "next_round_size", "run_ramped", "SNAPSHOT_KINDS", "selection_ids",
    "CargoAmbiguousCreateError", "CreateIntent", "RunHandle", "RunRequest", "run_one_record",
    "RunIntent", "RunResult", "cancel_run", "create_run_once", "fetch_change_records", "find_created_run",
    "get_run_with_context", "run_guidance", "run_intent", "wait_for_run",
    "FailedRows", "ProgressLog", "StepDriver", "StepHandle", "StepLog", "StepResult", "StepSettings", "Verdict",
    "WaitSettings", "apply_failed_rows", "credits_remaining_or_none", "empty_result", "status_counts",
    "step_metadata",
    "UNLIMITED", "BatchPoller", "BatchProgress", "PollingGuidance", "StatusSnapshot", "raise_for_batch",
    "timeout_error", "wait_for_batches",
]
