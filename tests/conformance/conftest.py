"""Fixtures of the conformance suite: the Node toolchain, emulators, and one run of the
official-client driver per scenario (session-scoped: each scenario runs once)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from . import _toolchain

TOKEN = "conformance-token"


def _fail_toolchain(e: Exception):
    pytest.fail(f"conformance toolchain unavailable: {e}", pytrace=False)


@pytest.fixture(scope="session")
def node_ready() -> str:
    try:
        return _toolchain.ensure_node_modules()
    except _toolchain.ToolchainError as e:
        _fail_toolchain(e)


@pytest.fixture(scope="session")
def schema_dir(node_ready) -> Path:
    try:
        return _toolchain.ensure_schemas()
    except _toolchain.ToolchainError as e:
        _fail_toolchain(e)


@pytest.fixture(scope="session")
def emulator_cls():
    try:
        from cargo_gtm_emulator import CargoEmulator
    except ImportError as e:  # the emulator is part of the project: missing = failure
        pytest.fail(f"cargo_gtm_emulator.CargoEmulator cannot be imported: {e}", pytrace=False)
    return CargoEmulator


def _driver(emu, scenario: str, **kw) -> dict:
    try:
        return _toolchain.run_driver(emu.base_url, kw.pop("token", emu.token), scenario, **kw)
    except _toolchain.ToolchainError as e:
        _fail_toolchain(e)


# Real time (the folder is marked slow in tests/conftest.py): the official client is a Node subprocess that waits on
# its own clock, so the lifecycle and fidelity runs need the emulator's real clock; the catalog, credits and auth runs
# never wait on a batch (the manual-clock runs below advance the clock themselves).
@pytest.fixture(scope="session")
def catalog_run(node_ready, emulator_cls):
    with emulator_cls(token=TOKEN, speed=50.0, seed=0, port=0) as emu:
        doc = _driver(emu, "catalog")
        doc["workspace_uuid"] = emu.workspace_uuid
        return doc


def _wait_terminal(emu, uuids: list[str], step: float = 30.0, max_steps: int = 2000) -> dict:
    """Advance the manual clock until every batch is terminal; return {uuid: status}."""
    statuses: dict[str, str] = {}
    with httpx.Client(base_url=emu.base_url, headers={"authorization": f"Bearer {emu.token}"}) as http:
        for _ in range(max_steps):
            for u in uuids:
                r = http.get(f"/v1/orchestration/batches/{u}")
                statuses[u] = r.json().get("batch", {}).get("status") if r.status_code == 200 else f"HTTP {r.status_code}"
            if all(s in ("success", "error", "cancelled", "skipped") for s in statuses.values()):
                return statuses
            emu.advance(step)
    return statuses


@pytest.fixture(scope="session")
def manual_runs(node_ready, emulator_cls):
    """start (batches unfinished) -> advance the manual clock -> finish (batches terminal)."""
    with emulator_cls(token=TOKEN, speed=1.0, seed=0, port=0, clock="manual", run_failure_rate=0.05) as emu:
        start = _driver(emu, "start")
        uuids = [c["uuid"] for c in (start.get("context") or {}).get("created", {}).values() if c.get("uuid")]
        statuses = _wait_terminal(emu, uuids)
        finish = _driver(emu, "finish", state=start.get("context") or {}) if start.get("context") else {
            "calls": {}, "context": None, "fatal": {"message": "start scenario failed", "stack": ""}}
        return {"start": start, "finish": finish, "statuses_after_advance": statuses}


@pytest.fixture(scope="session")
def lifecycle_run(node_ready, emulator_cls):
    with emulator_cls(token=TOKEN, speed=200.0, seed=1, port=0, clock="real") as emu:
        t0 = time.monotonic()
        doc = _driver(emu, "lifecycle", extra=["--timeout-ms", "90000"], timeout=150)
        doc["wall_seconds"] = time.monotonic() - t0
        return doc


@pytest.fixture(scope="session")
def fidelity_run(node_ready, emulator_cls):
    """Behaviours from Cargo's own docs, through the official client (real clock, no planned failures:
    the only failing runs are the records without a domain)."""
    with emulator_cls(token=TOKEN, speed=200.0, seed=0, port=0, clock="real", run_failure_rate=0.0) as emu:
        doc = _driver(emu, "fidelity", extra=["--timeout-ms", "90000"], timeout=150)
        doc["credits_used"] = emu.credits_used
        doc["provider_credits"] = emu.store.provider_credits_used
        doc["executions"] = emu.store.executions_billed
        return doc


@pytest.fixture(scope="session")
def credits_run(node_ready, emulator_cls):
    with emulator_cls(token=TOKEN, speed=50.0, seed=0, port=0, credits=0) as emu:
        return _driver(emu, "credits")


@pytest.fixture(scope="session")
def releases_run(node_ready, emulator_cls):
    """Redeploys through the official client (manual clock: batches stay where they are)."""
    with emulator_cls(token=TOKEN, seed=0, port=0, clock="manual") as emu:
        return _driver(emu, "releases")


@pytest.fixture(scope="session")
def auth_run(node_ready, emulator_cls):
    with emulator_cls(token=TOKEN, speed=50.0, seed=0, port=0) as emu:
        return _driver(emu, "auth", token="definitely-not-the-token")


@pytest.fixture(scope="session")
def all_runs(catalog_run, manual_runs, lifecycle_run, credits_run, auth_run) -> dict[str, dict]:
    return {
        "catalog": catalog_run,
        "start": manual_runs["start"],
        "finish": manual_runs["finish"],
        "lifecycle": lifecycle_run,
        "credits": credits_run,
        "auth": auth_run,
    }
