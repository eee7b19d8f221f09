"""B6 emulator headroom: how many requests per second the emulator sustains, against what B1-B3 need.

The emulator runs in its own process (``python -m benchmarks.b6_emulator serve``) so that neither
the load generator nor the client under test shares its interpreter lock. It is driven from this
process:

* **Capacity.** A raw-socket load generator (pre-encoded HTTP/1.1 requests over keep-alive
  connections, minimal response parsing: a few microseconds of Python per request, far below the
  server's cost) hammers the hot endpoints: ``GET /v1/orchestration/batches/{uuid}`` with 1, 4
  and 16 connections while 50 batches of 200 records are running (B1's shape), and
  ``POST /v1/orchestration/batches`` (a one-record tool batch) with 1 and 4 connections. Presigned
  CSV downloads are drained with ``http.client`` (no parsing) for the stream rate, both kinds: a
  file served from disk (how B3 serves its 1M rows) and rows the emulator renders (batch downloads).
* **Need.** A B1-like load with the real client against the same kind of emulator process:
  50 batches x 200 records at x40 Cargo time, created one after the other, then waited for in one
  adaptive polling loop (poll 1 s .. 15 s of Cargo time, as B1) and downloaded as each finishes.
  Its peak request rate (busiest 250 ms window) and the emulator's CPU share during it (child
  process CPU seconds / wall seconds) are what B1 needs. B2 polls in the same kind of loop, so what
  it needs is a round trip far shorter than its shortest poll interval. B3 needs the client's CSV
  download-and-parse rate, measured on the file so that the emulator cannot hold it back.

Each row shows the emulator's figure next to the need, and the headroom ratio (capacity / need).
Timings are reported, never pass/fail in CI.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from ._report import Row, fmt

TOKEN = "bench-b6-token"
ROOT = Path(__file__).resolve().parents[1]  # the child runs ``python -m benchmarks.b6_emulator`` from here
TOOL = "Enrich company"
B1_SPEED = 40.0  # B1's Cargo-time factor: polls every 1..15 s of Cargo time = 25..375 ms of wall time
EXPORT_COLUMNS = ["_id", "_title", "domain", "company_name", "email", "job_title", "employee_count",
                  "score", "is_decision_maker", "enriched_at"]


# --------------------------------------------------------------------------- the emulator process
def _export_rows(n: int) -> list[dict[str, Any]]:
    """``n`` enrichment-shaped output rows for a download benchmark (cheap to generate)."""
    return [{"_id": f"rec_{i:08d}", "_title": f"Company {i}", "domain": f"company{i}.example.com",
             "company_name": f"Company {i}", "email": f"first.last{i}@company{i}.example.com",
             "job_title": "Head of Growth" if i % 3 else "CEO", "employee_count": 10 + i % 5000,
             "score": (i % 100) / 10, "is_decision_maker": i % 2 == 0,
             "enriched_at": "2025-01-15T10:00:00.000Z"} for i in range(n)]


def _serve(argv: Sequence[str]) -> int:
    """Child process: serve an emulator and answer one JSON line per command read from stdin.

    Commands: ``count`` (API requests logged so far), ``clear`` (empty the request log), ``cpu``
    (this process's CPU seconds), ``export N`` (register an N-row CSV export rendered from rows, as
    batch downloads are; its URL), ``exportfile PATH`` (register a file served from disk, as B3's
    outputs are; its URL, or null when this emulator cannot). EOF stops.
    """
    from cargo_gtm_emulator import CargoEmulator

    parser = argparse.ArgumentParser(prog="python -m benchmarks.b6_emulator serve")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--extra-workflows", type=int, default=0)
    parser.add_argument("--max-concurrent-runs", type=int, default=10)
    args = parser.parse_args(argv)
    emu = CargoEmulator(token=TOKEN, speed=args.speed, run_failure_rate=0.0, credits=10**12,
                        max_concurrent_runs=args.max_concurrent_runs, extra_workflows=args.extra_workflows)
    emu.start()
    print(json.dumps({"base_url": emu.base_url}), flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            reply: dict[str, Any]
            if words[0] == "count":
                reply = {"api_calls": sum(1 for e in list(emu.request_log) if e["path"].startswith("/v1/"))}
            elif words[0] == "clear":
                emu.request_log.clear()
                reply = {"ok": True}
            elif words[0] == "cpu":
                t = os.times()
                reply = {"cpu": t.user + t.system}
            elif words[0] == "export":
                path = emu.store.downloads.create(EXPORT_COLUMNS, _export_rows(int(words[1])))
                reply = {"url": emu.base_url + path}
            elif words[0] == "exportfile":  # a file served from disk, as B3 serves its outputs
                create_from_file = getattr(emu.store.downloads, "create_from_file", None)
                reply = ({"url": emu.base_url + create_from_file(line.split(None, 1)[1].strip())}
                         if create_from_file is not None else {"url": None})
            else:
                reply = {"error": f"unknown command {words[0]!r}"}
            print(json.dumps(reply), flush=True)
    finally:
        emu.stop()
    return 0


class EmulatorProcess:
    """A :class:`~cargo_gtm_emulator.CargoEmulator` in a child process, with a control channel.

    Use as a context manager; :attr:`base_url` is where it listens. The child's request log, CPU time
    and download exports are reached through :meth:`api_calls`, :meth:`clear_log`, :meth:`cpu_seconds`
    and :meth:`export_url`.
    """

    def __init__(self, *, speed: float = 1.0, extra_workflows: int = 0, max_concurrent_runs: int = 10) -> None:
        self.args = ["--speed", str(speed), "--extra-workflows", str(extra_workflows),
                     "--max-concurrent-runs", str(max_concurrent_runs)]
        self.token = TOKEN
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> EmulatorProcess:
        self._proc = subprocess.Popen([sys.executable, "-m", "benchmarks.b6_emulator", "serve", *self.args],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline()
        if not first:
            self._proc.wait(timeout=10)
            raise RuntimeError(f"emulator process exited with {self._proc.returncode}")
        self.base_url = json.loads(first)["base_url"]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        assert proc.stdin is not None
        try:
            proc.stdin.close()  # EOF: the child stops its server and exits
            proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)

    @property
    def host_port(self) -> tuple[str, int]:
        """``(host, port)`` the emulator listens on."""
        hostport = self.base_url.split("://", 1)[1]
        host, port = hostport.rsplit(":", 1)
        return host, int(port)

    def _command(self, line: str) -> dict[str, Any]:
        with self._lock:
            proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            reply: dict[str, Any] = json.loads(proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def api_calls(self) -> int:
        """API (``/v1/``) requests the emulator has logged since the last :meth:`clear_log`."""
        return int(self._command("count")["api_calls"])

    def clear_log(self) -> None:
        """Empty the emulator's request log."""
        self._command("clear")

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the emulator process has used so far."""
        return float(self._command("cpu")["cpu"])

    def export_url(self, rows: int) -> str:
        """A presigned URL of a ``rows``-row CSV export the emulator renders from rows."""
        return str(self._command(f"export {rows}")["url"])

    def export_file_url(self, path: str) -> str | None:
        """A presigned URL serving the file at ``path`` from disk (``None`` if the emulator cannot)."""
        url = self._command(f"exportfile {path}")["url"]
        return None if url is None else str(url)


# --------------------------------------------------------------------------- raw keep-alive load generator
class RawConnection:
    """One keep-alive HTTP/1.1 connection sending pre-encoded requests (responses need Content-Length)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw`` and return ``(status, body)``."""
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self._buf:
            self._recv()
        head, _, rest = self._buf.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        while len(rest) < length:
            more = self.sock.recv(1 << 16)
            if not more:
                raise ConnectionError("connection closed mid-body")
            rest += more
        self._buf = rest[length:]
        return status, rest[:length]

    def _recv(self) -> None:
        more = self.sock.recv(1 << 16)
        if not more:
            raise ConnectionError("connection closed by the emulator")
        self._buf += more

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def encode_request(method: str, path: str, host: str, body: Any = None) -> bytes:
    """An HTTP/1.1 request with the bearer token, ready to send as is."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {TOKEN}",
             "Accept: application/json", "Connection: keep-alive"]
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass
class LoadResult:
    """What one load run measured."""

    connections: int
    requests: int  # requests sent within the measured window (all answered)
    wall: float  # the measured window, seconds
    errors: int  # non-200 answers
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0  # wall seconds the CPU figures cover
    generator_cpu: float = 0.0  # load generator process CPU seconds during the run
    emulator_cpu: float = 0.0  # emulator process CPU seconds during the run

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.wall if self.wall > 0 else 0.0

    @property
    def emulator_share(self) -> float:
        """The emulator process's CPU use, as a share of one core."""
        return self.emulator_cpu / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def generator_share(self) -> float:
        """The load generator's CPU use, as a share of one core."""
        return self.generator_cpu / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile (``q`` in [0, 1]) in seconds."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(emu: EmulatorProcess, requests_for: Callable[[int], list[bytes]], connections: int,
          seconds: float, warmup: float = 0.2) -> LoadResult:
    """Send requests as fast as the emulator answers, on ``connections`` keep-alive connections.

    Connection ``i`` cycles through ``requests_for(i)``. After ``warmup`` seconds, requests that
    complete within the next ``seconds`` are counted; every response must be a 200.
    """
    host, port = emu.host_port
    conns = [RawConnection(host, port) for _ in range(connections)]
    counts = [0] * connections
    errors = [0] * connections
    latencies: list[list[float]] = [[] for _ in range(connections)]
    ready = threading.Barrier(connections + 1)
    start_at = [0.0]

    def worker(i: int) -> None:
        conn, reqs = conns[i], requests_for(i)
        ready.wait()
        begin = start_at[0]
        end = begin + seconds
        n = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            status, _ = conn.request(reqs[n % len(reqs)])
            n += 1
            t1 = time.perf_counter()
            if t0 >= begin:
                counts[i] += 1
                latencies[i].append(t1 - t0)
                if status != 200:
                    errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    start_at[0] = time.perf_counter() + warmup
    ready.wait()
    time.sleep(warmup)
    cpu0, emu0, wall0 = time.process_time(), emu.cpu_seconds(), time.perf_counter()
    for t in threads:
        t.join()
    result = LoadResult(connections, sum(counts), seconds, sum(errors), [x for lst in latencies for x in lst],
                        elapsed=time.perf_counter() - wall0, generator_cpu=time.process_time() - cpu0,
                        emulator_cpu=emu.cpu_seconds() - emu0)
    for conn in conns:
        conn.close()
    return result


