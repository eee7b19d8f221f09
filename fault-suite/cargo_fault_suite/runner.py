"""Run N materializations of a Cargo tool asset against a faulty emulator and record each one.

No ``from __future__ import annotations`` here: this module defines a Dagster asset.
"""

import hashlib
import os
import random
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd
from cargo_gtm_emulator import CargoEmulator, FaultProfile

from .capture import LeakWatch, OutputCapture, watch_logs
from .jobs import (
    DEBUG_ENV,
    PLAY_NAME,
    PLAY_SLOTS,
    TOKEN_ENV,
    TOOL_NAME,
    TOOL_SLOTS,
    resource_config,
    stored_output,
    suite_job,
)

DOMAIN = re.compile(r"^m(\d+)-(\d+)\.example$")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ENDPOINT = re.compile(r"(?:GET|POST|PUT|PATCH|DELETE) /[\w/{}.-]+")
# Dagster wraps user-code errors; the error that says what went wrong is the first one below these
WRAPPERS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError", "DagsterExecutionInterruptedError"}


@dataclass(frozen=True)
class SuiteConfig:
    """What the suite runs. Timeouts are short so that ``slow_response`` faults time out."""

    materializations: int = 200
    seed: int = 1
    profile: str = "mixed"
    min_records: int = 1
    max_records: int = 20
    speed: float = 400.0
    run_failure_rate: float = 0.05
    request_timeout: float = 0.5
    connect_timeout: float = 0.5
    poll_interval: float = 0.01
    max_poll_interval: float = 0.1
    poll_timeout: float = 60.0
    # probabilities overriding the preset's, e.g. (("unknown_status", 0.25),) so that a small run surely
    # sees every kind
    fault_overrides: tuple[tuple[str, float], ...] = ()
    # fault kinds restricted to some request targets, e.g. (("server_error", ("POST /v1/orchestration/batches",)),)
    fault_paths: tuple[tuple[str, tuple[str, ...]], ...] = ()
    earlier_batches: int = 150  # batches each workflow has before the suite starts (> one list page)
    crash_scenarios: bool = True  # kill -9 at each step of a materialization, then re-execute (see .crash)
    crash_paths: tuple[str, ...] = ("ui", "python_api")  # re-execution paths tried after each crash
    # the instance's dagster.yaml (e.g. Postgres storage, queued runs, pool limits); None: a SQLite temp instance
    instance_yaml: str | None = None

    def fault_profile(self) -> FaultProfile:
        paths = {kind: list(targets) for kind, targets in self.fault_paths}
        return FaultProfile.preset(self.profile, seed=self.seed, paths=paths, **dict(self.fault_overrides))

    def profile_label(self) -> str:
        extra = ", ".join(f"{k}={v:g}" for k, v in self.fault_overrides)
        return self.profile + (f" with {extra}" if extra else "")

    def token(self) -> str:
        """The API token of the suite: distinctive, so any copy of it can be found.

        The same for every seed: the multiprocess executor's forkserver outlives one suite run and keeps the
        environment it started with, so a token per seed would reach a later run's steps as a stale one."""
        return "cfs_" + hashlib.sha256(b"dagster-cargo fault suite").hexdigest()[:32]


@dataclass
class Outcome:
    """One materialization: its input, whether it succeeded, and what it said if not."""

    index: int
    domains: list[str]
    run_id: str | None = None
    succeeded: bool = False
    error: str = ""  # the message of the error that explains the failure (one error, not the chain)
    error_class: str = ""
    clear: bool = False
    frame: pd.DataFrame | None = None
    batch_uuids: list[str] = field(default_factory=list)  # the batches the materialization reported
    run_uuids: list[str] = field(default_factory=list)  # the single runs it reported (a record or a few)
    seconds: float = 0.0
    kind: str = "tool"  # "tool" (domains) or "play" (window)
    step: str = "tool_0"
    window: tuple[str, str] = ("", "")
    round: int = 0


def domains_for(index: int, count: int) -> list[str]:
    """Input domains of materialization ``index``: unique to it, so each batch traces back."""
    return [f"m{index:04d}-{j:02d}.example" for j in range(count)]


def materialization_of(domain: Any) -> int | None:
    found = DOMAIN.match(str(domain))
    return int(found.group(1)) if found else None


def is_clear(message: str) -> bool:
    """Names what failed (an endpoint or a UUID) and says what to do next ("Next step")."""
    return "Next step" in message and bool(UUID.search(message) or ENDPOINT.search(message))


def explaining_error(info: Any) -> Any:
    """The first error of a ``SerializableErrorInfo`` chain that is not a Dagster wrapper."""
    current = info
    while current is not None and current.cls_name in WRAPPERS:
        current = current.cause or current.context
    return current or info


