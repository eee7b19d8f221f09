"""Run N materializations of a Cargo tool asset against a faulty emulator and record each one.

No ``from __future__ import annotations`` here: this module defines a Dagster asset.
"""

import hashlib
import random
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd

from ..emulator import CargoEmulator, FaultProfile
from ..resource import CargoResource
from .capture import LeakWatch, OutputCapture, watch_logs

ASSET_NAME = "fault_suite_enriched_companies"
TOOL_NAME = "Enrich company"
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

    def fault_profile(self) -> FaultProfile:
        return FaultProfile.preset(self.profile, seed=self.seed, **dict(self.fault_overrides))

    def profile_label(self) -> str:
        extra = ", ".join(f"{k}={v:g}" for k, v in self.fault_overrides)
        return self.profile + (f" with {extra}" if extra else "")

    def token(self) -> str:
        """The API token of this run: distinctive, so any copy of it can be found."""
        return "cfs_" + hashlib.sha256(f"dagster-cargo fault suite {self.seed}".encode()).hexdigest()[:32]


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
    seconds: float = 0.0


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


def _make_asset(frame: pd.DataFrame, watch: LeakWatch) -> dg.AssetsDefinition:
    @dg.asset(name=ASSET_NAME, kinds={"cargo"})
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        try:
            return cargo.run_tool(context, TOOL_NAME, frame).materialize_result()
        except BaseException as exc:  # searched for the token, then raised unchanged
            _watch_exception(exc, watch)
            raise

    return enriched


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


def _record_failure(outcome: Outcome, result: Any, watch: LeakWatch) -> None:
    failure = result.failure_data_for_node(ASSET_NAME)
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


def _reported_batches(result: Any) -> list[str]:
    mats = result.asset_materializations_for_node(ASSET_NAME)
    if not mats:
        return []
    meta = {k: getattr(v, "value", v) for k, v in mats[0].metadata.items()}
    many = meta.get("dagster-cargo/batch_uuids")
    if many:
        return str(many).split(",")
    one = meta.get("dagster-cargo/batch_uuid")
    return [str(one)] if one else []


def run_one(index: int, domains: list[str], emu: CargoEmulator, instance: dg.DagsterInstance,
            config: SuiteConfig, watch: LeakWatch) -> Outcome:
    """Materialize the tool asset once over ``domains`` and record the outcome."""
    outcome = Outcome(index=index, domains=domains)
    frame = pd.DataFrame({"domain": domains, "company_name": [f"Company {d.split('.')[0]}" for d in domains]})
    resource = CargoResource(
        api_token=config.token(), base_url=emu.base_url, request_timeout=config.request_timeout,
        connect_timeout=config.connect_timeout, poll_interval=config.poll_interval,
        max_poll_interval=config.max_poll_interval, poll_timeout=config.poll_timeout, progress_log_interval=0.2,
    )
    watch.check("resource repr", repr(resource) + str(resource))
    started = time.monotonic()
    try:
        result = dg.materialize([_make_asset(frame, watch)], resources={"cargo": resource}, instance=instance,
                                raise_on_error=False, tags={"fault-suite/materialization": str(index)})
    except Exception as exc:  # the suite itself must keep going; this counts as an unclear failure
        _watch_exception(exc, watch)
        outcome.error, outcome.error_class = f"materialize() raised: {exc}", type(exc).__name__
        outcome.seconds = time.monotonic() - started
        return outcome
    outcome.seconds = time.monotonic() - started
    outcome.run_id = result.run_id
    _scan_run(instance, result.run_id, watch)
    outcome.batch_uuids = _reported_batches(result)
    if result.success:
        outcome.succeeded = True
        outcome.frame = result.output_for_node(ASSET_NAME)
    else:
        _record_failure(outcome, result, watch)
    return outcome


@dataclass
class SuiteRun:
    """Everything the report is computed from."""

    config: SuiteConfig
    outcomes: list[Outcome]
    emulator: CargoEmulator
    watch: LeakWatch
    output: str
    wall_seconds: float


def run_materializations(config: SuiteConfig, emu: CargoEmulator,
                         progress: Callable[[Outcome], str | None] | None = None) -> SuiteRun:
    """Run every materialization against ``emu`` (started, faults configured) while watching for leaks."""
    watch = LeakWatch(secret=config.token())
    sizes = random.Random(config.seed)
    capture = OutputCapture()
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with dg.DagsterInstance.ephemeral() as instance, capture.capturing(), watch_logs(watch):
        for index in range(config.materializations):
            domains = domains_for(index, sizes.randint(config.min_records, config.max_records))
            outcome = run_one(index, domains, emu, instance, config, watch)
            outcomes.append(outcome)
            if progress is not None:
                progress_line = progress(outcome)
                if isinstance(progress_line, str):
                    capture.write_original(progress_line)
    wall = time.monotonic() - started
    watch.check("stdout/stderr", capture.text)
    return SuiteRun(config=config, outcomes=outcomes, emulator=emu, watch=watch, output=capture.text,
                    wall_seconds=wall)


def start_emulator(config: SuiteConfig) -> CargoEmulator:
    """An emulator with the seeded fault profile, fast simulated time and plenty of credits."""
    emu = CargoEmulator(token=config.token(), speed=config.speed, seed=config.seed,
                        run_failure_rate=config.run_failure_rate, credits=10_000_000, faults=config.fault_profile())
    return emu.start()
