"""Real processes: Airflow's api-server, scheduler (LocalExecutor: the worker), dag-processor and triggerer on
SQLite, against the emulator on loopback. The emulator's manual clock is moved by this test (a ticker, which
the test can stop), so "the batch is still running" is a decision of the test, not a race.

* kill -9 of the task process right after Cargo created the batch, before and after its uuid is saved
  (retries=1): each DAG run ends with exactly one batch, and the credits the emulator billed equal the
  XCom's ``credits_total``;
* ``execution_timeout`` while deferred and while polling in the worker: the batch is cancelled;
* clearing a deferred task: its batch is cancelled (the trigger's ``on_kill``), the cleared task runs a new
  batch that succeeds.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN

pytestmark = pytest.mark.processes

HERE = Path(__file__).resolve().parent
COMPONENTS = {"api-server": ["api-server", "--port", "{port}"], "scheduler": ["scheduler"],
              "dag-processor": ["dag-processor"], "triggerer": ["triggerer"]}
DAG_IDS = ("cargo_kill_before_save", "cargo_kill_after_save", "cargo_timeout_deferred", "cargo_timeout_in_worker",
           "cargo_clear", "cargo_segment_changes")


class Ticker:
    """Moves the emulator's manual clock (2 simulated seconds every 0.1 s) until stopped."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.running = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.running.set()
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            if self.running.is_set():
                self.emu.advance(2.0)
            time.sleep(0.1)


