"""A date-partitioned workspace play asset, loaded by ``dagster asset materialize -f`` in
tests/dagster_layer/test_backfill.py and by the webserver and daemon in tests/e2e/test_backfill_daemon.py
(CARGO_API_TOKEN / CARGO_BASE_URL name the emulator; BACKFILL_SINGLE_RUN=0 keeps Dagster's default backfill
policy, one run per partition)."""

import os

import dagster as dg

from dagster_cargo import CargoResource, cargo_partitioned_io_manager
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.definitions.translator import DagsterCargoTranslator

START = os.environ.get("BACKFILL_START", "2025-01-01")
DAILY = dg.DailyPartitionsDefinition(start_date=START)


class Daily(DagsterCargoTranslator):
    def get_asset_spec(self, props):
        return super().get_asset_spec(props).replace_attributes(partitions_def=DAILY)


cargo = CargoResource(api_token=dg.EnvVar("CARGO_API_TOKEN"), base_url=os.environ["CARGO_BASE_URL"],
                      poll_interval=0.05, max_poll_interval=0.5)
defs = dg.Definitions(
    assets=build_cargo_assets_definitions(cargo, translator=Daily(), selector=["Score inbound companies"],
                                          partition_date_columns={"Score inbound companies": "created_at"},
                                          single_run_backfill=os.environ.get("BACKFILL_SINGLE_RUN", "1") == "1"),
    resources={"cargo": cargo, "io_manager": cargo_partitioned_io_manager})