# --------------------------------------------------------------------------- scenarios
def _tool_workflow(emu: EmulatorProcess) -> str:
    from cargo_gtm import CargoClient

    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        return client.find_tool(TOOL).workflow_uuid


def _b1_records(n: int, offset: int = 0) -> list[dict[str, Any]]:
    return [{"domain": f"fan{i}.example.com", "company_name": f"Fan {i}"} for i in range(offset, offset + n)]


def start_batches(emu: EmulatorProcess, workflow: str, n_batches: int, per_batch: int) -> list[str]:
    """Create ``n_batches`` tool batches of ``per_batch`` records (raw requests); their uuids."""
    host, port = emu.host_port
    conn = RawConnection(host, port)
    uuids = []
    for i in range(n_batches):
        body = {"workflowUuid": workflow, "data": {"kind": "records", "records": _b1_records(per_batch, i * per_batch)}}
        status, payload = conn.request(encode_request("POST", "/v1/orchestration/batches", host, body))
        if status != 200:
            raise RuntimeError(f"create batch failed: {status} {payload[:200]!r}")
        uuids.append(json.loads(payload)["batch"]["uuid"])
    conn.close()
    return uuids


def measure_get_batch(n_batches: int, per_batch: int, levels: Sequence[int], seconds: float
                      ) -> dict[int, LoadResult]:
    """GET batch throughput at each connection count, while ``n_batches`` batches are running."""
    with EmulatorProcess(speed=1.0) as emu:
        host, _ = emu.host_port
        uuids = start_batches(emu, _tool_workflow(emu), n_batches, per_batch)
        gets = [encode_request("GET", f"/v1/orchestration/batches/{u}", host) for u in uuids]
        out = {}
        for c in levels:
            out[c] = drive(emu, lambda i: gets[i % len(gets):] + gets[:i % len(gets)], c, seconds)
            emu.clear_log()
        return out


