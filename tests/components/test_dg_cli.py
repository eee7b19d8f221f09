"""Issue 21 item 3, with the real ``dg`` CLI on a scaffolded project:

* ``dg scaffold defs`` writes ``base_url: "{{ env.CARGO_BASE_URL }}"`` (the refresh goes to the emulator, not
  to production);
* only ``dg utils refresh-defs-state`` calls Cargo: ``dg check defs`` and ``dg list defs`` read the stored
  snapshot (0 calls), and work with Cargo unreachable (the emulator stopped).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from cargo_gtm_emulator import CargoEmulator

from ..conftest import TOKEN

DG = Path(sys.executable).with_name("dg")
ASSETS = {"cargo/classify_inbound_companies", "cargo/enrich_company", "cargo/find_decision_makers",
          "cargo/find_work_email", "cargo/normalize_domain", "cargo/qualify_inbound_companies",
          "cargo/score_inbound_companies"}

pytestmark = pytest.mark.skipif(not DG.exists(), reason="the dg CLI is not installed beside this Python")


def make_project(root: Path, package: str = "cargoproj") -> Path:
    """A minimal dg project (what ``create-dagster project`` lays out), package ``package`` (unique per test when
    loaded in this process: Python caches modules by name)."""
    (root / "src" / package / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""
        [project]
        name = "{package}"
        version = "0.1.0"
        requires-python = ">=3.10"

        [tool.dg]
        directory_type = "project"

        [tool.dg.project]
        root_module = "{package}"
    """))
    (root / "src" / package / "__init__.py").write_text("")
    (root / "src" / package / "defs" / "__init__.py").write_text("")
    (root / "src" / package / "definitions.py").write_text(textwrap.dedent("""
        from pathlib import Path

        import dagster as dg
        from dagster.components import load_from_defs_folder


        @dg.definitions
        def defs():
            return load_from_defs_folder(path_within_project=Path(__file__).parent)
    """))
    return root


def dg(project: Path, *args: str, base_url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "CARGO_"))}
    env.update(CARGO_API_TOKEN=TOKEN, CARGO_BASE_URL=base_url,
               PYTHONPATH=os.pathsep.join(filter(None, [str(project / "src"), os.environ.get("PYTHONPATH")])),
               DAGSTER_HOME=str(project / ".dagster_home"))
    (project / ".dagster_home").mkdir(exist_ok=True)
    return subprocess.run([str(DG), *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)


def listed_assets(out: subprocess.CompletedProcess) -> set[str]:
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return {a["asset_key"] for a in json.loads(out.stdout)["assets"]}


def test_dg_scaffold_writes_an_env_base_url_and_the_refresh_goes_there(tmp_path):
    project = make_project(tmp_path / "proj")
    with CargoEmulator(token=TOKEN, seed=1) as emu:
        scaffolded = dg(project, "scaffold", "defs", "dagster_cargo.CargoWorkspaceComponent", "my_cargo",
                        base_url=emu.base_url)
        assert scaffolded.returncode == 0, scaffolded.stderr[-3000:]
        text = (project / "src" / "cargoproj" / "defs" / "my_cargo" / "defs.yaml").read_text()
        assert yaml.safe_load(text)["attributes"]["workspace"] == {
            "api_token": "{{ env.CARGO_API_TOKEN }}", "base_url": "{{ env.CARGO_BASE_URL }}"}
        refreshed = dg(project, "utils", "refresh-defs-state", base_url=emu.base_url)
        assert refreshed.returncode == 0, refreshed.stderr[-3000:]
        assert sorted(r["path"] for r in emu.request_log) == [  # the refresh went to the emulator
            "/v1/orchestration/plays/list", "/v1/orchestration/tools/list", "/v1/orchestration/workflows/list"]
        assert listed_assets(dg(project, "list", "defs", "--json", base_url=emu.base_url)) == ASSETS


def test_dg_check_and_list_defs_read_the_snapshot_and_never_call_cargo(tmp_path):
    project = make_project(tmp_path / "proj")
    defs_path = project / "src" / "cargoproj" / "defs" / "my_cargo"
    defs_path.mkdir()
    with CargoEmulator(token=TOKEN, seed=1) as emu:
        url = emu.base_url
        (defs_path / "defs.yaml").write_text(textwrap.dedent(f"""
            type: dagster_cargo.CargoWorkspaceComponent
            attributes:
              workspace:
                api_token: "{{{{ env.CARGO_API_TOKEN }}}}"
                base_url: {url}
        """))
        refreshed = dg(project, "utils", "refresh-defs-state", base_url=url)
        assert refreshed.returncode == 0, refreshed.stderr[-3000:]
        assert len(emu.request_log) == 3  # plays, tools, workflows: the snapshot
        emu.request_log.clear()

        assert listed_assets(dg(project, "list", "defs", "--json", base_url=url)) == ASSETS
        checked = dg(project, "check", "defs", base_url=url)
        assert checked.returncode == 0, checked.stderr[-3000:]
        assert "All definitions loaded successfully." in checked.stdout
        assert [r["path"] for r in emu.request_log] == []  # 0 Cargo calls for both

    # the emulator is stopped: Cargo is unreachable at that URL, and both still work from the snapshot
    assert listed_assets(dg(project, "list", "defs", "--json", base_url=url)) == ASSETS
    checked = dg(project, "check", "defs", base_url=url)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-3000:]
    assert "All definitions loaded successfully." in checked.stdout


