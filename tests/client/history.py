"""A workflow with a long history: thousands of earlier batches, seeded straight into the emulator's store
(the API's own create path, without HTTP), one simulated second apart, all finished."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cargo_gtm_emulator import CargoEmulator
from cargo_gtm_emulator.backend.batches import create_batch_from


def seed_history(emu: CargoEmulator, workflow_uuid: str, count: int, data: Mapping[str, Any]) -> set[str]:
    """``count`` batches of ``data`` on ``workflow_uuid``, created one simulated second apart before now's clock
    moves on, then run to the end; their uuids."""
    start = emu.store.sync()
    made = {create_batch_from(emu.store, {"workflowUuid": workflow_uuid, "data": dict(data)}, start + i).uuid
            for i in range(count)}
    emu.advance(count + 600)
    return made
