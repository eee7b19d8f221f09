"""Every code block of the README and of docs/ runs as written, and shows what it really prints.

See ``_blocks.py`` for the conventions (continuations, output comments, skips). Each python chain runs
against its own emulator, so a block never depends on what another page did to the workspace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from ._blocks import (
    ROOT,
    Chain,
    bash_expectations,
    blocks_of,
    chains,
    pages,
    pattern,
    run_chain,
)

TOKEN = "tok-docs-9e2a7f"
PAGES = pages()
BLOCKS = [b for page in PAGES for b in blocks_of(page)]
CHAINS = [c for page in PAGES for c in chains(blocks_of(page))]
BASH = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell")]
YAML = [b for b in BLOCKS if b.lang in ("yaml", "yml")]


def _emulator():
    from cargo_gtm_emulator import CargoEmulator

    return CargoEmulator(token=TOKEN, speed=400, run_failure_rate=0.0, credits=1_000_000)


@pytest.fixture
def cargo_env(monkeypatch, tmp_path):
    """A fresh emulator, the environment the pages name, a scratch working directory and DAGSTER_HOME."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARGO_WORKSPACE_UUID", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with _emulator() as emu:
        monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)
        monkeypatch.setenv("CARGO_BASE_URL", emu.base_url)
        yield emu


def run_dagster_chain(chain: Chain) -> tuple[list[str], str]:
    from dagster_cargo.running.resource import CargoTokenExposureWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", CargoTokenExposureWarning)  # the pages never show a literal token
        return run_chain(chain)


def is_airflow(chain: Chain) -> bool:
    return any(re.search(r"^\s*(from|import) (airflow|cargo_provider)\b", b.code, re.M) for b in chain.blocks)


def airflow_python() -> Path | None:
    """The Airflow provider's own venv (airflow-provider-cargo/run-tests.sh builds it; no Dagster in it)."""
    venv = Path(os.environ.get("AIRFLOW_VENV") or ROOT / ".venv-airflow")
    python = venv / "bin" / "python"
    return python if python.exists() else None


def run_airflow_chain(chain: Chain, tmp_path: Path) -> tuple[list[str], str]:
    """An Airflow block runs in the provider's venv (Airflow and Dagster do not share one), same checks."""
    python = airflow_python()
    if python is None:
        pytest.skip("no Airflow venv: airflow-provider-cargo/run-tests.sh builds .venv-airflow (or set AIRFLOW_VENV)")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(python), "-m", "tests.docs._blocks", chain.where], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "@@DOCS-RESULT@@" in proc.stdout, f"{chain.where}:\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(proc.stdout.rsplit("@@DOCS-RESULT@@", 1)[1])
    return result["problems"], result["printed"]


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: c.where)
def test_python_block_runs_and_prints_what_the_page_says(chain, cargo_env, tmp_path):
    assert not any(b.skip for b in chain.blocks), "python blocks always run: make the block runnable"
    problems, printed = run_airflow_chain(chain, tmp_path) if is_airflow(chain) else run_dagster_chain(chain)
    assert not problems, "\n".join(problems)
    assert TOKEN not in printed


@pytest.mark.parametrize("block", [b for b in BASH if not b.skip], ids=lambda b: b.where)
def test_bash_block_runs_and_prints_what_the_page_says(block, cargo_env, tmp_path):
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{block.where} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout + proc.stderr
    position = 0
    for command, expected in bash_expectations(block.code):
        found = pattern(expected).search(out, position)
        assert found, f"{block.where}: {command!r} should print {expected!r}; it printed:\n{out}"
        position = found.end()
    assert TOKEN not in out


@pytest.mark.parametrize("block", YAML, ids=lambda b: b.where)
def test_yaml_block_parses(block):
    document = yaml.safe_load(block.code)
    assert isinstance(document, dict), f"{block.where} is not a YAML mapping"
    if "type" in document:  # a dg component's defs.yaml: the type names a real component
        module, _, name = document["type"].rpartition(".")
        assert hasattr(__import__(module, fromlist=[name]), name), document["type"]


