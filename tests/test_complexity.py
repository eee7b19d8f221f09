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

#: Files another branch (helper L, issue 11 item 4: the client laid out by API areas) is rewriting in
#: parallel; their offenders are listed, not failed, until that branch lands. THE LEAD REMOVES THIS AT MERGE.
#: In client.py the exactly-once/waiting glue methods are not exempt (see ``CHECKED_IN_ALLOWED``).
ALLOWED_FOR_NOW = {
    "dagster_cargo/client/client.py", "dagster_cargo/client/transport.py", "dagster_cargo/client/errors.py",
    "dagster_cargo/client/download.py", "dagster_cargo/client/parquet.py", "dagster_cargo/client/batch_outputs.py",
    "dagster_cargo/client/outcomes.py", "dagster_cargo/client/layout.py", "dagster_cargo/client/inputs.py",
    "dagster_cargo/client/filter_check.py", "dagster_cargo/client/query.py", "dagster_cargo/client/__init__.py",
    "dagster_cargo/sensors.py", "dagster_cargo/workspace_data.py", "dagster_cargo/cli.py",
}
CHECKED_IN_ALLOWED = {"create_batch", "create_intent", "find_created_batch", "list_all_batches", "create_batches",
                      "wait_for_batch", "wait_for_batches", "_list_many"}


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


def offenders() -> tuple[list[str], list[str]]:
    """(failing, allowed for now): ``"file:line name = score"`` for each function over the limit."""
    failing, allowed = [], []
    for path in checked_files():
        for rel, where, score in scores(path):
            if score <= MAX_COMPLEXITY:
                continue
            line = f"{rel}:{where} = {score}"
            exempt = rel in ALLOWED_FOR_NOW and where.split()[1] not in CHECKED_IN_ALLOWED
            (allowed if exempt else failing).append(line)
    return failing, allowed


def test_the_check_covers_the_client_and_the_dagster_layer() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in checked_files()}
    assert {"dagster_cargo/execution.py", "dagster_cargo/client/waiting.py", "dagster_cargo/client/handle.py",
            "dagster_cargo/components/workspace_component.py"} <= files
    assert not any("/emulator/" in f or "/fault_suite/" in f for f in files)


def test_no_function_in_the_client_or_dagster_layer_exceeds_complexity_15() -> None:
    failing, allowed = offenders()
    if allowed:
        print("Over the limit in files exempt until the client layout lands:\n  " + "\n  ".join(allowed))
    assert not failing, "Functions above complexity 15:\n  " + "\n  ".join(failing)
