"""The fenced code blocks of the README and the documentation pages, and how they are checked.

Conventions (stated for writers in docs/index.md's "About these pages"):

* Every ``python`` block runs, against a fresh Cargo emulator reached through ``CARGO_API_TOKEN`` and
  ``CARGO_BASE_URL``. A block whose first line is ``# continues the previous block`` runs after the
  blocks it continues, in their namespace: the chain (the first block and its continuations) runs on
  its own, so each continuation runs standalone once prefixed with what it continues.
* A comment at the end of a ``print(...)`` line is that print's output, and is asserted: ``...``
  stands for any text, ``<words in angle brackets>`` for one value that changes from run to run
  (a UUID, a time). So ``print(failed.success)  # False`` fails the test if it prints ``True``.
* Every ``bash`` block runs with ``bash -eu`` in a scratch directory whose ``.venv`` is the test's
  environment; in a bash block, a whole-line comment right after a command is that command's output
  (same wildcards, matched against the start of the output), and comments after a command on its own
  line are commentary.
* ``yaml`` blocks are parsed. ``text`` blocks are shown output, not run.
* A file included with ``--8<-- "path"`` (pymdownx.snippets) contributes its blocks to the page.
* A block that cannot run in a test (a long-running server, ``make test`` itself) is preceded by
  ``<!-- docs-test: skip: <reason> -->``; the tests list every skipped block with its reason.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTINUES = "# continues the previous block"
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<body>.*?)\s*-->", re.S)
SNIPPET = re.compile(r'^--8<--\s+"(?P<path>[^"]+)"\s*$')  # pymdownx.snippets: a file included in the page
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
#: pages whose blocks other tests own: docs/airflow/ is tested with the Airflow provider
NOT_OURS = ("docs/airflow/",)


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None = None  # the reason, when the page says the block is not run

    @property
    def where(self) -> str:
        path = self.path.relative_to(ROOT).as_posix() if self.path.is_relative_to(ROOT) else self.path.name
        return f"{path}:{self.line}"

    @property
    def continues(self) -> bool:
        first = next((ln for ln in self.code.splitlines() if ln.strip()), "")
        return first.strip().startswith(CONTINUES)


@dataclass
class Chain:
    """A python block and the blocks that continue it, run together in one namespace."""

    blocks: list[Block] = field(default_factory=list)

    @property
    def where(self) -> str:
        return self.blocks[-1].where


def blocks_of(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of a Markdown file, in order, with its skip directive."""
    text = path.read_text() if text is None else text
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        included = SNIPPET.match(lines[i])
        if included:  # the included file's blocks are this page's blocks, where the reader sees them
            blocks += blocks_of(ROOT / included["path"])
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        lang = (match["info"].strip().split() or [""])[0].lower()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}\s*$",
                                               lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        skip = None
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0:
            directive = DIRECTIVE.search(lines[k])
            if directive and directive["body"].startswith("skip:"):
                skip = directive["body"][len("skip:"):].strip()
        blocks.append(Block(path, i + 1, lang, "\n".join(body) + "\n", skip))
        i = j + 1
    return blocks


def pages() -> list[Path]:
    """README.md and every page under docs/ that these tests own."""
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", *(p for p in docs if not p.relative_to(ROOT).as_posix().startswith(NOT_OURS))]


def chains(blocks: list[Block]) -> list[Chain]:
    """The python chains of one page; a continuation with no python block before it is an error."""
    out: list[Chain] = []
    for block in blocks:
        if block.lang != "python":
            continue
        if block.continues:
            if not out:
                raise AssertionError(f"{block.where} says it continues the previous block, but none comes before it")
            out.append(Chain([*out[-1].blocks, block]))
        else:
            out.append(Chain([block]))
    return out


# ---------------------------------------------------------------------------------------------- outputs
def pattern(expected: str) -> re.Pattern[str]:
    """``...`` is any text, ``<a placeholder>`` one value (no line break); the rest is literal."""
    parts = re.split(r"(\.\.\.|<[^<>\n]+>)", expected.strip())
    regex = "".join(".*?" if p == "..." else r"[^\n]+?" if p.startswith("<") and p.endswith(">") else re.escape(p)
                    for p in parts if p)
    return re.compile(regex, re.S)


def expected_prints(code: str) -> dict[tuple[int, int], str]:
    """{(first line, last line) of a top-level or nested ``print(...)`` statement: its trailing comment}."""
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string[1:].strip()
    out: dict[tuple[int, int], str] = {}
    for node in ast.walk(ast.parse(code)):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "print"):
            end = node.end_lineno or node.lineno
            if end in comments:
                out[(node.lineno, end)] = comments[end]
    return out


def check_prints(code: str, printed: list[tuple[int, str]], where: str) -> list[str]:
    """Mismatches between a block's output comments and what its prints printed (by line)."""
    problems = []
    for (first, last), comment in expected_prints(code).items():
        seen = [text for line, text in printed if first <= line <= last]
        if not seen:
            problems.append(f"{where} line {first}: print never ran; the page says it prints {comment!r}")
            continue
        if not pattern(comment).fullmatch(seen[-1].strip()):
            problems.append(f"{where} line {first}: printed {seen[-1].strip()!r}, the page says {comment!r}")
    return problems


def bash_expectations(code: str) -> list[tuple[str, str]]:
    """(command, expected start of its output) for each whole-line comment that follows a command."""
    out = []
    previous = None
    for line in code.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and previous is not None:
            out.append((previous, stripped[1:].strip()))
        elif stripped and not stripped.startswith("#"):
            previous = stripped
    return out


# ---------------------------------------------------------------------------------------------- running
def recording_print(filename: str, printed: list[tuple[int, str]]):
    """``print`` for a block's namespace: prints, and records (line in the block, text)."""

    def _print(*args, sep=" ", end="\n", file=None, flush=False):
        if file is not None and file is not sys.stdout:
            return builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != filename:
            frame = frame.f_back
        printed.append((frame.f_lineno if frame else -1, (sep or " ").join(str(a) for a in args)))
        return builtins.print(*args, sep=sep, end=end, flush=flush)

    return _print


def run_chain(chain: Chain) -> tuple[list[str], str]:
    """Run a chain's blocks in one namespace; (output-comment mismatches, everything printed)."""
    namespace: dict = {"__name__": "docs_block"}
    problems: list[str] = []
    everything: list[str] = []
    for block in chain.blocks:
        printed: list[tuple[int, str]] = []
        namespace["print"] = recording_print(block.where, printed)
        exec(compile(block.code, block.where, "exec", dont_inherit=True), namespace)
        problems += check_prints(block.code, printed, block.where)
        everything += [text for _, text in printed]
    return problems, "\n".join(everything)


def chain_at(where: str) -> Chain:
    """The chain that ends with the block at ``path:line``."""
    for page in pages():
        for chain in chains(blocks_of(page)):
            if chain.where == where:
                return chain
    raise KeyError(where)


if __name__ == "__main__":  # in another interpreter (the Airflow venv): run one chain, report as JSON
    problems, printed = run_chain(chain_at(sys.argv[1]))
    sys.stdout.write("\n@@DOCS-RESULT@@" + json.dumps({"problems": problems, "printed": printed}) + "\n")
