"""The concurrency and kill suites on a Postgres-backed Dagster instance (issue 19, item 9).

Deployments keep their instance in Postgres: the twins' claims and turns, the run tags re-executions attach by,
pools and the run queue all live there. Each test here runs on a fresh database of the server named by
``DAGSTER_CARGO_TEST_PG_DSN`` (``.ci/run`` starts a throwaway one), with runs queued by the
``QueuedRunCoordinator`` and the ``cargo`` pool limited to 4 (below the suites' 8 concurrent steps, so steps wait
for slots). Without the variable they skip, unless ``CI`` is set: then they fail.
"""

import os
import tempfile

import dagster as dg
import pytest
from cargo_fault_suite import SuiteConfig, run_fault_suite
from cargo_fault_suite.capture import LeakWatch
from cargo_fault_suite.crash import CRASH_POINTS, PATHS, run_scenario
from cargo_fault_suite.jobs import TOKEN_ENV
from cargo_gtm_emulator import CargoEmulator

from .postgres_instance import fresh_database, instance_yaml, postgres_dsn, postgres_home
from .test_twins import EIGHT_FAULTS, assert_terminated_twin_left_the_other_alone, assert_twins_hold, run_twins

pytestmark = pytest.mark.timeout(1800)

CREATE = ("POST /v1/orchestration/batches",)
CRASH_TOKEN = "cfs_crash_0f3e9a1b7c5d2e4f6a8b0c1d"


@pytest.fixture
def pg_instance(tmp_path):
    with postgres_home(tmp_path):
        with _from_dir(str(tmp_path)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            yield instance


def _from_dir(home):
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(home))


def test_two_twins_on_postgres(manual_emulator, pg_instance):
    outcome = run_twins(manual_emulator, pg_instance, 2, faults=["server_error", "lost_create_response"])
    print("postgres, 2 twins:", outcome.figures())
    assert_twins_hold(outcome, 2)


def test_eight_twins_on_postgres(manual_emulator, pg_instance):
    outcome = run_twins(manual_emulator, pg_instance, 8, faults=EIGHT_FAULTS)
    print("postgres, 8 twins:", outcome.figures())
    assert_twins_hold(outcome, 8)


def test_terminating_one_twin_on_postgres(manual_emulator, pg_instance):
    outcome = run_twins(manual_emulator, pg_instance, 2, faults=["server_error", "lost_create_response"],
                        interrupt={0: 2})
    print("postgres, terminated twin:", outcome.figures())
    assert outcome.succeeded == [False, True], outcome.figures()
    assert outcome.shared == [], outcome.figures()
    (survivor,) = outcome.reported[1]
    assert outcome.units[survivor] == "success", outcome.figures()


@pytest.mark.parametrize("n", [2, 8])
def test_single_run_twins_on_postgres(manual_emulator, pg_instance, n):
    faults = EIGHT_FAULTS if n == 8 else ["server_error", "lost_create_response"]
    outcome = run_twins(manual_emulator, pg_instance, n, faults=faults, kind="run")
    print(f"postgres, {n} single-run twins:", outcome.figures())
    assert_twins_hold(outcome, n, kind="run")


def test_terminating_one_single_run_twin_on_postgres(manual_emulator, pg_instance):
    outcome = run_twins(manual_emulator, pg_instance, 2, faults=["server_error", "lost_create_response"],
                        interrupt={0: 2}, kind="run")
    print("postgres, terminated single-run twin:", outcome.figures())
    assert_terminated_twin_left_the_other_alone(outcome, kind="run")


def test_concurrent_creates_suite_on_postgres():
    with fresh_database(postgres_dsn()) as db:
        config = SuiteConfig(
            materializations=16, seed=11, profile="none",
            fault_overrides=(("server_error", 0.125), ("lost_create_response", 0.125)),
            fault_paths=(("server_error", CREATE), ("lost_create_response", CREATE)),
            earlier_batches=105, crash_scenarios=False, instance_yaml=instance_yaml(db))
        report = run_fault_suite(config)
    print("postgres, concurrent creates:", report.render())
    assert report.faults["server_error"] + report.faults["lost_create_response"] > 0, report.faults
    assert report.wrong_adoptions == 0, report.render()
    assert report.missing_rows == 0, report.render()
    assert report.unaccounted_records == 0, report.render()
    assert report.duplicate_batches == 0, report.render()
    assert report.untraceable_batches == 0, report.render()
    assert round(report.credits_spent - report.credits_expected, 6) == 0, report.render()
    assert report.failed_unclear == 0, report.render()


@pytest.fixture(scope="module")
def pg_world():
    saved = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = CRASH_TOKEN
    with CargoEmulator(token=CRASH_TOKEN, speed=200.0, run_failure_rate=0.0) as emu, \
            tempfile.TemporaryDirectory(prefix="cargo-crash-pg-") as home, postgres_home(home), \
            dg.DagsterInstance.local_temp(tempdir=home) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        yield emu, instance
    if saved is None:
        os.environ.pop(TOKEN_ENV, None)
    else:
        os.environ[TOKEN_ENV] = saved


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill_9_then_reexecution_on_postgres(pg_world, point):
    emu, instance = pg_world
    path = PATHS[CRASH_POINTS.index(point) % 2]
    watch = LeakWatch(secret=CRASH_TOKEN)
    outcome = run_scenario(point, path, CRASH_POINTS.index(point), emu, instance, watch)
    assert outcome.child_exit == -9, "the first attempt was not killed at the crash point"
    assert outcome.reexecution_succeeded, outcome.error
    assert len(outcome.batches) == 1, f"{len(outcome.batches)} batches paid: {outcome.batches}"
    assert outcome.rows == 3 and outcome.credits > 0
    assert watch.leaks == 0, watch.samples