def _env_url_project(tmp_path, monkeypatch, package):
    """A dg project whose component takes the token and base URL as the scaffold writes them (``{{ env.… }}``),
    importable, with the token set and ``CARGO_BASE_URL`` unset: (project, the component's defs folder)."""
    project = make_project(tmp_path / "proj", package=package)
    defs_path = project / "src" / package / "defs" / "my_cargo"
    defs_path.mkdir()
    (defs_path / "defs.yaml").write_text(textwrap.dedent("""
        type: dagster_cargo.CargoWorkspaceComponent
        attributes:
          workspace:
            api_token: "{{ env.CARGO_API_TOKEN }}"
            base_url: "{{ env.CARGO_BASE_URL }}"
    """))
    monkeypatch.syspath_prepend(str(project / "src"))
    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)
    monkeypatch.delenv("CARGO_BASE_URL", raising=False)
    return project, defs_path


def test_scaffolded_base_url_is_an_envvar_read_when_used(tmp_path, monkeypatch):
    """The scaffolded ``{{ env.CARGO_BASE_URL }}`` loads as ``dg.EnvVar`` (the UI shows its name); unset, the
    component still loads (Cargo's own API is the default), and set later it is read when the resource is used."""
    import dagster as dg
    from dagster.components.core.component_tree import ComponentTree

    from dagster_cargo.components import CargoWorkspaceComponent

    project, defs_path = _env_url_project(tmp_path, monkeypatch, "cargoproj_scaffolded")
    component = ComponentTree.for_project(project).load_component(defs_path)
    assert isinstance(component, CargoWorkspaceComponent)
    with CargoEmulator(token=TOKEN, seed=1) as emu:
        monkeypatch.setenv("CARGO_BASE_URL", emu.base_url)
        assert component.workspace.get_client().base_url == emu.base_url
        component.workspace.close()
    monkeypatch.setenv("CARGO_BASE_URL", "http://127.0.0.1:9")
    fresh = ComponentTree.for_project(project).load_component(defs_path)
    assert isinstance(fresh.workspace.base_url, dg.EnvVar)
    assert fresh.workspace.base_url.env_var_name == "CARGO_BASE_URL"


def _dev_server_load(sandbox, defs_path):
    """A code location's first load (INITIALIZATION), as a fresh code server does: scoped, so a load context an
    earlier test left in this process (pytest-xdist reuses workers) cannot make it a reconstruction."""
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType

    with DefinitionsLoadContext.scoped(DefinitionsLoadContext(load_type=DefinitionsLoadType.INITIALIZATION)), \
            sandbox.load_component_and_build_defs(defs_path=defs_path) as (_, defs):
        return sorted(k.to_user_string() for k in defs.resolve_all_asset_keys())


def test_dev_server_refreshes_on_load_and_falls_back_to_the_snapshot_when_cargo_is_down(monkeypatch, caplog):
    """In the code server that `dg dev` starts (DAGSTER_IS_DEV_CLI, not the dg process itself), a load refreshes
    the snapshot (Dagster's refresh_if_dev); with Cargo unreachable it loads the stored snapshot instead of
    failing the code location. Inside the dg process (`dg list defs`) the same load makes no call."""
    import logging

    from .test_workspace_component import api_calls, cargo_project

    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)
    emu = CargoEmulator(token=TOKEN, seed=1).start()
    try:
        with cargo_project(emu) as (sandbox, defs_path):
            emu.request_log.clear()
            monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")
            monkeypatch.setattr(sys, "argv", ["/venv/bin/dg", "list", "defs"])
            assert _dev_server_load(sandbox, defs_path) == sorted(ASSETS)
            assert api_calls(emu) == []  # the dg process itself: stored snapshot only
            monkeypatch.setattr(sys, "argv", ["/venv/lib/python3.11/site-packages/dagster/__main__.py", "api", "grpc"])
            assert _dev_server_load(sandbox, defs_path) == sorted(ASSETS)
            assert len(api_calls(emu)) == 3  # the dev code server: refreshed
            emu.stop()
            with caplog.at_level(logging.WARNING, logger="dagster_cargo"):
                assert _dev_server_load(sandbox, defs_path) == sorted(ASSETS)
            assert "Could not refresh the Cargo workspace snapshot" in caplog.text
            monkeypatch.setenv("DAGSTER_IS_DEFS_VALIDATION_CLI", "1")  # dg check defs: never refreshes
            caplog.clear()
            assert _dev_server_load(sandbox, defs_path) == sorted(ASSETS)
            assert "Could not refresh" not in caplog.text
    finally:
        emu.stop()


def test_refresh_reads_an_envvar_base_url_set_after_the_component_was_loaded(tmp_path, monkeypatch):
    import asyncio

    from dagster.components.core.component_tree import ComponentTree

    project, defs_path = _env_url_project(tmp_path, monkeypatch, "cargoproj_late_url")
    component = ComponentTree.for_project(project).load_component(defs_path)
    with CargoEmulator(token=TOKEN, seed=1) as emu:
        monkeypatch.setenv("CARGO_BASE_URL", emu.base_url)
        asyncio.run(component.refresh_state(project))
        assert len(emu.request_log) == 3  # the snapshot came from the emulator, not from production
