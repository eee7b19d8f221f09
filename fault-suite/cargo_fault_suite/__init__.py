"""Fault suite: many materializations of a Cargo tool and a Cargo play against an emulator injecting faults.

Materializations run 8 at once (Dagster's multiprocess executor, one run of up to 40 steps at a
time) on workflows that already hold ``earlier_batches`` batches. A tool step enriches 1-20
companies whose domains are unique to it (``m0042-03.example``); a play step scores the companies
created in a time window unique to it (a partition). So every batch in the emulator traces back,
by its content, to the one materialization it belongs to. The report (:class:`FaultReport`)
counts successes, failures with a clear or unclear error, batches adopted by the wrong
materialization, duplicate batches, orphan batches (charged for a materialization that failed,
each listed with its credits), credits spent against one batch per materialization, input
records not accounted for, API-token leaks (DEBUG logs, Dagster events, exception texts,
stdout/stderr, the emulator's request log) and returned DataFrames that miss rows or hold wrong
values, plus the faults injected by kind; then kill -9 at each step of a materialization followed
by re-execution from the UI path and the Python API (:mod:`.crash`). CLI: ``dagster-cargo fault-report``.

Example:
    >>> from cargo_fault_suite import SuiteConfig, run_fault_suite
    >>> report = run_fault_suite(SuiteConfig(materializations=5))  # doctest: +SKIP
    >>> print(report.render()); assert not report.problems()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from .report import FaultReport, build_report
from .runner import Outcome, SuiteConfig, run_materializations, start_emulator

__all__ = ["FaultReport", "Outcome", "SuiteConfig", "run_fault_suite"]


def run_fault_suite(config: SuiteConfig | None = None,
                    progress: Callable[[Outcome], str | None] | None = None) -> FaultReport:
    """Run the suite (inputs and fault sequence seeded; 8 materializations at once) and return its report.

    ``progress`` is called after each materialization; a string it returns is written to the
    real stderr (the suite captures stdout/stderr to search them for the token).
    """
    config = config or SuiteConfig()
    emu = start_emulator(config)
    try:
        run = run_materializations(config, emu, progress)
        return build_report(run)
    finally:
        emu.stop()
