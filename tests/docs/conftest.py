"""The built documentation site, shared by the build and browser tests (one ``mkdocs build --strict``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._blocks import ROOT

ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner is not a build warning


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=config.parent, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Iterator[tuple[Path, float, str]]:
    path = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    proc = build(ROOT / "mkdocs.yml", path)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    yield path, seconds, proc.stdout + proc.stderr


