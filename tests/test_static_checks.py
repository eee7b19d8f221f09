"""Type hints and lint stay clean (the package ships py.typed, so its types are public API)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_is_clean_on_the_package():
    out = run("mypy", "dagster_cargo")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_ruff_is_clean():
    out = run("ruff", "check", "dagster_cargo", "tests", "example_project")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
