"""kill -9 at each step of a materialization, then re-execution: exactly one batch, paid once.

Each scenario runs the first attempt in a child process that SIGKILLs itself at the crash point; the run is
marked failed (as Dagster's run monitoring does) and re-executed. CI runs each crash point once, alternating
the re-execution path; ``DAGSTER_CARGO_LONG=1`` runs every point with both paths (the README's fault report
runs them all too).
"""

import os
import tempfile

import dagster as dg
import pytest
from cargo_fault_suite.capture import LeakWatch
from cargo_fault_suite.crash import CRASH_POINTS, PATHS, run_scenario
from cargo_fault_suite.jobs import TOKEN_ENV
from cargo_gtm_emulator import CargoEmulator

TOKEN = "cfs_crash_0f3e9a1b7c5d2e4f6a8b0c1d"
LONG = os.environ.get("DAGSTER_CARGO_LONG") == "1"
CASES = [(p, q) for p in CRASH_POINTS for q in PATHS] if LONG else \
    [(p, PATHS[i % 2]) for i, p in enumerate(CRASH_POINTS)]


@pytest.fixture(scope="module")
def world():
    saved = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = TOKEN
    # real time (the file is marked slow in tests/conftest.py): the first attempt runs in a child process that
    # kills itself, so the client under test waits on its own system clock
    with CargoEmulator(token=TOKEN, speed=200.0, run_failure_rate=0.0) as emu, \
            tempfile.TemporaryDirectory(prefix="cargo-crash-") as home, \
            dg.DagsterInstance.local_temp(tempdir=home) as instance:
        yield emu, instance
    if saved is None:
        os.environ.pop(TOKEN_ENV, None)
    else:
        os.environ[TOKEN_ENV] = saved


@pytest.mark.parametrize("point, path", CASES)
def test_kill_9_then_reexecution_pays_for_exactly_one_batch(world, point, path):
    emu, instance = world
    watch = LeakWatch(secret=TOKEN)
    outcome = run_scenario(point, path, CASES.index((point, path)), emu, instance, watch)
    assert outcome.child_exit == -9, "the first attempt was not killed at the crash point"
    assert outcome.reexecution_succeeded, outcome.error
    assert len(outcome.batches) == 1, f"{len(outcome.batches)} batches paid: {outcome.batches}"
    assert outcome.rows == 3 and outcome.credits > 0
    assert watch.leaks == 0, watch.samples
