"""Every code block of docs/airflow/*.md runs, as written, against the emulator (CARGO_API_TOKEN and
CARGO_BASE_URL set, as the docs say). Python blocks run in-process; a block that defines a DAG is written to
the DAGs folder and run with ``dag.test()`` unless it waits for an asset event or a placeholder batch.
A block starting with ``# continues the previous block`` runs after the block above it. Bash blocks run in
bash from the repository root with the test venv first on PATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN, ti_states, write_dag

DOCS = Path(__file__).resolve().parents[2] / "docs" / "airflow"
REPO = DOCS.parents[1]
CONTINUES = "# continues the previous block"
#: DAGs that need an asset event or a real batch uuid: defined (imported) but not run
DEFINE_ONLY = {"docs_on_segment_change", "docs_wait_for_batch"}


def blocks() -> list[tuple[str, int, str, str]]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        for i, match in enumerate(re.finditer(r"```(\w+)\n(.*?)```", path.read_text(), re.S)):
            found.append((path.name, i, match.group(1), match.group(2)))
    return found


BLOCKS = blocks()


def test_the_docs_have_code_blocks_and_only_python_or_bash() -> None:
    assert len(BLOCKS) >= 10
    assert {lang for _, _, lang, _ in BLOCKS} == {"python", "bash"}


def _source(name: str, index: int) -> str:
    """The block's source, preceded by the blocks it continues."""
    same = [b for b in BLOCKS if b[0] == name and b[2] == "python"]
    chain = []
    for *_, code in reversed([b for b in same if b[1] <= index]):
        chain.insert(0, code)
        if not code.startswith(CONTINUES):
            break
    return "\n".join(chain)


@pytest.fixture
def docs_env(cargo_conn: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)
    monkeypatch.setenv("CARGO_BASE_URL", cargo_conn.base_url)
    import pandas as pd

    pd.DataFrame([{"domain": "umbrella.com"}, {"domain": "hooli.com"}]).to_csv("/tmp/cargo-docs-signups.csv",
                                                                              index=False)
    return cargo_conn


@pytest.mark.parametrize(("name", "index"), [(n, i) for n, i, lang, _ in BLOCKS if lang == "python"],
                         ids=lambda v: str(v))
def test_python_block_runs(docs_env: Any, name: str, index: int, capsys: pytest.CaptureFixture[str]) -> None:
    source = _source(name, index)
    namespace: dict[str, Any] = {"__name__": f"docs_{name}_{index}"}
    exec(compile(source, f"{name}[{index}]", "exec"), namespace)  # noqa: S102 - the docs' own code
    dag = namespace.get("dag")
    if dag is None or dag.dag_id in DEFINE_ONLY or source.startswith(CONTINUES):
        return
    runnable = write_dag(dag.dag_id, "pass")  # the DAGs folder must hold it for dag.test(): the block's file
    Path(runnable.fileloc).write_text(source)
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"docs_dag_{dag.dag_id}", runnable.fileloc)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag_run = module.dag.test()
    states = ti_states(dag.dag_id, dag_run.run_id)
    assert states and set(states.values()) == {"success"}, states


def _bash(code: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("AIRFLOW_CONN_CARGO_DEFAULT", None)  # the block sets it itself where it needs it
    env["PIP_NO_COMPILE"] = "1"  # pip only: skip byte-compiling Airflow's packages (minutes of CPU on 2 cores)
    return subprocess.Popen(["bash", "-euo", "pipefail", "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def start_bash_block(test_name: str) -> subprocess.Popen[str]:
    """Start the bash block a ``test_bash_block_runs[<file>-<index>]`` test checks (conftest: in the background)."""
    name, index = test_name[test_name.index("[") + 1:-1].rsplit("-", 1)
    (code,) = [c for n, i, _, c in BLOCKS if (n, i) == (name, int(index))]
    return _bash(code)


@pytest.mark.parametrize(("name", "index"), [(n, i) for n, i, lang, _ in BLOCKS if lang == "bash"],
                         ids=lambda v: str(v))
def test_bash_block_runs(docs_env: Any, name: str, index: int, request: pytest.FixtureRequest) -> None:
    from conftest import BACKGROUND

    (code,) = [c for n, i, _, c in BLOCKS if (n, i) == (name, index)]
    proc = BACKGROUND.pop(request.node.name, None) or _bash(code)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{name}[{index}]:\n{code}\n{out[-3000:]}\n{err[-3000:]}"
    assert TOKEN not in out + err


def test_the_install_block_leaves_a_venv_without_dagster() -> None:
    """After the install block of index.md ran (a fresh venv with only the client and the provider)."""
    venv = Path("/tmp/cargo-airflow-venv")
    if not (venv / "bin" / "python").exists():
        pytest.skip("the install block has not run in this session")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", "import dagster"], capture_output=True, text=True)
    assert done.returncode != 0 and "No module named 'dagster'" in done.stderr