class Stack:
    def __init__(self, home: Path, env: dict[str, str], emu: Any, ticker: Ticker) -> None:
        self.home, self.env, self.emu, self.ticker = home, env, emu, ticker
        self.db = home / "airflow.db"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, port: int) -> None:
        args = [a.format(port=port) for a in COMPONENTS[name]]
        self.procs[name] = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), *args], env=self.env,
                                            stdout=open(self.home / f"{name}.log", "a"), stderr=subprocess.STDOUT)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def airflow(self, *args: str) -> str:
        exe = Path(sys.executable).with_name("airflow")
        done = subprocess.run([str(exe), *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        for _ in range(20):
            try:
                with sqlite3.connect(self.db, timeout=10) as conn:
                    return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError:  # locked by a component: read again
                time.sleep(0.2)
        raise AssertionError(f"could not read {self.db}")

    def trigger(self, dag_id: str) -> str:
        self.airflow("dags", "trigger", dag_id)
        return self.query("select run_id from dag_run where dag_id=? order by id desc limit 1", dag_id)[0][0]

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("select state from dag_run where dag_id=? and run_id=?", dag_id, run_id)
        return rows[0][0] if rows else None

    def ti(self, dag_id: str, run_id: str) -> tuple[Any, ...]:
        return self.query("select state, try_number from task_instance where dag_id=? and run_id=?", dag_id,
                          run_id)[0]

    def summary(self, dag_id: str, run_id: str) -> dict[str, Any]:
        (value,) = self.query("select value from xcom where dag_id=? and run_id=? and key='return_value'",
                              dag_id, run_id)[0]
        return json.loads(value) if isinstance(value, str) else value

    def batches(self, dag_id: str) -> list[Any]:
        return [b for b in self.emu.batches() if b.inputs and str(b.inputs[0].get("domain", "")).startswith(dag_id)]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, logs: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    tails = ""
    if logs is not None:
        for log in sorted(logs.glob("*.log")):
            tails += f"\n--- {log.name}\n" + log.read_text()[-3000:]
    raise AssertionError(f"timed out waiting for {what}{tails}")


def _play_segment(emu: Any) -> str:
    from cargo_gtm import CargoClient

    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        return str(client.find_play("Score inbound companies").segment_uuid)


def _answers(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, port: int, emu: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"), "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "cargo-provider-tests-only",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5", "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "CARGO_TEST_MARKERS": str(home / "markers"), "CARGO_TEST_SEGMENT": _play_segment(emu),
        # the connection comes from the environment, never a command line
        "AIRFLOW_CONN_CARGO_DEFAULT": json.dumps({"conn_type": "cargo", "password": TOKEN, "host": emu.base_url,
                                                  # a first poll 5 s after deferring: a trigger that fires before
                                                  # the scheduler handled the deferring process's exit gets the
                                                  # resumed task marked failed (see docs/airflow/known-issues.md)
                                                  "extra": {"poll_interval": 5, "max_poll_interval": 10}}),
    })
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from cargo_gtm_emulator import CargoEmulator

    home = tmp_path_factory.mktemp("airflow-processes")
    shutil.copytree(HERE / "process_dags", home / "dags")
    (home / "markers").mkdir()
    port = _free_port()
    with CargoEmulator(token=TOKEN, clock="manual", seed=3, run_failure_rate=0.0, credits=1_000_000) as emu:
        env = _env(home, port, emu)
        ticker = Ticker(emu)
        stack = Stack(home, env, emu, ticker)
        stack.airflow("db", "migrate")
        stack.port = port
        for name in COMPONENTS:
            stack.start(name, port)
        try:
            wait_for("the api-server (the tasks' execution API) to answer", lambda: _answers(port), logs=home)
            wait_for("the DAGs to be parsed", lambda: len(stack.query(
                f"select dag_id from dag where dag_id in ({','.join('?' * len(DAG_IDS))})", *DAG_IDS)) == len(DAG_IDS),
                logs=home)
            yield stack
        finally:
            ticker.done.set()
            for name in list(stack.procs):
                stack.stop(name)


@pytest.mark.parametrize("dag_id", ["cargo_kill_before_save", "cargo_kill_after_save"])
def test_kill_9_around_the_create_leaves_exactly_one_batch(stack: Stack, dag_id: str) -> None:
    run_id = stack.trigger(dag_id)
    state = wait_for(f"{dag_id} to finish", lambda: stack.run_state(dag_id, run_id) in ("success", "failed")
                     and stack.run_state(dag_id, run_id), logs=stack.home)
    assert state == "success", stack.ti(dag_id, run_id)
    assert (stack.home / "markers" / dag_id).exists()  # the first try really was killed at that point
    assert stack.ti(dag_id, run_id)[1] == 2  # ... and the retry finished the job
    (batch,) = stack.batches(dag_id)
    summary = stack.summary(dag_id, run_id)
    assert summary["batch_uuids"] == [batch.uuid] == [(stack.home / "markers" / dag_id).read_text()]
    assert batch.status == "success"
    assert summary["credits_total"] == round(batch.provider_credits + 0.01 * batch.executions, 6) > 0


@pytest.mark.parametrize("dag_id", ["cargo_timeout_deferred", "cargo_timeout_in_worker"])
def test_execution_timeout_cancels_the_batch(stack: Stack, dag_id: str) -> None:
    stack.ticker.running.clear()  # time stands still: the batch cannot finish
    try:
        run_id = stack.trigger(dag_id)
        wait_for(f"{dag_id}'s batch", lambda: stack.batches(dag_id), logs=stack.home)
        state = wait_for(f"{dag_id} to fail", lambda: stack.run_state(dag_id, run_id) in ("success", "failed")
                         and stack.run_state(dag_id, run_id), logs=stack.home)
        (batch,) = stack.batches(dag_id)
        assert state == "failed" and batch.status in ("cancelling", "cancelled"), (state, batch.status)
    finally:
        stack.ticker.running.set()


def test_clearing_a_deferred_task_cancels_its_batch_and_runs_a_new_one(stack: Stack) -> None:
    dag_id = "cargo_clear"
    stack.ticker.running.clear()
    try:
        run_id = stack.trigger(dag_id)
        wait_for("the task to defer", lambda: stack.ti(dag_id, run_id)[0] == "deferred" and stack.batches(dag_id),
                 logs=stack.home)
        (first,) = stack.batches(dag_id)
        stack.airflow("tasks", "clear", dag_id, "--yes")
        cancelled_at = time.monotonic()
        wait_for("the first batch to be cancelled", lambda: stack.batches(dag_id)[0].status in
                 ("cancelling", "cancelled"), timeout=60, logs=stack.home)
        assert time.monotonic() - cancelled_at < 60
    finally:
        stack.ticker.running.set()
    state = wait_for("the cleared run to finish", lambda: stack.run_state(dag_id, run_id) in ("success", "failed")
                     and stack.run_state(dag_id, run_id), logs=stack.home)
    batches = stack.batches(dag_id)
    assert state == "success" and len(batches) == 2 and batches[0].uuid == first.uuid
    assert batches[0].status == "cancelled" and batches[1].status == "success"
    assert stack.summary(dag_id, run_id)["batch_uuids"] == [batches[1].uuid]


def test_segment_changes_fire_once_each_across_a_triggerer_restart(stack: Stack) -> None:
    """AssetWatcher + CargoSegmentChangeTrigger in the real triggerer: each new change runs the play once over
    its records; after the triggerer is restarted, the next change runs once more and nothing runs twice."""
    dag_id = "cargo_segment_changes"

    def runs() -> list[tuple[str, str]]:
        return stack.query("select run_id, state from dag_run where dag_id=? order by id", dag_id)

    def add(name: str) -> None:
        stack.emu.store.upsert_records("companies", [{"name": name, "domain": f"{name}.com", "employee_count": 900,
                                                      "created_at": "2026-12-01T00:00:00Z"}])

    wait_for("the watcher to record its starting watermark", lambda: stack.query(
        "select count(*) from asset_state_store")[0][0] > 0, logs=stack.home)
    add("first-change-co")
    wait_for("one run over the first change", lambda: [s for _, s in runs()] == ["success"], logs=stack.home)
    stack.stop("triggerer")
    add("second-change-co")  # made while no triggerer runs: must not be missed
    stack.start("triggerer", stack.port)
    wait_for("one run over the second change", lambda: [s for _, s in runs()] == ["success", "success"],
             logs=stack.home)
    time.sleep(8)  # several polls of the restarted watcher: nothing fires twice
    assert len(runs()) == 2
    change_batches = [b for b in stack.emu.batches() if b.data_kind == "change"]
    assert len(change_batches) == 2 and all(b.runs_count == 1 for b in change_batches)
    assert len({b.wire["data"]["changeUuid"] for b in change_batches}) == 2
