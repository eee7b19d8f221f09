"""OpenLineage facets (the openlineage extra is installed in the test venv); complexity <= 15 everywhere in
the provider; every error the provider raises says what to do next."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

PACKAGE = Path(__file__).resolve().parents[1] / "cargo_provider"
MAX_COMPLEXITY = 15


def test_openlineage_facets_name_the_workflow_and_the_parquet_output() -> None:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from cargo_provider.operators.cargo import CargoRunOperator

    op = CargoRunOperator(task_id="t", tool="Enrich company", records=[])
    op._last_summary = {"workflow": "Enrich company", "type": "tool", "uri": "file:///data/out/enriched.parquet"}
    op._cargo_base_url = "https://api.getcargo.io"
    lineage = op.get_openlineage_facets_on_complete(SimpleNamespace(task_id="t"))
    assert isinstance(lineage, OperatorLineage)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("cargo://api.getcargo.io", "tool/Enrich company")]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file://", "/data/out/enriched.parquet")]


class _Complexity(ast.NodeVisitor):
    """McCabe complexity as radon counts it (the repository's rule): 1 + decisions; nested functions apart."""

    def __init__(self) -> None:
        self.score = 1

    def visit_If(self, node: ast.AST) -> None:
        self.score += 1
        self.generic_visit(node)

    visit_IfExp = visit_Assert = visit_If

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        self.score += 1 + bool(node.orelse)
        self.generic_visit(node)

    visit_For = visit_AsyncFor = visit_While = _loop

    def visit_Try(self, node: ast.Try) -> None:
        self.score += len(node.handlers) + bool(node.orelse)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self.score += len(node.values) - 1
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.score += 1 + len(node.ifs)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.AST) -> None:
        return

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef


def _score(func: ast.AST) -> int:
    counter = _Complexity()
    for child in ast.iter_child_nodes(func):
        counter.visit(child)
    return counter.score


def test_no_function_of_the_provider_exceeds_complexity_15() -> None:
    too_complex = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                score = _score(node)
                if score > MAX_COMPLEXITY:
                    too_complex[f"{path.name}:{node.lineno} {getattr(node, 'name', 'lambda')}"] = score
    assert too_complex == {}


def test_the_counter_counts() -> None:
    func = ast.parse("def f(a, b):\n    if a and b:\n        return [x for x in a if x]\n    return 1\n").body[0]
    assert _score(func) == 5


def test_every_failure_the_provider_raises_names_the_next_step() -> None:
    """Each CargoStepError / ValueError / CargoInputError built in the provider's code carries 'Next step' or a
    hint (the core adds 'Next step: <hint>' to its errors)."""
    missing = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                text = ast.get_source_segment(source, node.exc) or ""
                name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
                if name in ("_fail", "_from_core", "raise_for_event"):
                    continue
                if "Next step" not in text and "hint=" not in text and name not in ("NotImplementedError",):
                    missing.append(f"{path.name}:{node.lineno} {text[:80]}")
    assert missing == []
