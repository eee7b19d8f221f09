"""Every function of the client and of the Dagster layer stays simple (issue 11): cyclomatic complexity at
most 15, counted as radon does by :func:`tests.emulator.test_structure.complexity`. The emulator and the
fault suite are checked elsewhere (or not at all)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.emulator.test_structure import complexity

PACKAGE = Path(__file__).resolve().parents[1] / "dagster_cargo"
ROOT = PACKAGE.parent
MAX_COMPLEXITY = 15

def checked_files() -> list[Path]:
    """The client (``client/**``) and the Dagster layer (``*.py`` at the top, ``components/**``)."""
    return sorted([*PACKAGE.glob("*.py"), *(PACKAGE / "client").rglob("*.py"), *(PACKAGE / "components").rglob("*.py")])


def scores(path: Path) -> list[tuple[str, str, int]]:
    """``(file, "<line> <name>", complexity)`` for every function and lambda in ``path`` (nested included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(ROOT).as_posix()
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            out.append((rel, f"{node.lineno} {getattr(node, 'name', '<lambda>')}", complexity(node)))
    return out


def offenders() -> list[str]:
    """``"file:line name = score"`` for each function over the limit."""
    return [f"{rel}:{where} = {score}" for path in checked_files() for rel, where, score in scores(path)
            if score > MAX_COMPLEXITY]


def test_the_check_covers_the_client_and_the_dagster_layer() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in checked_files()}
    assert {"dagster_cargo/execution.py", "dagster_cargo/client/waiting.py", "dagster_cargo/client/handle.py",
            "dagster_cargo/components/workspace_component.py"} <= files
    assert not any("/emulator/" in f or "/fault_suite/" in f for f in files)


def test_no_function_in_the_client_or_dagster_layer_exceeds_complexity_15() -> None:
    failing = offenders()
    assert not failing, "Functions above complexity 15:\n  " + "\n  ".join(failing)