def measure_create_batch(levels: Sequence[int], seconds: float) -> dict[int, LoadResult]:
    """POST create-batch throughput (a one-record tool batch per request) at each connection count."""
    out = {}
    for c in levels:
        with EmulatorProcess(speed=1.0) as emu:  # a fresh emulator per level: same engine load for each
            host, _ = emu.host_port
            workflow = _tool_workflow(emu)

            def creates(i: int, _host: str = host, _wf: str = workflow) -> list[bytes]:
                return [encode_request("POST", "/v1/orchestration/batches", _host,
                                       {"workflowUuid": _wf, "data": {"kind": "records",
                                                                      "records": _b1_records(1, 1000 * i + k)}})
                        for k in range(50)]

            out[c] = drive(emu, creates, c, seconds)
    return out


def measure_b1_need(n_batches: int, per_batch: int) -> dict[str, float]:
    """A B1-like client load (real ``CargoClient``); its request rates and the emulator's CPU share."""
    from cargo_gtm import CargoClient
    from cargo_gtm.running.waiting import wait_for_batches

    with EmulatorProcess(speed=B1_SPEED) as emu, CargoClient(TOKEN, base_url=emu.base_url) as client:
        workflow = client.find_tool(TOOL).workflow_uuid
        stamps: list[float] = []
        rows = 0
        cpu0, wall0 = emu.cpu_seconds(), time.perf_counter()
        uuids = []
        for i in range(n_batches):
            batch = client.create_batch(workflow, {"kind": "records", "records": _b1_records(per_batch, i * per_batch)})
            uuids.append(batch.uuid)
            stamps.append(time.perf_counter())
        create_wall = time.perf_counter() - wall0

        def get_batch(uuid: str) -> Any:
            batch = client.get_batch(uuid)
            stamps.append(time.perf_counter())
            return batch

        def on_progress(progress: Any) -> None:
            nonlocal rows
            if progress.batch.is_terminal:
                rows += len(client.download_batch_dataframe(progress.batch.uuid))
                stamps.append(time.perf_counter())

        wait_for_batches(get_batch, uuids, timeout=600, poll_interval=1.0 / B1_SPEED,
                         max_poll_interval=15.0 / B1_SPEED, on_progress=on_progress)
        wall = time.perf_counter() - wall0
        emu_cpu = emu.cpu_seconds() - cpu0
        calls = emu.api_calls()
    window = 0.25
    peak = 0
    j = 0
    for i, t in enumerate(stamps):  # busiest window of `window` seconds (stamps are increasing)
        while stamps[j] < t - window:
            j += 1
        peak = max(peak, i - j + 1)
    assert rows == n_batches * per_batch, rows
    return {"wall": wall, "requests": float(len(stamps)), "api_calls": float(calls), "mean_rate": len(stamps) / wall,
            "peak_rate": peak / window, "create_rate": n_batches / create_wall, "emulator_share": emu_cpu / wall}


