"""A headless Chromium driven over the DevTools protocol (no browser download: the system's
``chromium``), for the UI tests: open a page, wait for text, click, take a screenshot.

CI installs Chromium from Debian in ``.ci/run``; on a developer machine without it the browser
tests skip, but under ``CI=true`` a missing Chromium fails them (see :func:`chromium_path`).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,2000"]  # tall: the whole metadata table, credits included, fits in one screenshot


def chromium_path() -> str:
    """The Chromium binary; skip when absent, except in CI (``CI=true``), where it must be there."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) if name else None
        if found:
            return found
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("Chromium is not installed, and CI=true: .ci/run installs it (apt-get install chromium).")
    pytest.skip("Chromium is not installed (CI installs it; locally: apt-get install chromium)")
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One headless Chromium with one page, driven through its DevTools websocket."""

    def __init__(self, artifacts: Path) -> None:
        from websockets.sync.client import connect

        self.artifacts = artifacts
        artifacts.mkdir(parents=True, exist_ok=True)
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        port = _free_port()
        self.process = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={self.profile}", f"--remote-debugging-port={port}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        page_ws = None
        while time.monotonic() < deadline and page_ws is None:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                page_ws = next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None)
            except (httpx.HTTPError, ValueError):
                time.sleep(0.3)
        if page_ws is None:
            self.close()
            raise AssertionError("Chromium's DevTools endpoint did not come up")
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(page_ws, max_size=64 * 1024 * 1024, open_timeout=30))
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def wait_for_text(self, *needles: str, timeout: float = 60.0) -> str:
        """The page's text once it contains every needle (the UI renders after its GraphQL calls)."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(n in text for n in needles):
                return text
            time.sleep(0.5)
        missing = [n for n in needles if n not in text]
        shot = self.screenshot("timeout")
        raise AssertionError(f"page never showed {missing} (screenshot {shot}); text:\n{text[:3000]}")

    def click_button(self, label: str) -> bool:
        """Click the first visible button whose text is exactly ``label``."""
        return bool(self.evaluate(f"""(() => {{
            const b = [...document.querySelectorAll('button')].find(
                e => e.innerText.trim() === {json.dumps(label)} && e.offsetParent !== null && !e.disabled);
            if (b) {{ b.click(); return true; }}
            return false;
        }})()"""))

    def screenshot(self, name: str) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path = self.artifacts / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "_stack", None) is not None:
                self._stack.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
            shutil.rmtree(self.profile, ignore_errors=True)
