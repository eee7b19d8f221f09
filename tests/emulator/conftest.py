"""Fixtures: an emulator on loopback with a manual clock, and a raw httpx client (not the project's client)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cargo_gtm_emulator import CargoEmulator

TOKEN = "test-token"


@pytest.fixture()
def emu() -> Iterator[CargoEmulator]:
    with CargoEmulator(token=TOKEN, seed=0, run_failure_rate=0.1, credits=100_000, clock="manual") as e:
        yield e


@pytest.fixture()
def api(emu: CargoEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.api_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


def run_to_completion(emu: CargoEmulator, api: httpx.Client, batch_uuid: str, step: float = 30.0,
                      max_steps: int = 500) -> dict:
    """Advance the manual clock until the batch is terminal; return the batch."""
    for _ in range(max_steps):
        batch = api.get(f"/orchestration/batches/{batch_uuid}").json()["batch"]
        if batch["status"] in ("success", "error", "cancelled"):
            return batch
        emu.advance(step)
    raise AssertionError("batch did not finish")