def _drain(emu: EmulatorProcess, url: str) -> tuple[float, int, float]:
    """Best of 2 downloads of ``url`` read and discarded: ``(seconds, bytes, emulator CPU seconds)``."""
    host, port = emu.host_port
    split = urlsplit(url)
    best: tuple[float, int, float] | None = None
    for _ in range(2):
        conn = http.client.HTTPConnection(host, port, timeout=300)
        cpu0, t0 = emu.cpu_seconds(), time.perf_counter()
        conn.request("GET", f"{split.path}?{split.query}")
        resp = conn.getresponse()
        size = 0
        while chunk := resp.read(1 << 20):
            size += len(chunk)
        got = (time.perf_counter() - t0, size, emu.cpu_seconds() - cpu0)
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"download failed: {resp.status}")
        best = got if best is None or got[0] < best[0] else best
    assert best is not None
    return best


def _client_parse(url: str, rows: int) -> float:
    """Best of 2 ``download_dataframe`` (the client's path) seconds; the first also pays lazy imports."""
    from cargo_gtm.download.dataframe import download_dataframe

    parses = []
    for _ in range(2):
        t0 = time.perf_counter()
        frame = download_dataframe(url)
        parses.append(time.perf_counter() - t0)
        assert len(frame) == rows, len(frame)
    return min(parses)


