"""Headless Chromium opens the built documentation site (getting started, the reference) and saves
screenshots to ``test-artifacts/docs/`` (``DAGSTER_CARGO_ARTIFACTS`` overrides). Reuses the DevTools
driver of the UI tests (``tests/e2e/_browser.py``): skipped without Chromium, failed without it under CI=true."""

from __future__ import annotations

import functools
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._blocks import ROOT


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


def top_of_page(browser, name: str, height: int = 2000) -> Path:
    """A screenshot of the page's first ``height`` pixels."""
    import base64

    data = browser.send("Page.captureScreenshot", format="png",
                        clip={"x": 0, "y": 0, "width": 1400, "height": height, "scale": 1})["data"]
    path = browser.artifacts / f"{name}.png"
    path.write_bytes(base64.b64decode(data))
    return path


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
    browser.wait_for_text("CargoResource", "run_play", "build_cargo_assets_definitions", "poll_timeout")
    shot = top_of_page(browser, "reference-dagster-cargo")  # the whole page is ~30,000 px tall
    assert shot.stat().st_size > 10_000
