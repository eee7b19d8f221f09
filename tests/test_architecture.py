"""The distributions stay independent, and none has an import cycle: checked statically (every import, those
under ``if TYPE_CHECKING:`` and inside functions included) and at run time.

* the core (``cargo_gtm``) imports neither framework, nor the emulator, nor any orchestrator layer;
* the emulator (``cargo_gtm_emulator``) imports no client and no framework: a mistake shared by a client and
  its test double cannot hide;
* the Dagster layer (``dagster_cargo``) imports no Airflow, no emulator and no dev tool;
* the Airflow provider (``cargo_provider``) imports no Dagster and no emulator.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator.test_structure import _targets, find_cycle

ROOT = Path(__file__).resolve().parents[1]
#: import package -> its folder, one per distribution of this repository
PACKAGES = {
    "cargo_gtm": ROOT / "cargo-gtm-client" / "cargo_gtm",
    "cargo_gtm_emulator": ROOT / "cargo-gtm-emulator" / "cargo_gtm_emulator",
    "dagster_cargo": ROOT / "dagster_cargo",
    "cargo_fault_suite": ROOT / "fault-suite" / "cargo_fault_suite",
    "cargo_provider": ROOT / "airflow-provider-cargo" / "cargo_provider",
}
FRAMEWORKS = ("dagster", "dagster_dg_cli", "dagster_webserver", "airflow")
FORBIDDEN = {
    "cargo_gtm": (*FRAMEWORKS, "cargo_gtm_emulator", "dagster_cargo", "cargo_fault_suite", "cargo_provider"),
    "cargo_gtm_emulator": (*FRAMEWORKS, "cargo_gtm", "dagster_cargo", "cargo_fault_suite", "cargo_provider"),
    "dagster_cargo": ("airflow", "cargo_gtm_emulator", "cargo_fault_suite", "cargo_provider"),
    "cargo_fault_suite": ("airflow", "cargo_provider"),
    "cargo_provider": ("dagster", "dagster_cargo", "cargo_gtm_emulator", "cargo_fault_suite"),
}
PRESENT = [name for name, folder in PACKAGES.items() if folder.is_dir()]


def module_files(package: str) -> dict[str, Path]:
    """Module name -> file for every module of ``package``."""
    folder = PACKAGES[package]
    files = {}
    for path in folder.rglob("*.py"):
        parts = [package, *path.relative_to(folder).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def imported_modules(package: str) -> dict[str, set[str]]:
    """Absolute names each module of ``package`` imports (``from x import y`` counts as ``x`` and ``x.y``)."""
    found: dict[str, set[str]] = {}
    for name, path in module_files(package).items():
        pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = pkg[: len(pkg) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
        found[name] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {name}" for module, names in imported_modules(package).items()
                  for name in names if any(name == f or name.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("package", PRESENT)
def test_each_distribution_imports_only_what_it_may(package: str) -> None:
    assert offenders(package, FORBIDDEN[package]) == []


def test_the_checker_itself_sees_imports() -> None:
    found = offenders("dagster_cargo", ("dagster", "cargo_gtm"))
    assert "dagster_cargo.running.resource imports dagster" in found
    assert any(line.startswith("dagster_cargo.running.resource imports cargo_gtm") for line in found)
    assert set(PRESENT) >= {"cargo_gtm", "cargo_gtm_emulator", "dagster_cargo", "cargo_fault_suite"}


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, every import counted (``TYPE_CHECKING`` and
    function-level ones included: a cycle of annotations is still a cycle to read through)."""
    files = module_files(package)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        nodes = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
        # a package __init__ re-exporting its modules is an index, not a dependency of theirs
        graph[name] = set().union(*(_targets(n, pkg, files) for n in nodes)) - {name}
    return graph


def test_the_graph_sees_type_checking_and_function_level_imports() -> None:
    graph = import_graph("dagster_cargo")
    assert "dagster_cargo.running.execution" in graph["dagster_cargo.running.resource"]
    assert "dagster_cargo.definitions.asset_defs" in graph["dagster_cargo.components.workspace_component"]
    assert find_cycle({"a": {"b"}, "b": {"a"}}) is not None


@pytest.mark.parametrize("package", PRESENT)
def test_no_import_cycle_inside_a_distribution(package: str) -> None:
    graph = import_graph(package)
    for init in [m for m, p in module_files(package).items() if p.name == "__init__.py"]:
        # a package's __init__ may import its modules (its public index); what it imports must not lead back
        # to it, which the check below still sees through the other edges
        graph[init] = {t for t in graph[init] if not t.startswith(init + ".")}
    assert find_cycle(graph) is None


@pytest.mark.parametrize("module", ["cargo_gtm", "cargo_gtm_emulator"])
def test_importing_the_core_or_the_emulator_imports_no_framework(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('dagster', 'airflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_py_typed_is_shipped() -> None:
    assert (PACKAGES["dagster_cargo"] / "py.typed").exists()
    assert (PACKAGES["cargo_gtm"] / "py.typed").exists()
