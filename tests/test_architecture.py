"""The layers stay independent: checked statically (imports) and at run time."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dagster_cargo"


def imported_modules(directory: Path) -> dict[str, set[str]]:
    """Absolute module names imported by each file under ``directory``."""
    found: dict[str, set[str]] = {}
    for path in directory.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        package_parts = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package_parts[: len(package_parts) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(PACKAGE.parent))] = names
    return found


def offenders(directory: Path, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path, names in imported_modules(directory).items():
        for name in names:
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path} imports {name}")
    return sorted(bad)


def test_client_never_imports_dagster_or_the_emulator():
    assert offenders(PACKAGE / "client", ("dagster", "dagster_cargo.emulator", "dagster_cargo.resource")) == []


def test_emulator_never_imports_the_client_or_dagster():
    assert (PACKAGE / "emulator").is_dir()
    assert offenders(PACKAGE / "emulator", ("dagster", "dagster_cargo.client")) == []


def test_importing_the_client_does_not_import_dagster_at_run_time():
    code = "import sys, dagster_cargo.client; print('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_py_typed_is_shipped():
    assert (PACKAGE / "py.typed").exists()


def test_the_checker_itself_sees_imports():
    # the Dagster layer does import dagster and the client: the checker must notice
    found = offenders(PACKAGE, ("dagster", "dagster_cargo.client"))
    assert any(line.startswith("dagster_cargo/resource.py imports dagster") for line in found)
    assert any("dagster_cargo/resource.py imports dagster_cargo.client" in line for line in found)


# ---------------------------------------------------------------------------------------------- import cycles
def dagster_layer_graph() -> dict[str, set[str]]:
    """Dagster-layer module -> the Dagster-layer modules it imports (``dagster_cargo/*.py`` but the lazy
    package ``__init__``, and ``components/**``). Every import counts, those under ``if TYPE_CHECKING:`` and
    inside functions included: a cycle of annotations is still a cycle to read through."""
    from tests.emulator.test_structure import _targets

    paths = [p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"] + list((PACKAGE / "components").rglob("*.py"))
    files = {".".join(p for p in p.relative_to(PACKAGE.parent).with_suffix("").parts if p != "__init__"): p
             for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        nodes = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
        graph[name] = set().union(*(_targets(n, package, files) for n in nodes)) - {name}
    return graph


def test_the_dagster_layer_graph_sees_type_checking_imports():
    graph = dagster_layer_graph()
    assert "dagster_cargo.execution" in graph["dagster_cargo.resource"]
    assert "dagster_cargo.asset_defs" in graph["dagster_cargo.components.workspace_component"]


def test_no_import_cycle_between_dagster_layer_modules():
    from tests.emulator.test_structure import find_cycle

    assert find_cycle(dagster_layer_graph()) is None
