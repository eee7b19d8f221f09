"""The Dagster UI in headless Chromium, on the example project served by the real webserver.

* A workspace play is materialized by **clicking "Materialize"** on its asset page, with the
  default config: the run is capped by the default ``limit`` (100 records), as documented.
* The asset page then shows its credit metadata; the checks page shows the Cargo checks
  evaluated; the resource page shows the token's variable name and never the token.
* After all that, the token appears nowhere in ``DAGSTER_HOME``: not in the instance database's
  job snapshots (decompressed) or run configs, the event log, compute logs or process logs.

Screenshots are written to ``test-artifacts/ui/`` (``DAGSTER_CARGO_ARTIFACTS`` overrides).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dagster_cargo.definitions.asset_defs import DEFAULT_PLAY_LIMIT

from ._browser import Browser, chromium_path
from ._stack import EMULATOR_TOKEN, MODULE, ROOT
from .test_ui_materialization import (  # noqa: F401 - the module's fixtures, reused here
    MATERIALIZATIONS_QUERY,
    TERMINAL,
    _metadata,
    _run_logs,
    asset_nodes,
    declared_checks,
    materialization_run,
)

PLAY = ["cargo", "score_inbound_companies"]
RUNS_QUERY = """
query Runs {
  runsOrError(limit: 20) {
    __typename
    ... on Runs { results { runId status assetSelection { path } runConfigYaml } }
  }
}
"""


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("DAGSTER_CARGO_ARTIFACTS") or ROOT / "test-artifacts") / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(artifacts) -> Iterator[Browser]:
    chromium_path()  # skip (or, in CI, fail) before starting anything
    b = Browser(artifacts)
    try:
        yield b
    finally:
        b.close()


def _dismiss_welcome(browser: Browser) -> None:
    """Dagster's first-visit "Join the community" dialog: press Skip if it is shown."""
    for _ in range(10):
        if browser.click_button("Skip"):
            return
        if "Join the Dagster community" not in browser.text():
            time.sleep(0.5)
            if "Join the Dagster community" not in browser.text():
                return
        time.sleep(0.5)


