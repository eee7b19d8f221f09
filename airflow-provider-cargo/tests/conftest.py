"""Fixtures for the provider's tests: an Airflow home of their own (SQLite, migrated once per session), a
Cargo emulator on a manual clock (time moves only as far as the client waits), the ``cargo_default``
connection as an environment variable (the token is never on a command line), and ``run_dag`` that writes a
DAG file into the session's DAGs folder and runs it with ``dag.test()``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Airflow reads its configuration at import: set it before anything imports airflow.
_HOME = Path(tempfile.mkdtemp(prefix="cargo-airflow-home-"))
_DAGS = _HOME / "dags"
_DAGS.mkdir()
os.environ.update({
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(_DAGS),
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
})
os.environ.pop("AIRFLOW_CONN_CARGO_DEFAULT", None)

TOKEN = "test-token-af-41c9"
HERE = Path(__file__).resolve().parent


def pytest_sessionstart(session: pytest.Session) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())


#: docs blocks that take minutes and need no emulator (a fresh venv's install): started in the background
#: when the session's first test starts, checked by their test, which runs last
BACKGROUND_BLOCKS = {"test_bash_block_runs[index.md-0]"}
BACKGROUND: dict[str, Any] = {}


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    late = [i for i in items if i.name in BACKGROUND_BLOCKS or i.name.startswith("test_the_install_block")]
    for item in late:
        items.remove(item)
        items.append(item)
    config.stash[_LATE] = [i.name for i in late if i.name in BACKGROUND_BLOCKS]


_LATE = pytest.StashKey[list]()


@pytest.fixture(scope="session", autouse=True)
def _background_blocks(request: pytest.FixtureRequest) -> None:
    names = request.config.stash.get(_LATE, [])
    if names:
        import test_docs

        for name in names:
            BACKGROUND[name] = test_docs.start_bash_block(name)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A fresh emulator per test on a manual clock, with no random run failures."""
    from cargo_gtm_emulator import CargoEmulator

    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=1_000_000) as emu:
        yield emu


def conn_uri(emu: Any, **extra: Any) -> str:
    return json.dumps({"conn_type": "cargo", "password": TOKEN, "host": emu.base_url,
                       "extra": {"poll_interval": 1, "max_poll_interval": 5, **extra}})


@pytest.fixture
def cargo_conn(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``cargo_default`` pointing at the emulator; every client waits on a clock that moves the emulator."""
    from cargo_gtm.running.clock import ManualClock
    from cargo_provider.hooks.cargo import CargoHook

    monkeypatch.setenv("AIRFLOW_CONN_CARGO_DEFAULT", conn_uri(emulator))
    monkeypatch.setattr(CargoHook, "clock_factory", staticmethod(lambda url: ManualClock(on_sleep=emulator.advance)))
    return emulator


@pytest.fixture
def store() -> Any:
    """The task state store's in-memory stand-in (what a task instance's ``task_state_store`` is)."""
    from cargo_provider.ledger import MemoryStore

    return MemoryStore()


def billed(emu: Any, uuids: list[str] | None = None) -> float:
    """Credits the emulator billed for these batches (all when ``None``): provider + 0.01 per execution."""
    return round(sum(b.provider_credits + 0.01 * b.executions for b in emu.batches()
                     if uuids is None or b.uuid in uuids), 6)


_HEADER = """\
from datetime import datetime, timedelta
from airflow.sdk import DAG, Asset, ObjectStoragePath, task
from cargo_provider.operators.cargo import CargoRunOperator
from cargo_provider.triggers.changes import CHANGE_FROM_EVENT
"""


def write_dag(dag_id: str, body: str) -> Any:
    """Write ``body`` (the DAG's tasks, inside ``with DAG(...) as dag:``) to the DAGs folder; import it."""
    path = _DAGS / f"{dag_id}.py"
    source = (_HEADER + f"\nwith DAG({dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) "
              f"as dag:\n" + textwrap.indent(textwrap.dedent(body).strip() + "\n", "    "))
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"cargo_test_dag_{dag_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def xcom(dag_id: str, task_id: str, run_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dag_id, task_id=task_id, run_id=run_id,
                                                  key="return_value").one_or_none()
        if row is None:
            return None
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


def ti_states(dag_id: str, run_id: str) -> dict[str, str | None]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: (ti.state.value if hasattr(ti.state, "value") else ti.state)
                for ti in session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id)}


@pytest.fixture
def run_dag(cargo_conn: Any) -> Any:
    """``run_dag(dag_id, body) -> (dag_run, states)``: write the DAG, run it with ``dag.test()``."""

    def run(dag_id: str, body: str) -> tuple[Any, dict[str, str | None]]:
        dag = write_dag(dag_id, body)
        dag_run = dag.test()
        return dag_run, ti_states(dag_id, dag_run.run_id)

    return run


@pytest.fixture
def no_ramp(monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget with nothing to estimate from, without ramp rounds: one batch and the in-flight guard alone (as a
    play runs in Airflow), for tests of that guard and of what a retry counts after it stopped a batch."""
    from cargo_provider.step import CargoStep

    monkeypatch.setattr(CargoStep, "_ramp_plan", lambda self: None)
