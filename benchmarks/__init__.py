"""dagster-cargo benchmarks: every figure next to a baseline measured in the same run.

Run all with ``.venv/bin/python -m benchmarks`` (``--quick`` for a small smoke run, ``--only B1,B3``
for a subset). Each module ``bN_*.py`` exposes ``run(quick: bool) -> list[Row]``.
"""
