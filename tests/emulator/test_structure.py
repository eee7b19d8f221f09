"""Structure of the emulator (issue 11, item 7): thin handlers and request plumbing (cyclomatic complexity
at most 15 per function) and no import cycle between its modules. Both checks are ast-based, no tool needed."""

from __future__ import annotations

import ast
from pathlib import Path

EMULATOR = Path(__file__).resolve().parents[2] / "cargo-gtm-emulator" / "cargo_gtm_emulator"
PACKAGE = "cargo_gtm_emulator"
MAX_COMPLEXITY = 15
#: The HTTP-facing modules whose functions must stay simple: every handler, routing, the request pipeline,
#: the socket layer, the in-process transport and the control plane.
THIN = [*sorted((EMULATOR / "handlers").glob("*.py")), EMULATOR / "routing.py", EMULATOR / "app.py",
        EMULATOR / "server.py", EMULATOR / "transport.py", EMULATOR / "control.py"]


# ---------------------------------------------------------------------------------------------- complexity
class _Complexity(ast.NodeVisitor):
    """McCabe complexity as radon counts it: 1 + decisions (if/elif, ternaries, loops and their else,
    except clauses and try-else, boolean operators, comprehension loops and conditions, assert, match
    cases). Nested functions and lambdas are measured on their own, not added to the enclosing one."""

    def __init__(self) -> None:
        self.score = 1

    def visit_If(self, node: ast.If) -> None:
        self.score += 1
        self.generic_visit(node)

    visit_IfExp = visit_If  # type: ignore[assignment]
    visit_Assert = visit_If  # type: ignore[assignment]

    def _loop(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        self.score += 1 + bool(node.orelse)
        self.generic_visit(node)

    visit_For = visit_AsyncFor = visit_While = _loop  # type: ignore[assignment]

    def visit_Try(self, node: ast.Try) -> None:
        self.score += len(node.handlers) + bool(node.orelse)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self.score += len(node.values) - 1
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.score += 1 + len(node.ifs)
        self.generic_visit(node)

    def visit_Match(self, node: ast.Match) -> None:
        self.score += len(node.cases)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        return  # measured separately

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef  # type: ignore[assignment]


def complexity(func: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> int:
    """The cyclomatic complexity of one function body."""
    counter = _Complexity()
    for child in ast.iter_child_nodes(func):
        counter.visit(child)
    return counter.score


def function_scores(path: Path) -> dict[str, int]:
    """``{"<file>:<line> <name>": complexity}`` for every function and lambda in a file (nested included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    scores = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            name = getattr(node, "name", "<lambda>")
            scores[f"{path.relative_to(EMULATOR)}:{node.lineno} {name}"] = complexity(node)
    return scores


def test_the_counter_counts_like_radon() -> None:
    code = ("def f(a, b):\n"
            "    if a and b:\n"               # +1 if, +1 and
            "        return [x for x in a if x]\n"  # +1 loop, +1 condition
            "    for i in b:\n"               # +1
            "        pass\n"
            "    else:\n"                     # +1
            "        pass\n"
            "    try:\n"
            "        pass\n"
            "    except ValueError:\n"        # +1
            "        pass\n"
            "    return 1 if a else 2\n")     # +1
    func = ast.parse(code).body[0]
    assert isinstance(func, ast.FunctionDef)
    assert complexity(func) == 9


def test_no_thin_module_function_exceeds_complexity_15() -> None:
    scores: dict[str, int] = {}
    for path in THIN:
        scores.update(function_scores(path))
    assert len(scores) > 50  # the files were found and parsed
    too_complex = {name: score for name, score in scores.items() if score > MAX_COMPLEXITY}
    assert too_complex == {}, f"split these (complexity > {MAX_COMPLEXITY}): {too_complex}"


# ---------------------------------------------------------------------------------------------- import cycles
def _module_name(path: Path) -> str:
    rel = path.relative_to(EMULATOR).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def import_graph() -> dict[str, set[str]]:
    """Module -> emulator modules it imports at run time (module level or inside functions; imports under
    ``if TYPE_CHECKING:`` are annotations only and left out). ``from . import x`` names module ``x`` when
    it is one."""
    files = {_module_name(p): p for p in EMULATOR.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or _in_type_checking(node, parents):
                continue
            graph[name] |= _targets(node, package, files)
        graph[name].discard(name)
    return graph


def _targets(node: ast.Import | ast.ImportFrom, package: str, files: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in files}
    base = package.split(".")
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    found = set()
    for alias in node.names:
        sub = f"{module}.{alias.name}"
        if sub in files:
            found.add(sub)
        elif module in files:
            found.add(module)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_import_graph_sees_lazy_and_relative_imports() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.engine" in graph[f"{PACKAGE}.store"]
    assert f"{PACKAGE}.backend.batches" in graph[f"{PACKAGE}.handlers.batches"]  # from ..backend import batches
    assert f"{PACKAGE}.transport" in graph[f"{PACKAGE}.emulator"]  # imported inside a method


def test_no_import_cycle_inside_the_emulator() -> None:
    assert find_cycle(import_graph()) is None
