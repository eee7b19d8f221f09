"""A Postgres-backed Dagster instance for the reliability suites: what production deployments use.

``DAGSTER_CARGO_TEST_PG_DSN`` names a server (``.ci/run`` starts a throwaway one and exports it). Each instance
gets a fresh database on it; its ``dagster.yaml`` keeps runs, events and schedules in that database, queues
runs (``QueuedRunCoordinator``) and limits the ``cargo`` pool, as a deployment would.

Without the variable the tests skip, saying why, unless ``CI`` is set: under CI a missing Postgres fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DSN_ENV = "DAGSTER_CARGO_TEST_PG_DSN"
CARGO_POOL_LIMIT = 4


def postgres_dsn() -> str:
    """The server's DSN; skips (locally) or fails (under CI) without one."""
    dsn = os.environ.get(DSN_ENV)
    if dsn:
        return dsn
    if os.environ.get("CI"):
        pytest.fail(f"{DSN_ENV} is not set under CI: .ci/run starts a throwaway Postgres and exports it; the "
                    "Postgres-backed instance tests must run there.")
    pytest.skip(f"{DSN_ENV} is not set: no Postgres server to run the suites on (.ci/run starts one).")
    raise AssertionError("unreachable")


@contextmanager
def fresh_database(dsn: str) -> Iterator[str]:
    """A new, empty database on the server of ``dsn`` (dropped afterwards); yields its DSN."""
    import psycopg2

    name = f"cargo_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield dsn.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def instance_yaml(db_dsn: str) -> str:
    """A ``dagster.yaml``: Postgres storage, queued runs, the ``cargo`` pool limited."""
    if db_dsn.startswith("postgresql://"):  # psycopg2 (dagster-postgres' driver) named explicitly: SQLAlchemy
        db_dsn = "postgresql+psycopg2://" + db_dsn[len("postgresql://"):]  # may default to psycopg 3
    return ("storage:\n"
            "  postgres:\n"
            f"    postgres_url: \"{db_dsn}\"\n"
            "run_coordinator:\n"
            "  module: dagster._core.run_coordinator\n"
            "  class: QueuedRunCoordinator\n"
            "concurrency:\n"
            "  pools:\n"
            f"    default_limit: {CARGO_POOL_LIMIT}\n"
            "  runs:\n"
            "    max_concurrent_runs: 16\n"
            "telemetry:\n"
            "  enabled: false\n")


@contextmanager
def postgres_home(home: str | Path) -> Iterator[str]:
    """Write a Postgres-backed ``dagster.yaml`` into ``home`` (fresh database); yields the database DSN."""
    with fresh_database(postgres_dsn()) as db:
        Path(home, "dagster.yaml").write_text(instance_yaml(db))
        yield db
