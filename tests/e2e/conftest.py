"""Fixtures of the end-to-end suite: a Cargo emulator in this process, the real Dagster
webserver (and, on request, the daemon) as subprocesses pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cargo_gtm_emulator import CargoEmulator

from . import _stack


@pytest.fixture(scope="session")
def cargo_emulator() -> Iterator[CargoEmulator]:
    """The emulator the example project talks to (its own token, a fixed seed). Real time (the folder is marked
    slow in tests/conftest.py): the webserver and daemon are subprocesses whose runs wait on their own clock."""
    with CargoEmulator(token=_stack.EMULATOR_TOKEN, speed=200.0, seed=7) as emu:
        yield emu


@pytest.fixture(scope="module")
def dagster_webserver(cargo_emulator, tmp_path_factory) -> Iterator[_stack.Webserver]:
    """``dagster-webserver -m example_project.definitions`` on a free port, fresh DAGSTER_HOME
    per test module (so that modules starting the daemon do not disturb the others)."""
    home = _stack.make_dagster_home(tmp_path_factory.mktemp("dagster_home"))
    server = _stack.start_webserver(home, cargo_emulator.base_url)
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def dagster_daemon(dagster_webserver) -> Iterator[_stack.DagsterProcess]:
    """``dagster-daemon run`` on the same DAGSTER_HOME as ``dagster_webserver`` (sensors,
    schedules, automation). Stopped with the webserver at the end of the module."""
    process = _stack.start_daemon(dagster_webserver)
    try:
        yield process
    finally:
        process.stop()
