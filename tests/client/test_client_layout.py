"""The client is laid out by Cargo's API areas, and the Dagster layer uses only its public surface."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cargo_gtm import CargoClient
from cargo_gtm.api import BillingAPI, OrchestrationAPI, SegmentationAPI, StorageAPI, WorkspaceAPI

PACKAGE = Path(__file__).resolve().parents[2] / "dagster_cargo"

AREAS = {
    OrchestrationAPI: "/orchestration/",
    SegmentationAPI: "/segmentation/",
    StorageAPI: "/storage/",
    BillingAPI: "/billing/",
    WorkspaceAPI: ("/workspaceManagement/", "/userManagement/"),
}


@pytest.mark.parametrize("area", list(AREAS), ids=lambda a: a.__name__)
def test_each_area_declares_only_its_own_endpoints_and_the_client_has_them(area: type) -> None:
    own = {name: fn for name, fn in vars(area).items() if callable(fn) and not name.startswith("_")}
    assert own, area
    for name, fn in own.items():
        assert getattr(CargoClient, name) is fn, f"CargoClient.{name} is not {area.__name__}'s"
        first_line = (fn.__doc__ or "").splitlines()[0]
        assert first_line.startswith("``") and any(p in first_line for p in _prefixes(area)), (name, first_line)


def _prefixes(area: type) -> tuple[str, ...]:
    prefix = AREAS[area]
    return prefix if isinstance(prefix, tuple) else (prefix,)


def test_raw_json_needs_to_be_told_whether_a_write_may_be_repeated() -> None:
    client = CargoClient("t0k3n", base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="idempotent"):
        client.raw_json("POST", "/orchestration/batches", payload={})
    assert client.download_http is client.download_http  # one shared client for presigned URLs
    client.close()


def test_no_private_client_attribute_is_reached_from_outside_the_client() -> None:
    pattern = re.compile(r"\b(client|cargo_client|self\.client)\.(_[a-z]\w*)|_downloads_http|\._transport\b")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "emulator" in path.parts or path.parent.name == "client" and path.name == "client.py":
            continue
        if path.parent.name == "api" and path.parent.parent.name == "client":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}")
    assert offenders == []


#: The core's public names for orchestrator layers: the package, its public subpackages and three documented modules.
PUBLIC_CORE = {"cargo_gtm", "cargo_gtm.running", "cargo_gtm.models", "cargo_gtm.errors", "cargo_gtm.inputs",
               "cargo_gtm.download", "cargo_gtm.api", "cargo_gtm.credits", "cargo_gtm.estimate", "cargo_gtm.watermark"}


def test_the_dagster_layer_imports_only_the_cores_public_names() -> None:
    """22 deep imports at layout-v1 (``cargo_gtm.running.waiting``, ``cargo_gtm.inputs.records`` …), 0 now."""
    import ast

    deep = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            deep += [f"{path.relative_to(PACKAGE)}: {n}" for n in names
                     if n and n.startswith("cargo_gtm") and n not in PUBLIC_CORE]
    assert deep == []
