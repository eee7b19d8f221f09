"""The example project: its definitions load, and the Quickstart run works end to end."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_every_feature(emulator, monkeypatch):
    monkeypatch.delenv("CARGO_API_TOKEN", raising=False)
    monkeypatch.setenv("CARGO_EMULATOR_URL", emulator.base_url)
    import importlib

    import example_project.connection as connection

    monkeypatch.setattr(connection, "EMULATOR_TOKEN", emulator.token)
    definitions = importlib.reload(importlib.import_module("example_project.definitions"))
    defs: dg.Definitions = definitions.defs
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"inbound_signups", "enriched_signups", "scored_icp_companies", "daily_company_scores",
            "cargo/score_inbound_companies", "cargo/find_decision_makers", "cargo/find_work_email",
            "cargo_credit_usage"} <= keys
    assert {s.name for s in defs.schedules} == {"daily_company_scoring_schedule", "weekly_decision_makers"}
    assert {s.name for s in defs.sensors} == {"score_new_icp_companies", "cargo_observation_sensor"}
    check_keys = {k for a in defs.get_repository_def().assets_defs_by_key.values() for k in a.check_keys}
    assert dg.AssetCheckKey(dg.AssetKey("enriched_signups"), "cargo_output_completeness") in check_keys


def test_quickstart_main_job_runs_end_to_end():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_")}
    out = subprocess.run([sys.executable, "-m", "example_project"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "using the embedded Cargo emulator" in out.stderr
    credits = dict(re.findall(r"^- (\S+): \d+ rows, ([\d.]+) credits used", out.stdout, re.M))
    assert float(credits["enriched_signups"]) > 0 and float(credits["scored_icp_companies"]) > 0
    assert "industry" in out.stdout  # the enriched DataFrame's head is printed
    assert "All example assets materialized." in out.stdout