def measure_download(rows: int) -> dict[str, dict[str, float]]:
    """Stream rates of a ``rows``-row CSV: rendered by the emulator (batch downloads, B1) and served
    from a file on disk (B3's outputs), each drained unparsed, and the client's download+parse rate."""
    import tempfile

    from cargo_gtm_emulator.files import render_csv

    out: dict[str, dict[str, float]] = {}
    with EmulatorProcess() as emu, tempfile.TemporaryDirectory(prefix="b6-") as tmp:
        url = emu.export_url(rows)
        seconds, size, cpu = _drain(emu, url)
        out["rendered"] = {"rows": float(rows), "bytes": float(size), "drain": seconds, "drain_cpu": cpu,
                           "client": _client_parse(url, rows)}
        path = os.path.join(tmp, "outputs.csv")
        with open(path, "wb") as f:
            for chunk in render_csv(EXPORT_COLUMNS, _export_rows(rows)):
                f.write(chunk)
        file_url = emu.export_file_url(path)
        if file_url is not None:
            seconds, size, cpu = _drain(emu, file_url)
            out["file"] = {"rows": float(rows), "bytes": float(size), "drain": seconds, "drain_cpu": cpu,
                           "client": _client_parse(file_url, rows)}
    return out


# --------------------------------------------------------------------------- report
def _b2_polling() -> tuple[float, float]:
    """B2's Cargo-time factor and shortest poll interval (Cargo seconds), from its module if present."""
    try:
        from . import b2_latency

        return float(getattr(b2_latency, "SPEED", 10.0)), 1.0
    except ImportError:
        return 10.0, 1.0


