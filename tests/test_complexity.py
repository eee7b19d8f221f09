"""Every function of every distribution stays simple: cyclomatic complexity at most 15, counted as radon
does by :func:`tests.emulator.test_structure.complexity`. Tests, benchmarks and examples aside."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.emulator.test_structure import complexity
from tests.test_architecture import PACKAGES, ROOT

MAX_COMPLEXITY = 15


def checked_files() -> list[Path]:
    """Every module of every distribution of the repository."""
    return sorted(p for folder in PACKAGES.values() if folder.is_dir() for p in folder.rglob("*.py"))


def scores(path: Path) -> list[tuple[str, str, int]]:
    """``(file, "<line> <name>", complexity)`` for every function and lambda in ``path`` (nested included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(ROOT).as_posix()
    return [(rel, f"{node.lineno} {getattr(node, 'name', '<lambda>')}", complexity(node)) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]


def offenders() -> list[str]:
    """``"file:line name = score"`` for each function over the limit."""
    return [f"{rel}:{where} = {score}" for path in checked_files() for rel, where, score in scores(path)
            if score > MAX_COMPLEXITY]


def test_the_check_covers_every_distribution() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in checked_files()}
    assert {"dagster_cargo/running/execution.py", "cargo-gtm-client/cargo_gtm/running/waiting.py",
            "cargo-gtm-client/cargo_gtm/running/handle.py", "dagster_cargo/components/workspace_component.py",
            "cargo-gtm-emulator/cargo_gtm_emulator/engine.py", "fault-suite/cargo_fault_suite/runner.py"} <= files


def test_no_function_anywhere_exceeds_complexity_15() -> None:
    failing = offenders()
    assert not failing, "Functions above complexity 15:\n  " + "\n  ".join(failing)
