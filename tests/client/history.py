"""A workflow with a long history: thousands of earlier batches, seeded straight into the emulator's store
(the API's own create path, without HTTP), a fixed number of simulated seconds apart, all finished."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cargo_gtm_emulator import CargoEmulator
from cargo_gtm_emulator.backend.batches import create_batch_from


def seed_history(emu: CargoEmulator, workflow_uuid: str, count: int, data: Mapping[str, Any],
                 spacing: float = 1.0) -> set[str]:
    """``count`` batches of ``data`` on ``workflow_uuid``, created ``spacing`` simulated seconds apart from now
    on, then run to the end (the clock moves past the last one); their uuids."""
    start = emu.store.sync()
    made = {create_batch_from(emu.store, {"workflowUuid": workflow_uuid, "data": dict(data)},
                              start + i * spacing).uuid for i in range(count)}
    emu.advance(count * spacing + 600)
    return made