def test_twins_launched_through_the_daemon_run_queue(manual_emulator, tmp_path):
    """Two identical materializations submitted to the run queue (``dagster job launch`` with the
    QueuedRunCoordinator), dequeued and launched by ``dagster-daemon``, their steps in the limited ``cargo`` pool,
    creates faulted: each pays for and reports its own batch."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from .test_twins import KINDS, TwinsOutcome, _workflow_units

    defs = str(Path(__file__).parent / "queued_twins_defs.py")
    bin_dir = Path(sys.executable).parent
    with postgres_home(tmp_path):
        with open(tmp_path / "dagster.yaml", "a") as yaml:  # as a deployment runs its daemon: a run whose worker
            yaml.write("run_monitoring:\n  enabled: true\n  start_timeout_seconds: 180\n")  # never starts fails
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CARGO_API_TOKEN": "test-token-7c1f9d",
               "CARGO_BASE_URL": manual_emulator.base_url}
        manual_emulator.faults.next("POST /v1/orchestration/batches", "server_error")
        manual_emulator.faults.next("POST /v1/orchestration/batches", "lost_create_response")
        before = manual_emulator.credits_used
        with _from_dir(str(tmp_path)):  # the schema, once, before the daemon and the CLI open the fresh database:
            pass  # racing each other to create it, one may exhaust dagster-postgres' five retries and exit
        daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-f", defs], env=env,
                                  stdout=open(tmp_path / "daemon.log", "w"), stderr=subprocess.STDOUT)
        try:
            for i in range(2):
                subprocess.run([str(bin_dir / "dagster"), "job", "launch", "-f", defs, "-j", "twins_job",
                                "--tags", f'{{"twin": "{i}"}}'], env=env, check=True, capture_output=True,
                               timeout=300)
            with _from_dir(str(tmp_path)) as instance:
                deadline = time.monotonic() + 400
                while time.monotonic() < deadline:
                    runs = instance.get_runs(filters=dg.RunsFilter(job_name="twins_job"))
                    if len(runs) == 2 and all(r.is_finished for r in runs) or daemon.poll() is not None:
                        break
                    time.sleep(2)
                early_exit = daemon.poll()  # None: still running, as it should be
                statuses = [r.status for r in runs]
                story = _queued_runs_story(instance, runs, tmp_path / "daemon.log")
                reported, credits = [], 0.0
                for r in runs:
                    mats = [e for e in instance.all_logs(r.run_id) if e.dagster_event is not None
                            and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"]
                    meta = {k: getattr(v, "value", v)
                            for k, v in mats[0].dagster_event.step_materialization_data.materialization.metadata.items()} \
                        if mats else {}
                    reported.append([u for u in str(meta.get("dagster-cargo/batch_uuid") or "").split(",") if u])
                    credits += float(meta.get("dagster-cargo/credits_used") or 0.0)
                dequeued = [e for r in runs for e in instance.all_logs(r.run_id) if e.dagster_event is not None
                            and e.dagster_event.event_type == dg.DagsterEventType.RUN_ENQUEUED]
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    outcome = TwinsOutcome(succeeded=[s == dg.DagsterRunStatus.SUCCESS for s in statuses], reported=reported,
                           credits_reported=round(credits, 6),
                           credits_spent=round(manual_emulator.credits_used - before, 6),
                           units=_workflow_units(manual_emulator, KINDS["batch"]))
    print("postgres, 2 twins via the daemon's run queue:", outcome.figures(), f"; {len(dequeued)} runs queued, then launched by the daemon")
    assert early_exit is None, f"dagster-daemon exited ({early_exit}) before the runs finished:\n{story}"
    assert len(dequeued) == 2, story
    assert all(outcome.succeeded), f"{outcome.figures()}\n{story}"
    assert_twins_hold(outcome, 2)


def _queued_runs_story(instance, runs, daemon_log) -> str:
    """What each queued run went through (status, its engine and failure messages) and the daemon's log tail: a
    run that never finishes names where it stopped."""
    lines = []
    for r in runs:
        lines.append(f"run {r.run_id[:8]} {r.status.value}:")
        for e in instance.all_logs(r.run_id):
            kind = e.dagster_event.event_type_value if e.dagster_event is not None else "LOG"
            lines.append(f"  {e.timestamp:.1f} {kind} {(e.message or e.user_message or '')[:300]}")
    log = daemon_log.read_text(errors="replace") if daemon_log.exists() else "(no daemon log)"
    return "\n".join(lines) + "\n-- dagster-daemon log (tail):\n" + log[-4000:]
