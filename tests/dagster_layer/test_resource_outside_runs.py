"""CargoResource outside runs (scripts, notebooks), token hygiene and the batch link."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import dagster as dg
import pytest
from cargo_gtm.models import Batch

import dagster_cargo.running.resource as resource_module
from dagster_cargo import CargoResource
from dagster_cargo.running.resource import CargoTokenExposureWarning

from ..conftest import TOKEN, manual_clock


def test_credit_usage_summary_in_a_plain_script_on_an_envvar_resource(emulator, tmp_path):
    # slow (SLOW in tests/conftest.py): a Python subprocess that imports Dagster; it only reads, so the
    # manual-clock emulator serves it without waiting
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent("""
        import warnings
        warnings.simplefilter("error", UserWarning)   # no token warning for an EnvVar token
        import dagster as dg
        from dagster_cargo import CargoResource

        cargo = CargoResource(
            api_token=dg.EnvVar("CARGO_API_TOKEN"),
            workspace_uuid=dg.EnvVar("CARGO_WORKSPACE_UUID"),   # unset here: behaves as unset
            base_url=dg.EnvVar("CARGO_BASE_URL"),
        )
        with cargo:
            summary = cargo.credit_usage_summary("2026-01-01", "2026-12-31")
            print("columns", list(summary.columns))
            print("remaining", cargo.credits_remaining())
            print("plays", len(cargo.get_client().list_plays()))
    """))
    env = {"CARGO_API_TOKEN": TOKEN, "CARGO_BASE_URL": emulator.base_url, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "columns ['date', 'group', 'name', 'slug', 'credits', 'executions', 'execution_credits', 'storage_records']" in out.stdout
    assert "remaining " in out.stdout
    assert "plays 0" not in out.stdout
    assert TOKEN not in out.stdout + out.stderr


def test_unset_optional_envvar_is_unset_in_runs_too(emulator, monkeypatch):
    monkeypatch.delenv("CARGO_WORKSPACE_UUID", raising=False)
    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)
    cargo = CargoResource(api_token=dg.EnvVar("CARGO_API_TOKEN"), workspace_uuid=dg.EnvVar("CARGO_WORKSPACE_UUID"),
                          base_url=emulator.base_url)
    assert cargo.workspace_uuid is None

    @dg.asset
    def remaining(cargo: CargoResource) -> float:
        return cargo.credits_remaining()

    result = dg.materialize([remaining], resources={"cargo": cargo})
    assert result.success and result.output_for_node("remaining") > 0


def test_unset_token_envvar_outside_a_run_says_what_to_do(monkeypatch):
    monkeypatch.delenv("CARGO_API_TOKEN", raising=False)
    cargo = CargoResource(api_token=dg.EnvVar("CARGO_API_TOKEN"))
    with pytest.raises(Exception, match="export CARGO_API_TOKEN"):
        cargo.get_client()


def test_a_literal_token_warns_once_and_says_where_it_shows(monkeypatch):
    monkeypatch.setattr(resource_module, "_warned_literal_token", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CargoResource(api_token="literal-secret-1")
        CargoResource(api_token="literal-secret-2")
    mine = [w for w in caught if issubclass(w.category, CargoTokenExposureWarning)]
    assert len(mine) == 1
    text = str(mine[0].message)
    assert "resource page" in text and "launchpad" in text and "job snapshot" in text and "dg.EnvVar" in text
    assert "literal-secret" not in text


def test_dagster_resolving_an_envvar_does_not_warn(emulator, monkeypatch):
    monkeypatch.setattr(resource_module, "_warned_literal_token", False)
    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)

    @dg.asset
    def plays(cargo: CargoResource) -> int:
        return len(cargo.get_client().list_plays())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = dg.materialize([plays], resources={"cargo": CargoResource(
            api_token=dg.EnvVar("CARGO_API_TOKEN"), base_url=emulator.base_url)})
    assert result.success
    assert not [w for w in caught if issubclass(w.category, CargoTokenExposureWarning)]


def _batch(**extra) -> Batch:
    return Batch.model_validate({"uuid": "b-1", "workflowUuid": "w-1", "workspaceUuid": "ws-1", "status": "success",
                                 "createdAt": "2026-01-01T00:00:00Z", **extra})


def test_batch_url_links_cargo_app_for_cargo_only():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CargoTokenExposureWarning)
        real = CargoResource(api_token="x")
        emu = CargoResource(api_token="x", base_url="http://127.0.0.1:8765")
        custom = CargoResource(api_token="x", base_url="http://127.0.0.1:8765",
                               batch_url_template="http://ui.local/{workflow_uuid}/{batch_uuid}")
    assert real.batch_url(_batch()) == "https://app.getcargo.io/workspaces/ws-1/workflows/w-1/batches/b-1"
    assert emu.batch_url(_batch()) is None
    assert custom.batch_url(_batch()) == "http://ui.local/w-1/b-1"


def test_the_run_is_tagged_with_the_batch_uuid_under_a_readable_key(emulator):
    import pandas as pd

    @dg.asset
    def enriched(context, cargo: CargoResource):
        return cargo.run_tool(context, "Enrich company", pd.DataFrame({"domain": ["acme.com"]})).materialize_result()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CargoTokenExposureWarning)
        cargo = CargoResource(api_token=TOKEN, base_url=emulator.base_url, poll_interval=0.05,
                              single_run_threshold=0).with_clock(manual_clock(emulator))  # 1 record: a batch
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([enriched], resources={"cargo": cargo}, instance=instance)
        tags = instance.get_run_by_id(result.run_id).tags
    uuid = result.asset_materializations_for_node("enriched")[0].metadata["dagster-cargo/batch_uuid"].value
    assert tags["dagster-cargo/batch_uuid.enriched"] == uuid
