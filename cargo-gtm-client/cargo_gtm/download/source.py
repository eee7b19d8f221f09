"""What the downloads need of a client, as a protocol: :class:`~cargo_gtm.CargoClient` satisfies it.

Typing the download modules against this protocol, not against the client class, keeps the import graph
one-way: the client composes the downloads (:class:`~cargo_gtm.download.outputs.Outputs`), they never import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx

from ..models import Batch, Release

__all__ = ["OutputSource"]


class OutputSource(Protocol):
    """The endpoints, the clock and the plain HTTP client that output downloads use."""

    timeout: float

    @property
    def download_http(self) -> httpx.Client: ...

    def sleep(self, seconds: float) -> None: ...

    def get_batch(self, uuid: str) -> Batch: ...

    def get_release(self, uuid: str) -> Release: ...

    def count_runs(self, *, workflow_uuid: str | None = None, batch_uuid: str | None = None,
                   statuses: Sequence[str] | None = None, is_finished: bool | None = None,
                   executions_filter: Mapping[str, Any] | None = None) -> int: ...

    def get_batch_download_url(self, uuid: str, output_node_slug: str | None = None) -> str: ...

    def get_run_outputs_download_url(
        self, workflow_uuid: str, *, output_node_slug: str | None = None, format: Any = "csv",
        batch_uuid: str | None = None, statuses: Sequence[str] | None = None, limit: int | None = None,
        offset: int | None = None, executions_filter: Mapping[str, Any] | None = None) -> str: ...
