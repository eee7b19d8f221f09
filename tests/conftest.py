"""Shared fixtures: a Cargo emulator, and clients/resources pointed at it.

* ``emulator`` (= ``manual_emulator``, one instance under either name) / ``flaky_emulator``: emulators on a
  manual clock: simulated time moves only when the client waits (through :func:`manual_clock`) or the test
  calls ``advance``.
* A test whose code under test cannot take an injected clock (a subprocess, a user-facing snippet run as
  written) builds a real-clock ``CargoEmulator(speed=...)`` itself, says why in a comment, and is listed in
  :data:`SLOW`.
* ``cargo_client`` and ``cargo_resource(**overrides)``: a :class:`CargoClient` / :class:`CargoResource` on the
  test's emulator. On a manual-clock emulator they wait on a :class:`ManualClock` that advances the emulator by
  exactly what they wait, so no test waits in real time. A client or resource a test builds itself gets the
  same with ``clock=manual_clock(emu)`` / :func:`make_resource`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from cargo_gtm import CargoClient
from cargo_gtm.running.clock import ManualClock
from cargo_gtm_emulator import CargoEmulator

TOKEN = "test-token-7c1f9d"


def _share_the_default_tls_context() -> None:
    """httpx builds a TLS context for every client (it loads the CA bundle: ~50 ms, more on a loaded machine),
    and the suite creates thousands of clients, all to loopback http. Each test process builds the default
    context once, exactly as httpx builds it (same ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` rules), and shares it;
    a client given its own ``verify`` or ``cert`` still gets its own. The package itself is unchanged."""
    import os

    from httpx._transports import default

    build = default.create_ssl_context
    built: dict[tuple[Any, ...], Any] = {}

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in built:
            built[key] = build(verify=verify, cert=cert, trust_env=trust_env)
        return built[key]

    default.create_ssl_context = create_ssl_context


_share_the_default_tls_context()


def _temporary_files_in_memory() -> None:
    """Temporary files (Dagster's test instances, their SQLite databases, ``tmp_path``) in ``/dev/shm`` when there
    is one and ``TMPDIR`` is not set: SQLite syncs every commit to disk, which made a test instance plus one
    materialization take 2.7 s instead of 0.8 s on a machine shared with other work. Subprocesses inherit it
    through ``TMPDIR``. Set ``TMPDIR`` to keep them elsewhere."""
    import os
    import tempfile
    from pathlib import Path

    shm = Path("/dev/shm")
    if os.environ.get("TMPDIR") or not (shm.is_dir() and os.access(shm, os.W_OK)):
        return
    root = shm / f"dagster-cargo-tests-{os.getuid()}"
    root.mkdir(exist_ok=True)
    os.environ["TMPDIR"] = str(root)
    tempfile.tempdir = str(root)


_temporary_files_in_memory()


def _interrupts_as_in_a_terminal() -> None:
    """SIGINT handled, as in a terminal, even when this suite was started in the background by a non-interactive
    shell (``make test &``, ``nohup``: how a CI runner may start it), which leaves SIGINT *ignored* in every process
    it starts. Python installs no KeyboardInterrupt handler then, Dagster maps SIGTERM to that same "ignore", and
    the Dagster processes the tests start (``dg dev``, daemons, code servers) would outlive the SIGINT or SIGTERM a
    test sends them until their heartbeats time out. A handler set here is reset to the default in every child at
    ``exec``; an ignored signal would stay ignored."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_interrupts_as_in_a_terminal()


def _read_dagster_migrations_once() -> None:
    """Every SQLite-backed Dagster instance (``dg.instance_for_test()``) reads Alembic's migration folder again:
    about 90 migration scripts compiled and run, a third of the instance's cost. Each test process reads a
    folder once and reuses it (the scripts do not change while the tests run)."""
    try:
        from alembic.script import ScriptDirectory
    except ImportError:  # pragma: no cover - Dagster depends on Alembic
        return
    read = ScriptDirectory.from_config.__func__  # type: ignore[attr-defined]
    done: dict[Any, Any] = {}

    def from_config(cls: Any, config: Any) -> Any:
        key = (cls, config.get_main_option("script_location"))
        if key not in done:
            done[key] = read(cls, config)
        return done[key]

    ScriptDirectory.from_config = classmethod(from_config)  # type: ignore[assignment]


_read_dagster_migrations_once()


@pytest.fixture
def manual_emulator() -> Iterator[CargoEmulator]:
    """A fresh emulator on a manual clock: simulated time moves only through ``advance`` (a
    :func:`manual_clock` moves it as far as the client waits). No random run failures."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=1_000_000) as emu:
        yield emu


@pytest.fixture
def emulator(manual_emulator: CargoEmulator) -> CargoEmulator:
    """The default emulator: :func:`manual_emulator` (the same instance under both names), so that no test
    waits in real time. A client waiting on it needs ``clock=manual_clock(emulator)`` (``cargo_client``,
    ``cargo_resource`` and :func:`make_resource` do that)."""
    return manual_emulator


@pytest.fixture
def flaky_emulator() -> Iterator[CargoEmulator]:
    """A manual-clock emulator where a quarter of the runs fail (deterministically by record id)."""
    with CargoEmulator(token=TOKEN, clock="manual", seed=2, run_failure_rate=0.25, credits=1_000_000) as emu:
        yield emu


def manual_clock(emu: CargoEmulator) -> ManualClock | None:
    """A clock whose sleeps advance ``emu`` by as much, when ``emu`` runs on a manual clock (else None)."""
    return ManualClock(on_sleep=emu.advance) if emu.clock.mode == "manual" else None


def make_resource(emu: CargoEmulator, **overrides: Any) -> Any:
    """A ``CargoResource`` on ``emu``: quick polling, the emulator's manual clock when it has one."""
    from dagster_cargo import CargoResource

    settings: dict[str, Any] = {"api_token": TOKEN, "base_url": emu.base_url, "poll_interval": 0.05,
                                "max_poll_interval": 0.5, **overrides}
    return CargoResource(**settings).with_clock(manual_clock(emu))


def on_manual_clock(resources: Mapping[str, Any], emu: CargoEmulator) -> dict[str, Any]:
    """``resources`` (e.g. the ``defs.resources`` a component built from YAML) with every ``CargoResource``
    waiting on ``emu``'s manual clock (set in place: assets already bound to them wait on it too)."""
    clock = manual_clock(emu)
    return {key: (r.with_clock(clock) if hasattr(r, "with_clock") else r) for key, r in resources.items()}


def _the_emulator(request: pytest.FixtureRequest) -> CargoEmulator:
    name = "manual_emulator" if "manual_emulator" in request.fixturenames else "emulator"
    emu: CargoEmulator = request.getfixturevalue(name)
    return emu


@pytest.fixture
def cargo_client(request: pytest.FixtureRequest) -> Iterator[CargoClient]:
    """A :class:`CargoClient` on the test's emulator (manual clock when it has one)."""
    emu = _the_emulator(request)
    with CargoClient(TOKEN, base_url=emu.base_url, clock=manual_clock(emu)) as client:
        yield client


@pytest.fixture
def cargo_resource(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``cargo_resource(**overrides)``: a ``CargoResource`` on the test's emulator; ``emu=`` picks another."""

    def build(emu: CargoEmulator | None = None, **overrides: Any) -> Any:
        return make_resource(emu if emu is not None else _the_emulator(request), **overrides)

    return build


# ---------------------------------------------------------------------------------------------- markers
#: Tests that take long (subprocesses, browsers, Node toolchains, real-time fault suites, whole-package
#: linting): marked ``slow`` so that ``pytest -m "not slow"`` is the fast suite. CI (``make test``) runs all.
#: Entries are node-id prefixes: a folder, a file, or one test. Every test that waits in real time is here, and
#: says why in a comment. Listed longest first: the suite starts them first (see :func:`_start_order`).
SLOW = ("tests/test_benchmarks_smoke.py", "tests/e2e/", "tests/reliability/test_postgres_instance.py",
        "tests/reliability/test_concurrent_creates.py", "tests/reliability/test_twins.py",
        "tests/reliability/test_single_run_twins.py",
        "tests/reliability/test_crash_reexecution.py", "tests/reliability/test_fault_suite.py",
        "tests/test_example_project.py", "tests/conformance/", "tests/components/test_dg_cli.py",
        # the docs' blocks run on a real-clock emulator (speed 400): a reader's blocks make no clock of their own
        "tests/docs/test_blocks.py", "tests/docs/test_site_browser.py",
        "tests/reliability/test_single_run_faults.py", "tests/test_static_checks.py",
        "tests/reliability/test_fault_report_cli.py",
        "tests/reliability/test_reexecution_faults.py::test_execute_job_with_reexecution_options_attaches",
        "tests/dagster_layer/test_resource_outside_runs.py::test_credit_usage_summary_in_a_plain_script_on_an_envvar_resource",
        "tests/dagster_layer/test_workspace_scale.py",
        # the documented CLI backfill: `dagster asset materialize` in a subprocess, on a real-clock emulator
        "tests/dagster_layer/test_backfill.py::test_the_documented_cli_backfill_works_for_7_partitions")
#: area markers by directory: ``pytest -m conformance`` (or ``e2e``, ``reliability``) runs one area
AREAS = {"tests/conformance/": "conformance", "tests/e2e/": "e2e", "tests/reliability/": "reliability"}
#: folders whose files share session-scoped fixtures (the Node toolchain and the official client's runs): one
#: pytest-xdist worker runs each of them whole, every other file is one unit (see :func:`pytest_xdist_make_scheduler`)
SHARED_SESSION = ("tests/conformance/",)


def _slow_rank(nodeid: str) -> int | None:
    """The position in :data:`SLOW` of the first entry ``nodeid`` falls under (``None``: not slow)."""
    return next((i for i, prefix in enumerate(SLOW) if nodeid.startswith(prefix)), None)


def _start_order(items: list[pytest.Item]) -> None:
    """Longest first: the files holding slow tests in :data:`SLOW`'s order, then the others as collected. A file's
    tests stay together and in order (its module fixtures are set up once), so under pytest-xdist the workers start
    the long units first instead of finding one of them at the end (the longest-first rule)."""
    rank: dict[str, int] = {}
    for item in items:
        key = item.nodeid.split("::")[0]
        found = _slow_rank(item.nodeid)
        if found is not None:
            rank[key] = min(rank.get(key, found), found)
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(SLOW)))


@pytest.hookimpl(tryfirst=True)  # before -m selects by the markers set here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark items ``slow`` and by area from where they live (see :data:`SLOW` and :data:`AREAS`), and put the long
    ones first."""
    root = config.rootpath
    for item in items:
        try:
            path = item.path.relative_to(root).as_posix()
        except ValueError:
            continue
        for prefix, marker in AREAS.items():
            if path.startswith(prefix):
                item.add_marker(marker)
        if _slow_rank(item.nodeid) is not None or _slow_rank(path) is not None:
            item.add_marker("slow")
    _start_order(items)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores this process may use (at least 2). Part of every test waits
    (loopback HTTP between threads, subprocesses, the slow tier's real time), and a third worker on 2 cores filled
    those waits: the fast tier took 2:54 instead of 3:38 on the shared 2-core machine."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(2, cores + 1)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (pyproject's addopts), except that each folder of :data:`SHARED_SESSION` is one unit:
    its session fixtures then run once, not once per worker. (pytest-xdist's own ``xdist_group`` marks do not
    work under pytest 9, which no longer reads the node id they rewrite.) Units start in collection order, which
    :func:`_start_order` makes longest first."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndSharedFolders(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return next((prefix for prefix in SHARED_SESSION if path.startswith(prefix)), path)

    return FilesAndSharedFolders(config, log)


#: code locations the tests load in a subprocess (``dagster asset materialize -f …``), not test modules: they
#: read their emulator from the environment the test gives that subprocess
collect_ignore = ["dagster_layer/backfill_defs", "reliability/queued_twins_defs.py"]
