"""The documentation site builds with ``mkdocs build --strict``: a broken link, anchor, nav entry or API
reference fails it (``validation:`` in mkdocs.yml turns each into a warning, ``--strict`` into an error)."""

from __future__ import annotations

import shutil
import sys

import pytest

from ._blocks import ROOT
from .conftest import build


def test_the_site_builds_strict_without_a_warning(site):
    path, seconds, log = site
    assert "WARNING" not in log, log
    print(f"mkdocs build --strict: {seconds:.1f} s")
    for page in ("index.html", "getting-started/index.html", "reference/dagster-cargo/index.html",
                 "reference/cargo-gtm/index.html", "reports/robustness/index.html", "reports/performance/index.html",
                 "dagster/large-outputs/index.html", "concepts/emulator/index.html"):
        assert (path / page).is_file(), page


def test_the_reference_is_generated_from_the_docstrings(site):
    path, _, _ = site
    html = (path / "reference" / "dagster-cargo" / "index.html").read_text()
    assert 'id="dagster_cargo.CargoResource"' in html and "poll_timeout" in html
    client = (path / "reference" / "cargo-gtm" / "index.html").read_text()
    assert 'id="cargo_gtm.CargoClient"' in client and "wait_for_batch" in client
    airflow = (path / "reference" / "cargo-provider" / "index.html").read_text()
    assert 'id="cargo_provider.operators.cargo.CargoRunOperator"' in airflow and "credit_budget" in airflow
    for rendered in (html, client, airflow):  # reStructuredText never shows raw
        assert ".. code-block::" not in rendered and ":class:`" not in rendered


def test_the_emulator_ledger_is_on_its_page(site):
    html = (site[0] / "concepts" / "emulator" / "index.html").read_text()
    assert "Fidelity ledger" in html and "CARGO-DOCS" in html


def test_the_airflow_section_lists_the_airflow_pages(site):
    airflow = sorted(p.stem for p in (ROOT / "docs" / "airflow").glob("*.md"))
    if not airflow:
        pytest.fail("docs/airflow/ has no page: the Airflow section would be empty")
    nav = (site[0] / "index.html").read_text()
    for stem in airflow:
        assert ("airflow/" if stem == "index" else f"airflow/{stem}/") in nav, stem


def test_a_broken_link_fails_the_build(tmp_path):
    """--strict and the validation settings catch a link to a page that does not exist."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for package in ("dagster_cargo", "cargo-gtm-client", "cargo-gtm-emulator", "airflow-provider-cargo"):
        if (ROOT / package).exists():
            (tmp_path / package).symlink_to(ROOT / package)
    page = tmp_path / "docs" / "getting-started.md"
    page.write_text(page.read_text() + "\nSee [a page that does not exist](dagster/nowhere.md#nothing).\n")
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert "dagster/nowhere.md" in proc.stdout + proc.stderr


def test_rst_in_docstrings_becomes_markdown():
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        from griffe_rst import rst_to_markdown
    finally:
        sys.path.pop(0)
    text = "Wraps :class:`~cargo_gtm.CargoClient` and ``x``.\n\nExample:\n    .. code-block:: python\n\n        a = 1\n        b = 2\n"
    assert rst_to_markdown(text) == ("Wraps `CargoClient` and `x`.\n\nExample:\n    ```python\n    a = 1\n    b = 2\n"
                                     "    ```")


def test_the_readme_stays_short_and_its_links_resolve():
    """Issue 21: a README of at most 150 lines; every relative link of it names a file or folder of the repo."""
    import re

    root = ROOT
    text = (root / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]
    assert targets, "the README links into docs/"
    assert [t for t in targets if t and not (root / t).exists()] == []
