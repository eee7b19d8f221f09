"""The fault suite's Dagster job: tool and play assets run 8 at a time by the multiprocess executor.

Each round is one run of :func:`suite_job`; every asset step in it is one materialization with its
own input, given in run config: a tool step enriches companies whose domains are unique to it
(``m0042-03.example``); a play step scores the companies created in a time window unique to it
(a partition). Steps run in subprocesses, so the suite sees them as a deployment does. The token
comes from the environment (never from run config, which Dagster stores). With
``DAGSTER_CARGO_SUITE_DEBUG_LOGS=1`` each step logs ``dagster_cargo``/``httpx``/``httpcore`` at
DEBUG to stderr, and prints any exception chain there, for the suite's token search.

No ``from __future__ import annotations`` here: this module defines Dagster assets.
"""

import logging
import os
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from cargo_gtm.inputs.records import date_window_filter

from dagster_cargo.definitions.asset_defs import CARGO_POOL
from dagster_cargo.running.resource import CargoResource

TOOL_NAME = "Enrich company"
PLAY_NAME = "Score inbound companies"
PLAY_DATE_COLUMN = "created_at"
TOOL_SLOTS = 20  # steps per run: 40 (alternating tool and play), 8 at once
PLAY_SLOTS = 20
CONCURRENCY = 8
TOKEN_ENV = "DAGSTER_CARGO_SUITE_TOKEN"
DEBUG_ENV = "DAGSTER_CARGO_SUITE_DEBUG_LOGS"


def _debug_logging() -> None:
    if os.environ.get(DEBUG_ENV) != "1":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)r"))
    for name in ("dagster_cargo", "cargo_gtm", "httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(getattr(h, "_suite", False) for h in logger.handlers):
            handler._suite = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


def _print_chain(exc: BaseException) -> None:
    """Write the exception chain (texts, reprs, attributes) to stderr, for the token search."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = "".join(traceback.format_exception(type(current), current, current.__traceback__, chain=False))
        print(f"[suite exception] {current!s} {current!r} {text} {vars(current)!r}", file=sys.stderr)
        current = current.__cause__ or current.__context__


def tool_frame(domains: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"domain": domains, "company_name": [f"Company {d.split('.')[0]}" for d in domains]})


def play_filter(start: str, end: str) -> dict[str, Any]:
    return date_window_filter(PLAY_DATE_COLUMN, start, end)


def _tool_asset(slot: int) -> dg.AssetsDefinition:
    @dg.asset(name=f"tool_{slot}", kinds={"cargo"}, pool=CARGO_POOL,
              config_schema={"index": int, "domains": [str]})
    def tool_step(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        _debug_logging()
        config = context.op_execution_context.op_config
        try:
            return cargo.run_tool(context, TOOL_NAME, tool_frame(config["domains"])).materialize_result()
        except BaseException as exc:
            _print_chain(exc)
            raise

    return tool_step


def _play_asset(slot: int) -> dg.AssetsDefinition:
    @dg.asset(name=f"play_{slot}", kinds={"cargo"}, pool=CARGO_POOL,
              config_schema={"index": int, "start": str, "end": str})
    def play_step(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        _debug_logging()
        config = context.op_execution_context.op_config
        try:
            flt = play_filter(config["start"], config["end"])
            return cargo.run_play(context, PLAY_NAME, filter=flt).materialize_result()
        except BaseException as exc:
            _print_chain(exc)
            raise

    return play_step


def suite_job() -> dg.JobDefinition:
    """The round job (a reconstructable target): tool and play steps, ``CONCURRENCY`` at once."""
    assets = [*(_tool_asset(i) for i in range(TOOL_SLOTS)), *(_play_asset(i) for i in range(PLAY_SLOTS))]
    # forkserver with the package preloaded: each step still runs in its own process, without paying for a
    # fresh interpreter importing Dagster (seconds per step on a small machine)
    job = dg.define_asset_job("fault_suite_round", executor_def=dg.multiprocess_executor.configured(
        {"max_concurrent": CONCURRENCY,
         "start_method": {"forkserver": {"preload_modules": ["cargo_fault_suite.jobs"]}}}))
    defs = dg.Definitions(assets=assets, jobs=[job],
                          resources={"cargo": CargoResource.configure_at_launch()})
    return defs.resolve_job_def("fault_suite_round")


def resource_config(base_url: str, **fields: Any) -> dict[str, Any]:
    """Run config for the ``cargo`` resource: the token by environment variable, never by value."""
    return {"cargo": {"config": {"api_token": {"env": TOKEN_ENV}, "base_url": base_url, **fields}}}


def single_tool_job() -> dg.JobDefinition:
    """One tool step run in process (the crash scenarios)."""
    job = dg.define_asset_job("fault_suite_single", selection=["tool_0"], executor_def=dg.in_process_executor)
    defs = dg.Definitions(assets=[_tool_asset(0)], jobs=[job],
                          resources={"cargo": CargoResource.configure_at_launch()})
    return defs.resolve_job_def("fault_suite_single")


def stored_output(instance: dg.DagsterInstance, step: str) -> Any:
    """The DataFrame the step's asset stored (the default IO manager pickles it under the asset key).
    Here, beside the job that stores it, so that the runner and the crash scenarios both read it without
    importing each other."""
    with open(Path(instance.storage_directory()) / step, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - the suite's own file
