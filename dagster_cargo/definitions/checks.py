"""Asset checks for Cargo batches: failed-run ratio, completeness (every input record accounted for),
skipped-run ratio, credits per succeeded record.

Example:
    .. code-block:: python

        import dagster as dg
        from dagster_cargo import CargoResource
        from dagster_cargo.definitions.checks import CargoCheckConfig, cargo_check_specs

        checks = CargoCheckConfig(failed_ratio_warn=0.05, failed_ratio_error=0.2, max_credits_per_record=5)

        @dg.asset(check_specs=cargo_check_specs("enriched", checks))
        def enriched(context: dg.AssetExecutionContext, cargo: CargoResource, signups):
            return cargo.run_tool(context, "Enrich company", signups).materialize_result(checks=checks)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import dagster as dg
from cargo_gtm.models import Batch

__all__ = ["CargoCheckConfig", "cargo_check_specs", "evaluate_cargo_checks", "CHECK_NAMES"]

FAILED_RATIO = "cargo_failed_run_ratio"
COMPLETENESS = "cargo_output_completeness"
SKIPPED_RATIO = "cargo_skipped_run_ratio"
COST = "cargo_credits_per_record"
CHECK_NAMES = (FAILED_RATIO, COMPLETENESS, SKIPPED_RATIO, COST)


class CheckedResult(Protocol):
    """What the checks read from a finished run (a :class:`~dagster_cargo.running.execution.CargoBatchResult`); a
    protocol, so that this module does not import the one that calls it."""

    @property
    def batches(self) -> list[Batch]: ...
    @property
    def records_count(self) -> int: ...
    @property
    def failed_rows(self) -> int: ...
    @property
    def skipped_rows(self) -> int: ...
    @property
    def succeeded_rows(self) -> int: ...
    @property
    def credits_used(self) -> float: ...


@dataclass(frozen=True)
class CargoCheckConfig:
    """Thresholds of the Cargo asset checks.

    Args:
        failed_ratio_warn: failed runs / input records at or above this → WARN.
        failed_ratio_error: at or above this → ERROR.
        skipped_ratio_warn: records skipped by Cargo or stopped by a filter node / input records above this
            → WARN (``None``: no skipped-run check). Filters and dedupe skip records on purpose, so this
            only warns: a play that suddenly skips most of its input usually has a changed filter or segment.
        max_credits_per_record: credits billed (provider + execution charge) per **succeeded** record
            above this → ERROR (``None``: no cost check).
    """

    failed_ratio_warn: float = 0.05
    failed_ratio_error: float = 0.25
    skipped_ratio_warn: float | None = 0.5
    max_credits_per_record: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.failed_ratio_warn <= self.failed_ratio_error <= 1:
            raise ValueError("need 0 <= failed_ratio_warn <= failed_ratio_error <= 1")
        if self.skipped_ratio_warn is not None and not 0 <= self.skipped_ratio_warn <= 1:
            raise ValueError("need 0 <= skipped_ratio_warn <= 1")

    @property
    def names(self) -> tuple[str, ...]:
        names = [FAILED_RATIO, COMPLETENESS]
        if self.skipped_ratio_warn is not None:
            names.append(SKIPPED_RATIO)
        if self.max_credits_per_record is not None:
            names.append(COST)
        return tuple(names)


def cargo_check_specs(asset: dg.AssetKey | str | Sequence[str], config: CargoCheckConfig) -> list[dg.AssetCheckSpec]:
    """The check specs to declare on an asset that returns ``materialize_result(checks=config)``."""
    key = dg.AssetKey.from_coercible(asset)
    descriptions = {
        FAILED_RATIO: f"Input records whose run failed / input records below {config.failed_ratio_warn:g} (WARN) "
        f"and {config.failed_ratio_error:g} (ERROR).",
        COMPLETENESS: "Every input record of the batch is accounted for: one row each, with its status.",
        SKIPPED_RATIO: f"Input records skipped by Cargo or stopped by a filter node / input records at most "
        f"{config.skipped_ratio_warn if config.skipped_ratio_warn is not None else 1:g} (WARN).",
        COST: f"Credits billed (provider + execution charge) per succeeded record at most "
        f"{config.max_credits_per_record}.",
    }
    return [dg.AssetCheckSpec(name=name, asset=key, description=descriptions[name]) for name in config.names]


def _ratio_check(name: str, count: int, total: int, what: str, warn: float, error: float | None,
                 key: str) -> dg.AssetCheckResult:
    ratio = count / total if total else 0.0
    if error is not None and ratio >= error and count:
        severity, passed = dg.AssetCheckSeverity.ERROR, False
    elif ratio >= warn and count:
        severity, passed = dg.AssetCheckSeverity.WARN, False
    else:
        severity, passed = dg.AssetCheckSeverity.WARN, True
    bounds = f"WARN at {warn:.0%}" + (f", ERROR at {error:.0%}" if error is not None else "")
    return dg.AssetCheckResult(
        check_name=name, passed=passed, severity=severity,
        description=f"{count} of {total} input records {what} ({ratio:.1%}); {bounds}.",
        metadata={key: count, "input_records": total, f"{key.removesuffix('_rows')}_ratio": round(ratio, 6)},
    )


def evaluate_cargo_checks(result: CheckedResult, config: CargoCheckConfig) -> list[dg.AssetCheckResult]:
    """Evaluate the Cargo checks on a finished batch result."""
    records = result.records_count
    expected = sum(b.runs_count for b in result.batches)
    checks = [_ratio_check(FAILED_RATIO, result.failed_rows, records, "failed", config.failed_ratio_warn,
                           config.failed_ratio_error, "failed_rows")]
    missing = expected - records
    checks.append(dg.AssetCheckResult(
        check_name=COMPLETENESS, passed=missing == 0, severity=dg.AssetCheckSeverity.ERROR,
        description=(f"All {expected} input records accounted for." if missing == 0 else
                     f"{records} rows account for {expected} input records ({missing:+d} missing)."),
        metadata={"input_records": expected, "rows_accounted": records, "records_missing": missing},
    ))
    if config.skipped_ratio_warn is not None:
        checks.append(_ratio_check(SKIPPED_RATIO, result.skipped_rows, records, "were skipped or filtered out",
                                   config.skipped_ratio_warn, None, "skipped_rows"))
    if config.max_credits_per_record is not None:
        credits = result.credits_used
        succeeded = result.succeeded_rows
        per_record = credits / succeeded if succeeded else (0.0 if not credits else float("inf"))
        checks.append(dg.AssetCheckResult(
            check_name=COST, passed=per_record <= config.max_credits_per_record,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{per_record:.3g} credits per succeeded record ({credits:g} credits, {succeeded} succeeded "
            f"records; bound {config.max_credits_per_record:g}).",
            metadata={"credits_used": credits, "succeeded_records": succeeded,
                      **({"credits_per_record": round(per_record, 6)} if succeeded else {})},
        ))
    return checks
