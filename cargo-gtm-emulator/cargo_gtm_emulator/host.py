"""The emulator as the request pipeline (:mod:`.app`) and the control plane (:mod:`.control`) see it.

:class:`~cargo_gtm_emulator.CargoEmulator` builds the pipeline, so the pipeline must not import it back: both
depend on this narrow interface instead (no import cycle, and what they need of the facade is listed in one
place). The facade satisfies it structurally.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from .faults import FaultInjector
from .inspection import BatchInfo
from .routing import Router
from .store import Store


class EmulatorHost(Protocol):
    """What :mod:`.app` and :mod:`.control` use of the emulator facade."""

    token: str
    strict: bool
    faults: FaultInjector
    store: Store
    router: Router

    @property
    def variants(self) -> dict[str, str]: ...

    @property
    def failure_plan(self) -> list[dict[str, Any]]: ...

    def _log_request(self, method: str, path: str, query: str, headers: dict[str, str],
                     body: Any) -> dict[str, Any]: ...

    def reset(self) -> None: ...

    def advance(self, seconds: float) -> None: ...

    def set_variants(self, **values: str) -> None: ...

    def set_concurrency_limit(self, limit: int | None) -> None: ...

    def plan_failures(self, plan: Mapping[str, int | str | None], *, workflow: str | None = None
                      ) -> list[dict[str, Any]]: ...

    def clear_failure_plan(self) -> None: ...

    def run_play_schedule(self, play_name: str, change_kinds: tuple[str, ...] = ("added", "updated"),
                          user_uuid: str | None = None) -> str: ...

    def redeploy(self, workflow: str, *, configs: Mapping[str, Mapping[str, Any]] | None = None,
                 add_nodes: list[dict[str, Any]] | None = None, position: int | None = None,
                 description: str | None = None) -> dict[str, Any]: ...

    def attach_output_file(self, batch_uuid: str, path: str | os.PathLike[str], fmt: str = "csv") -> None: ...

    def batches(self, workflow: str | None = None, status: str | None = None) -> list[BatchInfo]: ...
