"""The Python blocks of docs/_incoming/run.md run as written against the emulator, and print what they say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from cargo_gtm.running.clock import ManualClock
from cargo_gtm_emulator import CargoEmulator

from ..conftest import TOKEN

DOC = Path(__file__).resolve().parents[2] / "docs" / "_incoming" / "run.md"


def test_run_docs_blocks_print_their_comments(monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 2
    with CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=0.0, credits=1000) as emu:
        monkeypatch.setenv("CARGO_API_TOKEN", TOKEN)
        monkeypatch.setenv("CARGO_BASE_URL", emu.base_url)
        import cargo_gtm

        real = cargo_gtm.CargoClient
        monkeypatch.setattr(cargo_gtm, "CargoClient",  # the same client, waiting on the emulator's manual clock
                            lambda *a, **kw: real(*a, clock=ManualClock(on_sleep=emu.advance), **kw))
        namespace: dict = {}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            for n, code in enumerate(blocks):
                exec(compile(code, f"run.md block {n}", "exec", dont_inherit=True), namespace)
        namespace["client"].close()
    printed = out.getvalue().splitlines()
    expected = [m.group(1) for b in blocks for m in re.finditer(r"print\(.*\)  # (.*)", b)]
    assert [printed[0], printed[1], printed[3]] == expected
    assert float(printed[2]) == 4.06  # 2 records x (2 provider credits + 3 node executions x 0.01)
