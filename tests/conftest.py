"""Shared fixtures: a Cargo emulator on loopback and clients/resources pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dagster_cargo.emulator import CargoEmulator

TOKEN = "test-token-7c1f9d"


@pytest.fixture
def emulator() -> Iterator[CargoEmulator]:
    """A fresh emulator per test: fast simulated time, no random run failures."""
    with CargoEmulator(token=TOKEN, speed=400.0, seed=1, run_failure_rate=0.0, credits=1_000_000) as emu:
        yield emu


@pytest.fixture
def flaky_emulator() -> Iterator[CargoEmulator]:
    """An emulator where a quarter of the runs fail (deterministically by record id)."""
    with CargoEmulator(token=TOKEN, speed=400.0, seed=2, run_failure_rate=0.25, credits=1_000_000) as emu:
        yield emu
