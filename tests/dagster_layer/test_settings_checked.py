"""Issue 19 items 3-4: settings that could only cost credits are refused when the resource is built, and
optional ``dg.EnvVar`` fields are read when the resource is used, not when it is built."""

import dagster as dg
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.errors import CargoConfigError

from dagster_cargo import CargoResource

from ..conftest import TOKEN, manual_clock


def creates(emu) -> list:
    return [r for r in emu.request_log if r["method"] == "POST" and r["path"] == "/v1/orchestration/batches"]


@pytest.mark.parametrize("value", [0, 0.0, -1, -3600.0])
def test_poll_timeout_of_zero_or_less_is_refused_when_built(value):
    with pytest.raises(Exception) as info:
        CargoResource(api_token=TOKEN, poll_timeout=value)
    text = str(info.value)
    assert "poll_timeout must be more than 0 seconds" in text
    assert "cancelled at once" in text


def test_positive_poll_timeout_is_kept():
    assert CargoResource(api_token=TOKEN, poll_timeout=0.5).poll_timeout == 0.5


@pytest.mark.parametrize("value", [-1, -100])
def test_negative_single_run_threshold_is_refused_when_built(value):
    with pytest.raises(Exception) as info:
        CargoResource(api_token=TOKEN, single_run_threshold=value)
    assert "single_run_threshold must be 0 (never single runs) or more" in str(info.value)


def test_zero_single_run_threshold_still_means_never():
    assert CargoResource(api_token=TOKEN, single_run_threshold=0).single_run_threshold == 0


@pytest.mark.parametrize("url", ["https://api.getcargo.io/v1", "https://api.getcargo.io/v1/", "http://127.0.0.1:9/V1"])
def test_base_url_ending_in_v1_is_refused_with_the_url_to_use(url):
    with pytest.raises(Exception) as info:
        CargoResource(api_token=TOKEN, base_url=url)
    text = str(info.value)
    assert "ends in /v1" in text
    assert "remove /v1: base_url=" + repr(url[: url.lower().rindex("/v1")]) in text


def test_base_url_ending_in_v1_is_refused_by_the_client_too():
    with pytest.raises(CargoConfigError, match=r"remove /v1: base_url='https://api.getcargo.io'"):
        CargoClient(TOKEN, base_url="https://api.getcargo.io/v1")


def test_a_v1_base_url_from_an_envvar_is_refused_before_any_call(emulator, monkeypatch):
    monkeypatch.setenv("CARGO_BASE_URL_T", emulator.base_url + "/v1")
    cargo = CargoResource(api_token=TOKEN, base_url=dg.EnvVar("CARGO_BASE_URL_T"))
    with pytest.raises(CargoConfigError, match="remove /v1"):
        cargo.get_client()
    assert emulator.request_log == []


def test_envvar_base_url_set_after_the_resource_was_built_is_used(emulator, monkeypatch):
    """Issue 19 item 4: built while the variable is unset, then set, then materialized: the run goes to
    the emulator, not to Cargo's production API."""
    monkeypatch.delenv("CARGO_BASE_URL_LATE", raising=False)
    monkeypatch.delenv("CARGO_WS_LATE", raising=False)
    monkeypatch.delenv("CARGO_BUDGET_LATE", raising=False)
    cargo = CargoResource(api_token=TOKEN, base_url=dg.EnvVar("CARGO_BASE_URL_LATE"),
                          workspace_uuid=dg.EnvVar("CARGO_WS_LATE"),
                          max_credits_per_batch=dg.EnvVar("CARGO_BUDGET_LATE"),
                          poll_interval=0.05, max_poll_interval=0.2).with_clock(manual_clock(emulator))
    monkeypatch.setenv("CARGO_BASE_URL_LATE", emulator.base_url)
    monkeypatch.setenv("CARGO_BUDGET_LATE", "0.0001")
    seen = {}

    @dg.asset
    def scored(context: dg.AssetExecutionContext, cargo: CargoResource):
        seen["base_url"] = cargo.get_client().base_url
        return cargo.run_play(context, "Score inbound companies", limit=2).materialize_result()

    result = dg.materialize([scored], resources={"cargo": cargo}, raise_on_error=False)
    assert seen["base_url"] == emulator.base_url
    assert [r["path"] for r in emulator.request_log][:1] != []  # calls reached the emulator
    # the budget variable, also set after the build, applies: the step fails over a 0.0001-credit budget
    assert not result.success
    assert "budget of 0.0001" in result.failure_data_for_node("scored").error.to_string()


def test_envvar_base_url_set_after_build_reaches_the_emulator_in_a_successful_run(emulator, monkeypatch):
    monkeypatch.delenv("CARGO_BASE_URL_LATE2", raising=False)
    cargo = CargoResource(api_token=TOKEN, base_url=dg.EnvVar("CARGO_BASE_URL_LATE2"), poll_interval=0.05,
                          max_poll_interval=0.2).with_clock(manual_clock(emulator))  # waits move Cargo's time
    assert cargo.base_url == "https://api.getcargo.io"  # the field shows the default while unset ...
    monkeypatch.setenv("CARGO_BASE_URL_LATE2", emulator.base_url)

    @dg.asset
    def scored(context: dg.AssetExecutionContext, cargo: CargoResource):
        return cargo.run_play(context, "Score inbound companies", limit=2).materialize_result()

    result = dg.materialize([scored], resources={"cargo": cargo})
    assert result.success  # ... but the run read the variable: it went to the emulator
    assert len(creates(emulator)) == 1
    assert result.asset_materializations_for_node("scored")[0].metadata["dagster/row_count"].value == 2


def test_envvar_still_unset_when_used_keeps_the_default_and_says_so(monkeypatch, caplog):
    monkeypatch.delenv("CARGO_BASE_URL_NEVER", raising=False)
    cargo = CargoResource(api_token=TOKEN, base_url=dg.EnvVar("CARGO_BASE_URL_NEVER"))
    with caplog.at_level("WARNING", logger="dagster_cargo"):
        assert cargo.get_client().base_url == "https://api.getcargo.io"
    assert "dg.EnvVar('CARGO_BASE_URL_NEVER'), which is not set" in caplog.text
    cargo.close()
