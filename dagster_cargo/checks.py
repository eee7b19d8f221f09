"""Asset checks for Cargo batches: failed-run ratio, output completeness, cost anomaly.

Example:
    .. code-block:: python

        import dagster as dg
        from dagster_cargo import CargoResource
        from dagster_cargo.checks import CargoCheckConfig, cargo_check_specs

        checks = CargoCheckConfig(failed_ratio_warn=0.05, failed_ratio_error=0.2, max_credits_per_record=5)

        @dg.asset(check_specs=cargo_check_specs("enriched", checks))
        def enriched(context: dg.AssetExecutionContext, cargo: CargoResource, signups):
            return cargo.run_tool(context, "Enrich company", signups).materialize_result(checks=checks)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from .execution import CargoBatchResult

__all__ = ["CargoCheckConfig", "cargo_check_specs", "evaluate_cargo_checks", "CHECK_NAMES"]

FAILED_RATIO = "cargo_failed_run_ratio"
COMPLETENESS = "cargo_output_completeness"
COST = "cargo_credits_per_record"
CHECK_NAMES = (FAILED_RATIO, COMPLETENESS, COST)


@dataclass(frozen=True)
class CargoCheckConfig:
    """Thresholds of the Cargo asset checks.

    Args:
        failed_ratio_warn: failed/executed runs at or above this → WARN.
        failed_ratio_error: at or above this → ERROR.
        max_credits_per_record: credits per output row above this → ERROR (``None``: no cost check).
    """

    failed_ratio_warn: float = 0.05
    failed_ratio_error: float = 0.25
    max_credits_per_record: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.failed_ratio_warn <= self.failed_ratio_error <= 1:
            raise ValueError("need 0 <= failed_ratio_warn <= failed_ratio_error <= 1")

    @property
    def names(self) -> tuple[str, ...]:
        return CHECK_NAMES if self.max_credits_per_record is not None else CHECK_NAMES[:2]


def cargo_check_specs(asset: dg.AssetKey | str | Sequence[str], config: CargoCheckConfig) -> list[dg.AssetCheckSpec]:
    """The check specs to declare on an asset that returns ``materialize_result(checks=config)``."""
    key = dg.AssetKey.from_coercible(asset)
    descriptions = {
        FAILED_RATIO: f"Failed runs / executed runs below {config.failed_ratio_warn:g} (WARN) and "
        f"{config.failed_ratio_error:g} (ERROR).",
        COMPLETENESS: "Rows downloaded equal the runs that succeeded (no output lost).",
        COST: f"Credits per output record at most {config.max_credits_per_record}.",
    }
    return [dg.AssetCheckSpec(name=name, asset=key, description=descriptions[name]) for name in config.names]


def evaluate_cargo_checks(result: CargoBatchResult, config: CargoCheckConfig) -> list[dg.AssetCheckResult]:
    """Evaluate the Cargo checks on a finished batch result."""
    executed = result.executed_runs_count
    failed = result.failed_runs_count
    expected_rows = result.succeeded_runs_count
    rows = len(result.frame)
    ratio = failed / executed if executed else 0.0
    checks: list[dg.AssetCheckResult] = []

    if ratio >= config.failed_ratio_error:
        severity, passed = dg.AssetCheckSeverity.ERROR, False
    elif ratio >= config.failed_ratio_warn and failed > 0:
        severity, passed = dg.AssetCheckSeverity.WARN, False
    else:
        severity, passed = dg.AssetCheckSeverity.WARN, True
    checks.append(dg.AssetCheckResult(
        check_name=FAILED_RATIO, passed=passed, severity=severity,
        description=f"{failed} of {executed} runs failed ({ratio:.1%}); WARN at {config.failed_ratio_warn:.0%}, "
        f"ERROR at {config.failed_ratio_error:.0%}.",
        metadata={"failed_runs": failed, "executed_runs": executed, "failed_ratio": round(ratio, 6),
                  "warn_threshold": config.failed_ratio_warn, "error_threshold": config.failed_ratio_error},
    ))

    checks.append(dg.AssetCheckResult(
        check_name=COMPLETENESS, passed=rows == expected_rows, severity=dg.AssetCheckSeverity.ERROR,
        description=f"{rows} rows downloaded for {expected_rows} runs that succeeded.",
        metadata={"rows_downloaded": rows, "runs_succeeded": expected_rows, "missing_rows": expected_rows - rows},
    ))

    if config.max_credits_per_record is not None:
        credits = result.credits_used
        per_record = credits / rows if rows else 0.0
        checks.append(dg.AssetCheckResult(
            check_name=COST, passed=per_record <= config.max_credits_per_record,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{per_record:.3g} credits per record (bound {config.max_credits_per_record:g}).",
            metadata={"credits_used": credits, "credits_per_record": round(per_record, 6),
                      "max_credits_per_record": config.max_credits_per_record},
        ))
    return checks
