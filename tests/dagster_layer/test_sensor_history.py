"""A sensor tick costs the same whatever the history: the segment-change sensor at 80, 400 and 2,000 earlier
changes, the observation sensor at 100, 1,000 and 10,000 earlier batches (Cargo serving lists newest first)."""

from __future__ import annotations

import dagster as dg
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.definitions.sensors import build_cargo_change_sensor, build_cargo_observation_sensor

from ..client.history import seed_history
from ..conftest import TOKEN
from .test_sensors import PLAY, company, resource, tick

CHANGES = "/v1/segmentation/changes/list"
BATCHES = "/v1/orchestration/batches/list"


def _calls(emu: CargoEmulator, path: str, since: int) -> int:
    return len([e for e in emu.request_log[since:] if e["path"] == path])


def test_change_sensor_requests_per_tick_stay_flat_from_80_to_2000_changes():
    per_tick = []
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu:
        (play_asset,) = build_cargo_assets_definitions(resource(emu), selector=[PLAY])
        segment_uuid = emu.store.play_by_name(PLAY)["segmentUuid"]
        sensor = build_cargo_change_sensor(play_asset, segment_uuid)
        cursor = None
        for i, total in enumerate((80, 400, 2_000)):
            while len(emu.store.changes_for(segment_uuid)) < total:
                emu.advance(1)
                emu.store.snapshot_segment(segment_uuid)
            cursor = tick(sensor, emu, cursor).cursor  # catch up with the history
            emu.advance(1)
            emu.store.upsert_records("companies", [company(900 + i)])  # one new change with a record
            mark = len(emu.request_log)
            result = tick(sensor, emu, cursor)
            assert len(result.run_requests) == 1  # the new change, launched once
            cursor = result.cursor
            per_tick.append((_calls(emu, CHANGES, mark), len(emu.request_log) - mark))
    assert per_tick[0] == per_tick[1] == per_tick[2] and per_tick[0][0] == 1, per_tick


def test_observation_sensor_requests_per_tick_stay_flat_from_100_to_10000_batches():
    per_tick = []
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, credits=10**9) as emu:
        assets = build_cargo_assets_definitions(resource(emu), selector=[PLAY])
        sensor = build_cargo_observation_sensor(assets)
        workflow = str(emu.store.play_by_name(PLAY)["workflowUuid"])
        model = str(emu.store.play_by_name(PLAY)["modelUuid"])
        with dg.instance_for_test() as instance:
            cursor = None
            for i, total in enumerate((100, 1_000, 10_000)):
                seed_history(emu, workflow, total - len(emu.batches(workflow)),  # hourly, as a play schedule runs
                             {"kind": "filter", "modelUuid": model, "filter": {"conjonction": "and", "groups": []},
                              "limit": 1}, spacing=3600)
                for _ in range(2):  # catch up with the history: the watermark trails the tick before by 600 s
                    cursor = tick(sensor, emu, cursor, instance).cursor
                emu.store.upsert_records("companies", [company(800 + i)], snapshot=False)
                uuid = emu.run_play_schedule(PLAY)
                emu.advance(600)
                mark = len(emu.request_log)
                result = tick(sensor, emu, cursor, instance)
                assert [e.metadata["dagster-cargo/batch_uuid"].value for e in result.asset_events] == [uuid]
                cursor = result.cursor
                per_tick.append(_calls(emu, BATCHES, mark))
    assert per_tick == [1, 1, 1], per_tick