def _play_runs(server) -> list[dict[str, Any]]:
    runs = server.graphql(RUNS_QUERY)["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    return [r for r in runs["results"] if any(k["path"] == PLAY for k in r["assetSelection"] or [])]


@pytest.fixture(scope="module")
def clicked_run(dagster_webserver, browser) -> dict[str, Any]:
    """Click "Materialize" on the workspace play's asset page (default config); wait for the run."""
    server = dagster_webserver
    before = {r["runId"] for r in _play_runs(server)}
    browser.open(f"{server.url}/assets/{'/'.join(PLAY)}")
    browser.wait_for_text("Materialize", "dagster-cargo/default_run")
    _dismiss_welcome(browser)
    browser.screenshot("01-play-asset-page-before")
    assert browser.click_button("Materialize"), "no Materialize button on the asset page"
    deadline = time.monotonic() + 240
    run: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        new = [r for r in _play_runs(server) if r["runId"] not in before]
        if new and new[0]["status"] in TERMINAL:
            run = new[0]
            break
        time.sleep(1.0)
    assert run is not None, f"no finished run after clicking Materialize\n{server.diagnostics()}"
    assert run["status"] == "SUCCESS", f"{_run_logs(server, run['runId'])}\n{server.diagnostics()}"
    return run


def test_a_ui_launched_play_with_default_config_is_capped(dagster_webserver, clicked_run, cargo_emulator):
    assert "limit" not in (clicked_run["runConfigYaml"] or "")  # nothing given: the default applies
    (node,) = dagster_webserver.graphql(MATERIALIZATIONS_QUERY, assetKeys=[{"path": PLAY}])["assetNodes"]
    (latest,) = node["assetMaterializations"]
    assert latest["runId"] == clicked_run["runId"]
    metadata = _metadata(latest)
    runs = json.loads(metadata["dagster-cargo/counts"]["jsonString"])["runs_count"]
    assert runs == DEFAULT_PLAY_LIMIT
    uuid = metadata["dagster-cargo/batch_uuid"]["text"]
    response = httpx.get(f"{cargo_emulator.base_url}/v1/orchestration/batches/{uuid}",
                         headers={"authorization": f"Bearer {EMULATOR_TOKEN}"}, timeout=10.0)
    assert response.json()["batch"]["runsCount"] == DEFAULT_PLAY_LIMIT  # what Cargo ran, not just what we report


def test_the_asset_page_shows_the_credit_metadata(dagster_webserver, clicked_run, browser):
    browser.open(f"{dagster_webserver.url}/assets/{'/'.join(PLAY)}?view=events")
    text = browser.wait_for_text("dagster-cargo/credits_used", "dagster-cargo/credits_per_record",
                                 "dagster-cargo/counts", "dagster-cargo/expected_credits_at_default_limit",
                                 "dagster-cargo/wall_clock_seconds", "dagster-cargo/cargo_duration_seconds",
                                 clicked_run["runId"][:8])
    browser.screenshot("02-play-asset-page-credit-metadata")
    assert "dagster-cargo/batch_count" not in text


def test_the_checks_page_shows_the_cargo_checks(dagster_webserver, materialization_run, browser):
    assert materialization_run["status"] == "SUCCESS", "see test_materialization_run_succeeds"
    browser.open(f"{dagster_webserver.url}/assets/enriched_signups?view=checks")
    browser.wait_for_text("cargo_failed_run_ratio", "cargo_output_completeness", "cargo_credits_per_record")
    browser.screenshot("03-enriched-signups-checks")


def test_the_resource_page_names_the_variable_never_the_token(dagster_webserver, browser):
    browser.open(f"{dagster_webserver.url}/locations/{MODULE}/resources/cargo")
    text = browser.wait_for_text("api_token", "CARGO_EMULATOR_TOKEN")
    browser.screenshot("04-cargo-resource-page")
    html = browser.evaluate("document.documentElement.outerHTML")
    assert EMULATOR_TOKEN not in text and EMULATOR_TOKEN not in html


def _sqlite_texts(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every text/blob cell of every table, zlib-decompressed where it is compressed (snapshots)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):
                for cell in row:
                    if isinstance(cell, str):
                        yield table, cell.encode()
                    elif isinstance(cell, bytes):
                        try:
                            yield table, zlib.decompress(cell)
                        except zlib.error:
                            yield table, cell


def test_the_token_is_nowhere_in_dagster_home(dagster_webserver, clicked_run, materialization_run):
    home = dagster_webserver.dagster_home
    token = EMULATOR_TOKEN.encode()
    tables_seen: set[str] = set()
    snapshot_names_var = False
    leaks = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if token in raw:
            leaks.append(str(path))
        if raw.startswith(b"SQLite format 3"):
            for table, cell in _sqlite_texts(path):
                tables_seen.add(table)
                if token in cell:
                    leaks.append(f"{path}:{table}")
                if table == "snapshots" and b"CARGO_EMULATOR_TOKEN" in cell:
                    snapshot_names_var = True
    assert not leaks, f"the token is stored in: {leaks}"
    # we looked where it would be: job snapshots (which name the variable instead) and run configs
    assert {"snapshots", "runs"} <= tables_seen
    assert snapshot_names_var, "no job snapshot mentions CARGO_EMULATOR_TOKEN: the scan missed them"
    for process in (dagster_webserver.process, *dagster_webserver.others):
        assert EMULATOR_TOKEN not in process.logs(tail=10_000_000)


CONFIG_QUERY = """
query AssetConfig($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    configField {
      configType {
        ... on CompositeConfigType { fields { name defaultValueAsJson } }
      }
    }
  }
}
"""


def test_the_launchpad_config_shows_the_default_limit(dagster_webserver):
    """What the launchpad scaffolds for the play's run config: ``limit`` defaulting to 100."""
    (node,) = dagster_webserver.graphql(CONFIG_QUERY, assetKeys=[{"path": PLAY}])["assetNodes"]
    fields = {f["name"]: f["defaultValueAsJson"] for f in node["configField"]["configType"]["fields"]}
    assert fields["limit"] == str(DEFAULT_PLAY_LIMIT)
    assert "credit_budget" in fields