def _watch_exception(exc: BaseException | None, watch: LeakWatch) -> None:
    """Search an exception, its cause/context chain, their texts, reprs, attributes and tracebacks."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False))
        watch.check("exception text", f"{exc!s} {exc!r} {text} {vars(exc)!r} {exc.args!r}")
        exc = exc.__cause__ or exc.__context__


def _scan_run(instance: dg.DagsterInstance, run_id: str, watch: LeakWatch) -> None:
    from dagster._serdes import serialize_value

    for entry in instance.all_logs(run_id):
        text = str(entry)
        try:
            text += serialize_value(entry)
        except Exception as exc:  # keep searching what we have; note what could not be serialized
            text += f" <not serializable: {exc!r}>"
        watch.check("Dagster event", text)
    run = instance.get_run_by_id(run_id)
    watch.check("Dagster run (tags, config)", repr(run))


def _record_failure(outcome: Outcome, result: Any, step: str, watch: LeakWatch) -> None:
    failure = result.failure_data_for_node(step)
    info: Any = failure.error if failure is not None else None
    if info is None:  # failed outside the step: take the run failure's error
        for event in result.all_events:
            error = getattr(getattr(event, "event_specific_data", None), "error", None)
            if error is not None:
                info = error
    if info is None:
        outcome.error, outcome.error_class = "run failed without error information", ""
        return
    watch.check("exception text", info.to_string())
    err = explaining_error(info)
    outcome.error, outcome.error_class = err.message.strip(), err.cls_name
    outcome.clear = is_clear(outcome.error)


def _reported_batches(result: Any, step: str, key: str = "dagster-cargo/batch_uuid") -> list[str]:
    """The UUIDs the step's materialization reported under ``key`` (or its plural ``<key>s``)."""
    mats = result.asset_materializations_for_node(step)
    if not mats:
        return []
    meta = {k: getattr(v, "value", v) for k, v in mats[0].metadata.items()}
    found = meta.get(f"{key}s") or meta.get(key)
    return [u for u in str(found).split(",") if u] if found else []


@dataclass
class SuiteRun:
    """Everything the report is computed from."""

    config: SuiteConfig
    outcomes: list[Outcome]
    emulator: CargoEmulator
    watch: LeakWatch
    output: str
    wall_seconds: float
    earlier: set[str] = field(default_factory=set)  # batches that existed before the suite (never anyone's)
    crashes: list[Any] = field(default_factory=list)  # crash scenarios (see .crash)


def plan(config: SuiteConfig, bounds: tuple[float, float] = (0.0, 365 * 86400.0)) -> list[Outcome]:
    """Every materialization's input: rounds of TOOL_SLOTS + PLAY_SLOTS steps, alternating tool and play."""
    sizes = random.Random(config.seed)
    slots = TOOL_SLOTS + PLAY_SLOTS
    outcomes = []
    for index in range(config.materializations):
        position = index % slots
        if position % 2 == 0:
            outcome = Outcome(index=index, domains=domains_for(index, sizes.randint(config.min_records,
                                                                                    config.max_records)))
            outcome.kind, outcome.step = "tool", f"tool_{position // 2}"
        else:
            outcome = Outcome(index=index, domains=[], kind="play", step=f"play_{position // 2}",
                              window=play_window(index, config, bounds))
        outcome.round = index // slots
        outcomes.append(outcome)
    return outcomes


def play_window(index: int, config: SuiteConfig, bounds: tuple[float, float]) -> tuple[str, str]:
    """A time window unique to materialization ``index`` (a partition of the companies' ``created_at``):
    the data's time span cut into one window per materialization."""
    from datetime import datetime, timedelta, timezone

    width = timedelta(seconds=(bounds[1] - bounds[0]) / max(1, config.materializations))
    start = datetime.fromtimestamp(bounds[0], tz=timezone.utc) + index * width
    stop = start + width - timedelta(milliseconds=1)
    fmt = "%Y-%m-%dT%H:%M:%S.%f"
    return start.strftime(fmt)[:-3] + "Z", stop.strftime(fmt)[:-3] + "Z"


def _round_config(outcomes: list[Outcome], emu: CargoEmulator, config: SuiteConfig) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for o in outcomes:
        if o.kind == "tool":
            ops[o.step] = {"config": {"index": o.index, "domains": o.domains}}
        else:
            ops[o.step] = {"config": {"index": o.index, "start": o.window[0], "end": o.window[1]}}
    fields = {"request_timeout": config.request_timeout, "connect_timeout": config.connect_timeout,
              "poll_interval": config.poll_interval, "max_poll_interval": config.max_poll_interval,
              "poll_timeout": config.poll_timeout, "progress_log_interval": 0.2}
    return {"ops": ops, "resources": resource_config(emu.base_url, **fields)}