def test_every_block_is_run_parsed_or_shown_and_every_skip_says_why():
    langs = {b.lang for b in BLOCKS}
    assert langs <= {"python", "bash", "yaml", "text"}, f"a block of an unchecked kind: {langs}"
    assert [b for b in BLOCKS if b.lang == "python"], "no python block found: the parser is broken"
    for block in BLOCKS:
        assert block.skip is None or (block.lang == "bash" and len(block.skip) > 10), block.where


#: blocks that do not run, per page: servers that run until stopped, `make test` itself, installs, a real
#: token, a dg project; each says why next to it. A new one is a decision: change this list with it.
KNOWN_SKIPS = {"README.md": 2, "cargo-gtm-emulator/cargo_gtm_emulator/EMULATOR.md": 2, "docs/dagster/large-outputs.md": 1,
               "docs/dagster/real-workspace.md": 2, "docs/dagster/workspace-and-components.md": 1,
               "docs/getting-started.md": 3, "docs/reports/performance.md": 1, "docs/reports/robustness.md": 1}


def test_skipped_blocks_are_the_known_few():
    skipped: dict[str, int] = {}
    for block in BLOCKS:
        if block.skip:
            page = block.where.rsplit(":", 1)[0]
            skipped[page] = skipped.get(page, 0) + 1
    assert skipped == KNOWN_SKIPS


# ---------------------------------------------------------------------------------------- the harness
def test_a_wrong_output_comment_fails(tmp_path):
    """The harness can fail: a page claiming False where True is printed is reported."""
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1 + 1\nprint(x == 2)  # False\n```\n\n"
                    "```python\n# continues the previous block\nprint(f'{x} rows, batch {x * 7}')  # 2 rows, batch <uuid>\n```\n")
    first, second = chains(blocks_of(page))
    problems, _ = run_chain(first)
    assert len(problems) == 1 and "printed 'True', the page says 'False'" in problems[0], problems
    problems, printed = run_chain(second)  # the continuation's own comment holds (<uuid> is any value)
    assert len(problems) == 1 and printed.endswith("2 rows, batch 14"), problems


def test_patterns():
    assert pattern("2 0").fullmatch("2 0") and not pattern("2 0").fullmatch("2 1")
    assert pattern("v1:<release uuid>").fullmatch("v1:0f3e-aa")
    assert pattern("about 20.3 credits: ...").fullmatch("about 20.3 credits: 10 records x 2")
    assert not pattern("['success']").fullmatch("['error', 'success']")


def test_a_continuation_without_a_block_before_it_is_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\n# continues the previous block\nx = 1\n```\n")
    with pytest.raises(AssertionError, match="none comes before it"):
        chains(blocks_of(page))


def test_skip_directives_and_indented_fences_are_read(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("* item:\n\n  ```python\n  y = 2\n  ```\n\n<!-- docs-test: skip: a server that never exits -->\n"
                    "```bash\nmake demo\n```\n")
    python, bash = blocks_of(page)
    assert (python.lang, python.code, python.skip) == ("python", "y = 2\n", None)
    assert (bash.lang, bash.skip) == ("bash", "a server that never exits")


def test_the_getting_started_emulator_command_serves(tmp_path):
    """The skipped getting-started block that starts an emulator (a server: it runs until stopped) is run
    here as written, on a free port: it comes up, answers with the exported token, and stops on SIGTERM."""
    import signal
    import socket
    import time

    import httpx

    (block,) = [b for b in BLOCKS if b.where.startswith("docs/getting-started.md") and "cargo-emulator serve" in b.code]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = block.code.replace("8765", str(port))
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CARGO_API_TOKEN", "CARGO_BASE_URL")}
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        ready = ""
        while time.monotonic() < deadline and "ready" not in ready:
            ready = proc.stdout.readline() if proc.stdout else ""
            assert ready or proc.poll() is None, f"{block.where}: the emulator exited ({proc.poll()})"
        assert f"http://127.0.0.1:{port}" in ready, ready
        token = re.search(r"CARGO_API_TOKEN=(\S+)", code)[1]
        plays = httpx.get(f"http://127.0.0.1:{port}/v1/orchestration/plays/list",
                          headers={"authorization": f"Bearer {token}"}, timeout=10)
        assert plays.status_code == 200 and plays.json()["plays"], plays.text
        assert token not in ready
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(10) is not None, "the emulator did not stop within 10 s of SIGTERM"
