"""Registration: get_provider_info against Airflow's schemas; the connection form is declarative; Airflow's
CLI lists the hook; the venv the provider runs in has no Dagster."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import airflow
import jsonschema
from cargo_provider import get_provider_info

SCHEMAS = Path(airflow.__file__).parent


def test_provider_info_is_valid_for_the_runtime_and_the_provider_yaml_schemas() -> None:
    info = get_provider_info()
    jsonschema.validate(info, json.loads((SCHEMAS / "provider_info.schema.json").read_text()))
    yaml_schema = json.loads((SCHEMAS / "provider.yaml.schema.json").read_text())
    jsonschema.validate(info["connection-types"], yaml_schema["properties"]["connection-types"])
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "cargo" and set(conn["conn-fields"]) >= {"workspace_uuid", "poll_interval"}


def test_the_entry_point_points_at_get_provider_info() -> None:
    (ep,) = [e for e in importlib.metadata.entry_points(group="apache_airflow_provider")
             if e.value.startswith("cargo_provider")]
    assert ep.load() is get_provider_info


def test_providers_manager_reads_the_form_fields_without_deprecation_warnings() -> None:
    from airflow.providers_manager import ProvidersManager

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manager = ProvidersManager()
        widgets = manager.connection_form_widgets
        behaviours = manager.field_behaviours
        hook = manager.hooks["cargo"]
    assert "extra__cargo__workspace_uuid" in widgets and "extra__cargo__poll_interval" in widgets
    assert behaviours["cargo"]["relabeling"]["password"] == "API token"
    assert hook is not None and hook.hook_class_name == "cargo_provider.hooks.cargo.CargoHook"
    assert not [w for w in caught if "get_connection_form_widgets" in str(w.message)
                or "get_ui_field_behaviour" in str(w.message)]


def test_airflow_providers_hooks_lists_cargo() -> None:
    airflow_cli = Path(sys.executable).with_name("airflow")
    out = subprocess.run([str(airflow_cli), "providers", "hooks", "--output", "json"], capture_output=True, text=True,
                         check=True, env=os.environ.copy()).stdout
    rows = json.loads(out[out.index("["):])
    assert any(r.get("connection_type") == "cargo" and r.get("class") == "cargo_provider.hooks.cargo.CargoHook"
               for r in rows), rows


def _requirements(dist: str, seen: set[str]) -> set[str]:
    """Every distribution ``dist`` depends on (transitively, installed ones, extras ignored)."""
    from packaging.requirements import Requirement

    name = dist.lower().replace("_", "-")
    if name in seen:
        return seen
    seen.add(name)
    try:
        requires = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return seen
    for text in requires:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            _requirements(req.name, seen)
    return seen


def test_the_provider_needs_no_dagster() -> None:
    """The venv run-tests.sh builds holds only the provider (+ its test and openlineage extras), the core and
    the emulator: Dagster is not importable there, and nothing the provider requires pulls it in."""
    assert importlib.util.find_spec("dagster") is None
    assert importlib.util.find_spec("dagster_cargo") is None
    closure = _requirements("airflow-provider-cargo", set())
    assert "cargo-gtm-client" in closure and "apache-airflow" in closure
    assert not [d for d in closure if d.startswith("dagster")]


def test_no_module_of_the_provider_imports_dagster() -> None:
    import ast

    root = Path(__file__).resolve().parents[1] / "cargo_provider"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("dagster", "dagster_cargo")]
    assert offenders == []
