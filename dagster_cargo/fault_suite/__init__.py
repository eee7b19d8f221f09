"""Fault suite: many materializations of a Cargo tool asset against an emulator injecting faults.

Each materialization enriches 1-20 companies whose domains are unique to it
(``m0042-03.example``), so every batch in the emulator traces back to the materialization that
created it. The report (:class:`FaultReport`) counts successes, failures with a clear or
unclear error, duplicate batches, credits spent against the credits of one batch per
materialization, API-token leaks (logs at DEBUG, Dagster events, exception texts,
stdout/stderr, the emulator's request log) and returned DataFrames that miss rows or hold
wrong values, plus the faults injected by kind. CLI: ``dagster-cargo fault-report``.

Example:
    >>> from dagster_cargo.fault_suite import SuiteConfig, run_fault_suite
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
    """Run the suite (sequential materializations, deterministic by seed) and return its report.

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
