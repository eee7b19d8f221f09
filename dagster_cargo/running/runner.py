"""What the heal and single-run paths need of a Cargo resource, as a protocol.

:class:`~dagster_cargo.CargoResource` satisfies it. Typing those modules against this protocol, not against the
resource class, keeps the import graph one-way: the resource calls into them, they never import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cargo_gtm import CargoClient
    from cargo_gtm.models import Batch
    from cargo_gtm.running import StepSettings, WaitSettings

    from ..definitions.workspace_data import CargoWorkflowProps
    from .execution import BatchRunSpec, CargoBatchResult

__all__ = ["CargoRunner"]


class CargoRunner(Protocol):
    """The settings and entry points of a Cargo resource that heal and single runs read."""

    @property
    def poll_interval(self) -> float: ...
    @property
    def max_poll_interval(self) -> float: ...
    @property
    def poll_timeout(self) -> float: ...
    @property
    def poll_average_interval(self) -> float: ...
    @property
    def cancel_on_termination(self) -> bool: ...
    @property
    def credit_breakdown(self) -> bool: ...
    @property
    def failed_rows(self) -> str: ...
    @property
    def single_run_threshold(self) -> int: ...
    @property
    def max_records_per_batch(self) -> int: ...
    @property
    def max_batch_payload_bytes(self) -> int: ...

    def get_client(self) -> CargoClient: ...
    def batch_url(self, batch: Batch) -> str | None: ...
    def run_batches(self, context: Any, specs: list[BatchRunSpec],
                    settings: StepSettings | None = None) -> CargoBatchResult: ...
    def wait_settings(self) -> WaitSettings: ...
    def workflow_props(self, item: Any, kind: str) -> CargoWorkflowProps: ...