def run_round(outcomes: list[Outcome], emu: CargoEmulator, instance: dg.DagsterInstance, config: SuiteConfig,
              watch: LeakWatch) -> None:
    """One run of the round job: its steps (up to 8) at once in subprocesses; fills ``outcomes``."""
    started = time.monotonic()
    selection = [dg.AssetKey(o.step) for o in outcomes]
    try:
        with dg.execute_job(dg.reconstructable(suite_job), instance=instance, asset_selection=selection,
                            run_config=_round_config(outcomes, emu, config), raise_on_error=False,
                            tags={"fault-suite/round": str(outcomes[0].round)}) as result:
            _scan_run(instance, result.run_id, watch)
            for o in outcomes:
                o.run_id = result.run_id
                o.batch_uuids = _reported_batches(result, o.step)
                o.run_uuids = _reported_batches(result, o.step, key="dagster-cargo/run_uuid")
                if result.is_node_success(o.step):
                    try:
                        o.frame = stored_output(instance, o.step)
                        o.succeeded = True
                    except Exception as exc:  # succeeded but its output cannot be read: an unclear failure
                        o.error, o.error_class = f"output of a successful step unreadable: {exc}", type(exc).__name__
                else:
                    _record_failure(o, result, o.step, watch)
    except Exception as exc:  # the suite itself must keep going; these count as unclear failures
        _watch_exception(exc, watch)
        for o in outcomes:
            o.error, o.error_class = f"execute_job() raised: {exc}", type(exc).__name__
    for o in outcomes:
        o.seconds = time.monotonic() - started


def seed_earlier_batches(emu: CargoEmulator, config: SuiteConfig) -> set[str]:
    """``config.earlier_batches`` finished batches on the tool's and the play's workflows, before any fault."""
    from cargo_gtm import CargoClient, filter_data, records_data

    if config.earlier_batches <= 0:
        return set()
    saved, emu.faults.profile = emu.faults.profile, None
    made: set[str] = set()
    try:
        with CargoClient(config.token(), base_url=emu.base_url) as client:
            tool = client.find_tool(TOOL_NAME)
            play = client.find_play(PLAY_NAME)
            for i in range(config.earlier_batches):
                made.add(client.create_batch(tool.workflow_uuid, records_data([{"domain": f"earlier-{i}.example"}]),
                                             reconcile=False).uuid)
                made.add(client.create_batch(play.workflow_uuid, filter_data(play.model_uuid, limit=1),
                                             reconcile=False).uuid)
    finally:
        emu.faults.profile = saved
    return made


def run_materializations(config: SuiteConfig, emu: CargoEmulator,
                         progress: Callable[[Outcome], str | None] | None = None) -> SuiteRun:
    """Run every materialization against ``emu`` (started, faults configured) while watching for leaks."""
    import os
    import tempfile

    watch = LeakWatch(secret=config.token())
    earlier = seed_earlier_batches(emu, config)
    outcomes = plan(config, data_bounds(emu))
    capture = OutputCapture()
    started = time.monotonic()
    env = {TOKEN_ENV: config.token(), DEBUG_ENV: "1"}
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    crashes: list[Any] = []
    try:
        with tempfile.TemporaryDirectory(prefix="cargo-fault-suite-") as home, \
                _instance(home, config.instance_yaml) as instance, capture.capturing(), watch_logs(watch):
            rounds = sorted({o.round for o in outcomes})
            for r in rounds:
                batch = [o for o in outcomes if o.round == r]
                run_round(batch, emu, instance, config, watch)
                if progress is not None:
                    for o in batch:
                        line = progress(o)
                        if isinstance(line, str):
                            capture.write_original(line)
            if config.crash_scenarios:
                from .crash import run_crash_scenarios

                crashes = run_crash_scenarios(emu, instance, config, watch)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wall = time.monotonic() - started
    watch.check("stdout/stderr", capture.text)
    return SuiteRun(config=config, outcomes=outcomes, emulator=emu, watch=watch, output=capture.text,
                    wall_seconds=wall, earlier=earlier, crashes=crashes)


def _instance(home: str, yaml: str | None) -> dg.DagsterInstance:
    """The suite's instance in ``home``: from ``yaml`` (written as its dagster.yaml) or a SQLite temp one."""
    if yaml is not None:
        with open(os.path.join(home, "dagster.yaml"), "w") as handle:
            handle.write(yaml)
    return dg.DagsterInstance.local_temp(tempdir=home)


def data_bounds(emu: CargoEmulator) -> tuple[float, float]:
    """The time span of the play model's ``created_at`` values (epoch seconds, end exclusive)."""
    from datetime import datetime

    store = emu.store
    model_uuid = store.play_by_name(PLAY_NAME)["modelUuid"]
    stamps = [datetime.fromisoformat(str(r["created_at"]).replace("Z", "+00:00")).timestamp()
              for r in store.model_records(model_uuid)]
    return min(stamps), max(stamps) + 1.0


def start_emulator(config: SuiteConfig) -> CargoEmulator:
    """An emulator with the seeded fault profile, fast simulated time and plenty of credits."""
    emu = CargoEmulator(token=config.token(), speed=config.speed, seed=config.seed,
                        run_failure_rate=config.run_failure_rate, credits=10_000_000, faults=config.fault_profile())
    return emu.start()