def run(quick: bool) -> list[Row]:
    """Measure the emulator's capacity and B1-B3's need; one row per figure with the headroom (goal > 1×)."""
    seconds = 0.4 if quick else 3.0
    n_batches, per_batch = (10, 40) if quick else (50, 200)
    levels = (1, 4) if quick else (1, 4, 16)
    gets = measure_get_batch(n_batches, per_batch, levels, seconds)
    creates = measure_create_batch((1,) if quick else (1, 4), seconds if quick else 2.0)
    need = measure_b1_need(*((5, 40) if quick else (50, 200)))
    dl = measure_download(20_000 if quick else 300_000)

    def headroom(ratio: float) -> tuple[str, str, bool]:
        return f"{ratio:,.1f}× headroom", "> 1×", ratio > 1

    peak = need["peak_rate"]
    rows: list[Row] = []
    for c, res in gets.items():
        rows.append(Row(
            "B6", f"GET batch, {c} keep-alive conn{'s' if c > 1 else ''}", fmt(res.rate, "req/s", 0),
            fmt(peak, "req/s", 0) + " (B1 peak)", *headroom(res.rate / peak),
            note=(f"{res.requests:,} requests in {res.wall:.1f} s with {n_batches} batches running, {res.errors} "
                  f"errors; latency p50 {res.percentile(0.5) * 1e3:.2f} ms, p99 {res.percentile(0.99) * 1e3:.2f} ms; "
                  f"emulator CPU {res.emulator_share:.0%} of a core, load generator {res.generator_share:.0%}"),
        ))
    for c, res in creates.items():
        rows.append(Row(
            "B6", f"POST create batch, {c} conn{'s' if c > 1 else ''}", fmt(res.rate, "req/s", 0),
            fmt(need["create_rate"], "req/s", 0) + " (B1 creates)", *headroom(res.rate / need["create_rate"]),
            note=(f"one-record tool batches, {res.requests:,} created, {res.errors} errors; latency p50 "
                  f"{res.percentile(0.5) * 1e3:.2f} ms; emulator CPU {res.emulator_share:.0%} of a core"),
        ))
    share = need["emulator_share"]
    rows.append(Row(
        "B6", "emulator CPU during a B1-like run", f"{share:.0%} of a core", "100% (saturated)",
        *headroom(1 / share if share > 0 else float("inf")),
        note=(f"real CargoClient, {int(need['requests'])} client calls ({int(need['api_calls'])} API requests "
              f"logged) in {need['wall']:.1f} s: mean {need['mean_rate']:.0f} req/s, busiest 250 ms "
              f"{need['peak_rate']:.0f} req/s; creates {need['create_rate']:.0f}/s; ×{B1_SPEED:g} Cargo time, "
              f"polls every {1e3 / B1_SPEED:.0f}-{15e3 / B1_SPEED:.0f} ms of wall time, downloads as each ends"),
    ))
    b2_speed, b2_poll = _b2_polling()
    single = gets[1]
    cargo_ms = single.percentile(0.99) * b2_speed * 1e3
    rows.append(Row(
        "B6", "GET batch p99 latency, in B2's Cargo time", fmt(cargo_ms, "ms", 1),
        fmt(b2_poll * 1e3, "ms", 0) + " (B2 min poll)", *headroom(b2_poll * 1e3 / cargo_ms),
        note=(f"B2 measures completion latency in Cargo time (×{b2_speed:g}); a round trip to the emulator "
              f"(p99 {single.percentile(0.99) * 1e3:.2f} ms wall, 1 connection) adds at most this much to it"),
    ))
    # The client's own capacity is measured on the file (served by sendfile, so the emulator never holds
    # it back); on the rendered stream the client can only go as fast as the emulator renders.
    capacity = dl.get("file", dl["rendered"])
    client = capacity["rows"] / capacity["client"]
    client_mib = capacity["bytes"] / 2**20 / capacity["client"]
    file_ = dl.get("file")
    if file_ is None:
        rows.append(Row("B6", "CSV download, file on disk (B3's path)", "n/a", "n/a",
                        note="this emulator cannot serve a file from disk"))
    else:
        stream = file_["rows"] / file_["drain"]
        rows.append(Row(
            "B6", "CSV download, file on disk (B3's path)", fmt(stream, "rows/s", 0),
            fmt(client, "rows/s", 0) + " (client parse)", *headroom(stream / client),
            note=(f"{int(file_['rows']):,} rows, {file_['bytes'] / 2**20:.1f} MiB: the emulator sends "
                  f"{file_['bytes'] / 2**20 / file_['drain']:,.0f} MiB/s (sendfile; drained unparsed with "
                  f"http.client in {file_['drain'] * 1e3:.0f} ms); CargoClient's download_dataframe downloads "
                  f"and parses {client_mib:,.0f} MiB/s"),
        ))
    r = dl["rendered"]
    stream = r["rows"] / r["drain"]
    rows.append(Row(
        "B6", "CSV download, rendered by the emulator", fmt(stream, "rows/s", 0),
        fmt(client, "rows/s", 0) + " (client parse)", f"{stream / client:.2f}×",
        note=(f"{int(r['rows']):,} rows: the emulator renders rows to CSV at {r['bytes'] / 2**20 / r['drain']:.0f} "
              f"MiB/s (emulator CPU {r['drain_cpu'] / r['drain']:.0%} of a core), so a big rendered download is "
              f"emulator-bound (the client gets {r['bytes'] / 2**20 / r['client']:.0f} MiB/s from it): that is why "
              f"B3 serves a file. B1's downloads are rendered but 200 rows each (~{200 / stream * 1e3:.1f} ms): "
              "they are inside the B1-like CPU share above. No goal: reported only"),
    ))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        sys.exit(_serve(sys.argv[2:]))
    from ._report import render

    print(render(run(quick="--quick" in sys.argv)))
