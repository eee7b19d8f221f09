"""The documentation site builds with ``mkdocs build --strict`` (broken links, anchors, nav entries and
API references fail it), and headless Chromium shows its pages: screenshots in ``test-artifacts/docs/``."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._blocks import ROOT

ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner is not a build warning


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=config.parent, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Path, float, str]]:
    path = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    proc = build(ROOT / "mkdocs.yml", path)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    yield path, seconds, proc.stdout + proc.stderr


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
    for rendered in (html, client):  # reStructuredText never shows raw
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


# ------------------------------------------------------------------------------------- in a browser
@pytest.fixture(scope="module")
def served(site) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(site[0]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    from tests.e2e._browser import Browser, chromium_path

    chromium_path()  # skip, or under CI=true fail, without Chromium
    artifacts = Path(os.environ.get("DAGSTER_CARGO_ARTIFACTS") or ROOT / "test-artifacts") / "docs"
    b = Browser(artifacts)
    try:
        yield b
    finally:
        b.close()


def _images_loaded(browser) -> list[str]:
    """The page's images that did not load (none, when the page is whole)."""
    return browser.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")


def test_the_getting_started_page_in_a_browser(served, browser):
    browser.open(f"{served}/getting-started/")
    browser.wait_for_text("Getting started", "Run the example once", "Your first asset, from Python", "Dagster guides")
    time.sleep(1)  # let the screenshots in the page decode
    assert _images_loaded(browser) == []
    assert browser.evaluate("document.querySelectorAll('img[src*=\"assets/ui/\"]').length") >= 4
    shot = browser.screenshot("getting-started")
    assert shot.stat().st_size > 10_000


def test_the_reference_page_in_a_browser(served, browser):
    browser.open(f"{served}/reference/dagster-cargo/")
    browser.wait_for_text("CargoResource", "run_play", "build_cargo_assets_definitions")
    shot = browser.screenshot("reference-dagster-cargo")
    assert shot.stat().st_size > 10_000
