"""The large-outputs guide's Dagster example runs as written (against the emulator)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
from cargo_gtm.running.clock import ManualClock
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-docs-4c1d"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_partitioned_parquet_example_materializes_a_day(tmp_path):
    (code,) = [b for b in python_blocks(ROOT / "docs" / "large_outputs.md") if "scored_companies_daily" in b]
    assert 'OUTPUT_ROOT = Path("/data/cargo")' in code
    namespace: dict = {}
    exec(compile(code.replace('Path("/data/cargo")', repr(str(tmp_path)).join(("Path(", ")"))),
                 "large_outputs.md", "exec", dont_inherit=True), namespace)
    # the real clock (speed 1) seeds records dated around today, inside the example's daily partitions; the
    # resource does not wait in real time: its sleeps move the emulator's clock forward by as much
    with CargoEmulator(token=TOKEN, speed=1.0, run_failure_rate=0.0) as emu:
        day = _a_day_with_records(emu)
        cargo = CargoResource(api_token=TOKEN, base_url=emu.base_url, poll_interval=0.01,
                              max_poll_interval=0.05).with_clock(ManualClock(on_sleep=emu.advance))
        result = dg.materialize([namespace["scored_companies_daily"], namespace["tier_a_counts"]],
                                resources={"cargo": cargo}, partition_key=day)
    assert result.success
    written = tmp_path / "scored_companies" / f"{day}.parquet"
    table = pq.read_table(written)
    meta = result.asset_materializations_for_node("scored_companies_daily")[0].metadata
    assert meta["dagster/row_count"].value == table.num_rows > 0
    assert "domain" in table.column_names and "tier" in table.column_names
    tier_a = result.asset_materializations_for_node("tier_a_counts")[0].metadata["dagster/row_count"].value
    assert tier_a == sum(t == "A" for t in table.column("tier").to_pylist())


def _a_day_with_records(emu: CargoEmulator) -> str:
    """The created_at day with the most seeded companies."""
    model = emu.store.model_by_slug("companies")
    days = Counter(str(r["created_at"])[:10] for r in emu.store.model_records(model["uuid"]))
    return days.most_common(1)[0][0]


# -- README: every Python block runs as written ------------------------------------------------------------
CONTINUES = "# continues the previous block"
README_TOKEN = "tok-readme-9e2a7f"


def readme_blocks() -> list[tuple[str, str, bool]]:
    """(id, code, continues) of every ```python block of the README, in order; the id is the
    section heading above the block."""
    text = (ROOT / "README.md").read_text()
    blocks = []
    for match in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        headings = re.findall(r"^#{2,3} (.+)$", text[:match.start()], flags=re.M)
        code = match.group(1)
        blocks.append((f"{len(blocks) + 1}-{headings[-1] if headings else 'top'}", code,
                       code.lstrip().startswith(CONTINUES)))
    return blocks


def test_the_readme_has_python_blocks_and_the_first_stands_alone():
    blocks = readme_blocks()
    assert len(blocks) >= 10
    assert not blocks[0][2]


def test_every_readme_python_block_runs_as_written(monkeypatch, tmp_path, capsys):
    """Each block, in order, in a fresh namespace unless it says it continues the previous one,
    against an emulator reached through the environment variables the README names."""
    import warnings

    from dagster_cargo.running.resource import CargoTokenExposureWarning

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARGO_WORKSPACE_UUID", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    failures = []
    # real time (marked slow in tests/conftest.py): the README's code runs as written, so its clients wait on the
    # system clock, which cannot be pointed at a manual-clock emulator
    with CargoEmulator(token=README_TOKEN, speed=400, run_failure_rate=0.0, credits=1_000_000) as emu:
        monkeypatch.setenv("CARGO_API_TOKEN", README_TOKEN)
        monkeypatch.setenv("CARGO_BASE_URL", emu.base_url)
        namespace: dict = {}
        for block_id, code, continues in readme_blocks():
            if not continues:
                namespace = {"__name__": f"readme_block_{block_id}"}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", CargoTokenExposureWarning)  # the README never shows a literal token
                    exec(compile(code, f"README.md block {block_id}", "exec", dont_inherit=True), namespace)
            except Exception as exc:  # collect them all: one report names every broken block
                failures.append(f"{block_id}: {type(exc).__name__}: {exc}")
        printed = capsys.readouterr().out
    assert not failures, "\n".join(failures)
    assert README_TOKEN not in printed
    assert "credits left" in printed and "rows" in printed
