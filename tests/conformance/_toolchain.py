"""Node toolchain for the conformance suite: install the pinned official packages, type-check
the schema entry file, generate the JSON Schemas, run the official-client driver.

Everything is cached and keyed by content hashes, so a second run costs nothing:
- ``node/node_modules`` is (re)installed with ``npm ci`` only when it is missing or was
  installed from a different ``package-lock.json``;
- ``.schema-cache/`` is regenerated only when the lockfile or the generator inputs change.

Failures raise :class:`ToolchainError` with a message that says what to install; the pytest
fixtures turn it into a test *failure* (never a skip): a conformance suite that silently
skips proves nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
NODE_MODULES = NODE_DIR / "node_modules"
LOCKFILE = NODE_DIR / "package-lock.json"
INSTALL_STAMP = NODE_MODULES / ".conformance-lock.sha256"
SCHEMA_DIR = HERE / ".schema-cache"
SCHEMA_STAMP = SCHEMA_DIR / ".inputs.sha256"
SCHEMA_INPUTS = [
    LOCKFILE,
    NODE_DIR / "schema-entry.ts",
    NODE_DIR / "tsconfig.json",
    NODE_DIR / "flatten-types.mjs",
    NODE_DIR / "gen-schemas.mjs",
]
DRIVER = NODE_DIR / "driver.mjs"

INSTALL_HINT = (
    "The conformance suite needs Node.js >= 20 and npm on PATH (it runs Cargo's official "
    "TypeScript client @cargo-ai/api and generates JSON Schemas from @cargo-ai/types). "
    "Install Node.js 20+ (https://nodejs.org/ or your package manager, e.g. "
    "`apt-get install nodejs npm`), make sure https://registry.npmjs.org is reachable, "
    "then re-run `pytest tests/conformance`."
)


class ToolchainError(RuntimeError):
    pass


def _sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _run(cmd: list[str], *, cwd: Path, timeout: float, what: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(
            cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**_node_env(), **(env or {})}
        )
    except FileNotFoundError as e:
        raise ToolchainError(f"{what}: {cmd[0]!r} not found. {INSTALL_HINT}") from e
    except subprocess.TimeoutExpired as e:
        raise ToolchainError(f"{what}: timed out after {timeout:.0f}s: {' '.join(cmd)}") from e
    if proc.returncode != 0:
        raise ToolchainError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}\n"
            f"{INSTALL_HINT}"
        )
    return proc


def _node_env() -> dict[str, str]:
    env = dict(os.environ)
    # npm ci must not consult a user-level config that points elsewhere, nor nag.
    env.setdefault("npm_config_update_notifier", "false")
    env.setdefault("npm_config_fund", "false")
    env.setdefault("npm_config_audit", "false")
    return env


def node_binaries() -> tuple[str, str]:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        raise ToolchainError(f"{missing} not found on PATH. {INSTALL_HINT}")
    proc = _run([node, "--version"], cwd=NODE_DIR, timeout=30, what="node --version")
    major = int(proc.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        raise ToolchainError(f"Node.js {proc.stdout.strip()} is too old. {INSTALL_HINT}")
    return node, npm


@contextlib.contextmanager
def _exclusive(name: str) -> Iterator[None]:
    """One process at a time (pytest-xdist workers share this folder): an advisory file lock."""
    import fcntl

    with open(HERE / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_node_modules() -> str:
    """Run ``npm ci`` when node_modules is missing or stale. Returns the node binary."""
    with _exclusive("npm"):
        return _ensure_node_modules()


def _ensure_node_modules() -> str:
    node, npm = node_binaries()
    want = _sha256([LOCKFILE])
    have = INSTALL_STAMP.read_text().strip() if INSTALL_STAMP.exists() else None
    if have != want or not (NODE_MODULES / "@cargo-ai" / "api").is_dir():
        _run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            timeout=600,
            what="npm ci (tests/conformance/node)",
        )
        INSTALL_STAMP.write_text(want + "\n")
    return node


def ensure_schemas() -> Path:
    """Type-check the schema entry file and (re)generate the JSON Schemas if needed."""
    node = ensure_node_modules()
    with _exclusive("schemas"):
        return _ensure_schemas(node)


def _ensure_schemas(node: str) -> Path:
    want = _sha256(SCHEMA_INPUTS)
    have = SCHEMA_STAMP.read_text().strip() if SCHEMA_STAMP.exists() else None
    if have == want and (SCHEMA_DIR / "_manifest.json").exists():
        return SCHEMA_DIR
    # The compile step proves the wire envelopes equal the official result types
    # (see schema-entry.ts); a failure here is a real finding, not a tooling hiccup.
    _run(
        [node, str(NODE_MODULES / "typescript" / "bin" / "tsc"), "-p", "tsconfig.json"],
        cwd=NODE_DIR,
        timeout=300,
        what="tsc type-check of schema-entry.ts against @cargo-ai/api + @cargo-ai/types",
    )
    tmp = Path(tempfile.mkdtemp(prefix=".schema-cache-", dir=HERE))
    try:
        _run([node, "gen-schemas.mjs", str(tmp)], cwd=NODE_DIR, timeout=300, what="schema generation")
        (tmp / ".inputs.sha256").write_text(want + "\n")
        if SCHEMA_DIR.exists():
            shutil.rmtree(SCHEMA_DIR)
        tmp.rename(SCHEMA_DIR)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return SCHEMA_DIR


def run_driver(
    base_url: str,
    token: str,
    scenario: str,
    *,
    state: dict | None = None,
    timeout: float = 180,
    extra: list[str] | None = None,
) -> dict:
    """Run node/driver.mjs and return its JSON document."""
    node = ensure_node_modules()
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "out.json"
        # the token goes through the environment, never the command line (where ps shows it)
        cmd = [node, str(DRIVER), "--base-url", base_url, "--scenario", scenario, "--out", str(out)]
        if state is not None:
            sp = Path(td) / "state.json"
            sp.write_text(json.dumps(state))
            cmd += ["--state", str(sp)]
        cmd += extra or []
        _run(cmd, cwd=NODE_DIR, timeout=timeout, what=f"official-client driver ({scenario})",
             env={"CARGO_DRIVER_TOKEN": token})
        doc = json.loads(out.read_text())
    return doc
