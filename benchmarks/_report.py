"""Rows and the side-by-side table every benchmark reports into."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Row:
    """One figure: ours next to the baseline measured in the same run.

    ``ratio`` is the figure the goal is stated on (e.g. wall ÷ slowest batch, ours ÷ baseline);
    ``goal`` says the bound in words (``"<= 1.15"``) and ``met`` whether it holds (``None``: no goal,
    reported only).
    """

    bench: str
    metric: str
    ours: str
    baseline: str
    ratio: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""


def spread(values: list[float], digits: int = 2) -> str:
    """``median [min–max]`` of ``values``: the figure every ratio is quoted as (one slow or lucky run must
    not move it; the spread shows how noisy the machine was)."""
    ordered = sorted(values)
    return f"{median(ordered):.{digits}f} [{ordered[0]:.{digits}f}–{ordered[-1]:.{digits}f}]"


def median(values: list[float]) -> float:
    import statistics

    return float(statistics.median(values))


def context() -> str:
    """The commit, the machine's load and the date: every table names them (a figure without its load
    cannot be judged on a shared machine)."""
    import datetime

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " (+ uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""
    try:
        load = "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load unknown"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"commit {commit}{dirty}; {load} ({os.cpu_count()} cores); {now}"


def fmt(value: float, unit: str = "", digits: int = 2) -> str:
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    mem = ""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages * size / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    return (f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def render(rows: list[Row]) -> str:
    headers = ["bench", "metric", "dagster-cargo", "baseline", "ratio", "goal", "met"]
    body = [[r.bench, r.metric, r.ours, r.baseline, r.ratio, r.goal,
             "" if r.met is None else ("yes" if r.met else "NO")] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    notes = [f"- {r.bench} {r.metric}: {r.note}" for r in rows if r.note]
    return "\n".join([f"_{context()}_", ""] + out + ([""] + notes if notes else []))


def run_child(module: str, *args: str, timeout: float = 1800) -> dict:
    """Run ``python -m module args…`` in a fresh process and return the JSON it prints last.

    Used for memory figures: each measurement gets its own process, whose peak RSS is read in
    the child with :func:`peak_rss_hwm_bytes` (``ru_maxrss`` would start at the parent's mark).
    """
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def to_json(rows: list[Row]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)


def proc_kib(path: str, key: str) -> int | None:
    """A ``key: N kB`` figure of a ``/proc`` status file (e.g. ``VmHWM``, ``MemAvailable``) in bytes."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_hwm_bytes() -> int:
    """This process's own peak RSS: ``VmHWM`` of ``/proc/self/status`` (Linux), else :func:`peak_rss_bytes`.

    Prefer it in a child started by :func:`run_child`: Linux carries ``ru_maxrss`` across ``fork``/``exec``
    (the child starts at the *parent's* high-water mark, e.g. a benchmark process that generated data),
    while ``VmHWM`` belongs to the new process image alone.
    """
    hwm = proc_kib("/proc/self/status", "VmHWM")
    return hwm if hwm is not None else peak_rss_bytes()
