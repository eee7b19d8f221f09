"""A realistic Cargo enrichment output, generated fast and in chunks (B3, B4).

Twenty columns, shaped like what a Cargo play's output node returns: record ids (uuids), titles,
domains, names, work emails, job titles, integers, floats, booleans, ISO-8601 timestamps with ``Z``
(as JavaScript's ``toISOString`` writes them), some empty cells and a JSON-ish text column that
needs CSV quoting. Everything is vectorized (numpy + pyarrow compute) and written with
``pyarrow.csv`` in chunks, so 10,000,000 rows never need more than one chunk in memory.

Writing is CSV with minimal quoting, ``true``/``false`` booleans and empty cells for nulls, the
same dialect as the emulator's own ``render_csv``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

COLUMNS = [
    "_id", "_title", "domain", "company_name", "first_name", "last_name", "email", "job_title",
    "industry", "hq_country", "employee_count", "founded_year", "annual_revenue_usd", "score",
    "email_confidence", "is_decision_maker", "email_verified", "created_at", "enriched_at", "raw_enrichment",
]

_FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "John",
          "Léa", "Zoë", "Björn", "Chloé", "Mateo", "Aiko", "Priya", "Omar", "Sofia", "Lukas"]
_LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen",
         "Backus", "Martin", "Müller", "García", "Rossi", "Nguyen", "Kowalski", "O'Brien", "Dubois", "Sato", "Singh"]
_WORDS = ["acme", "globex", "initech", "hooli", "umbrella", "stark", "wayne", "wonka", "cyberdyne", "tyrell",
          "soylent", "aperture", "vandelay", "pied", "piper", "massive", "dynamic", "gringotts", "oscorp", "nakatomi"]
_TLDS = [".com", ".io", ".ai", ".co", ".dev", ".fr", ".de"]
_TITLES = ["CEO", "CTO", "VP Sales", "Head of Growth", "Data Engineer", "Account Executive", "Founder",
           "Marketing Manager", "RevOps Lead", "Director, Sales Operations"]
_INDUSTRIES = ["Software", "Fintech", "Healthcare", "E-commerce", "Manufacturing", "Media", "Logistics",
               "Education", "Cybersecurity", "Real estate"]
_COUNTRIES = ["US", "FR", "DE", "GB", "ES", "IT", "NL", "SE", "JP", "IN", "BR", "CA"]
_SOURCES = ["clearbit", "apollo", "hunter", "openai"]
_T0_MS = 1_704_067_200_000  # 2024-01-01T00:00:00.000Z


def _uuids(rng: np.random.Generator, n: int) -> Any:
    """``n`` random version-4-looking uuids as a pyarrow string array (vectorized hex)."""
    import pyarrow as pa

    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16)
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 36), dtype=np.uint8)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = hexdigits[raw >> 4]
    nibbles[:, 1::2] = hexdigits[raw & 15]
    nibbles[:, 12] = ord("4")
    cuts = [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)]
    pos = 0
    for i, (a, b) in enumerate(cuts):
        chars[:, pos:pos + b - a] = nibbles[:, a:b]
        pos += b - a
        if i < len(cuts) - 1:
            chars[:, pos] = ord("-")
            pos += 1
    return pa.array(chars.reshape(-1).view("S36"), type=pa.binary(36)).cast(pa.string())


def _pick(rng: np.random.Generator, values: list[str], n: int) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string()).take(pa.array(rng.integers(0, len(values), n)))


def _with_nulls(rng: np.random.Generator, array: Any, rate: float) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = pa.array(rng.random(len(array)) < rate)
    return pc.if_else(mask, pa.scalar(None, array.type), array)


def chunk(rng: np.random.Generator, n: int) -> Any:
    """One chunk of ``n`` rows as a ``pyarrow.Table`` with the 20 :data:`COLUMNS`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    join = pc.binary_join_element_wise
    word_a, word_b = _pick(rng, _WORDS, n), _pick(rng, _WORDS, n)
    number = pa.array(rng.integers(1, 10_000, n)).cast(pa.string())
    domain = join(word_a, number, _pick(rng, _TLDS, n), "")
    company = join(pc.utf8_capitalize(word_a), pc.utf8_capitalize(word_b), "Inc.", " ")
    first, last = _pick(rng, _FIRST, n), _pick(rng, _LAST, n)
    email = join(pc.utf8_lower(first), join(pc.utf8_lower(pc.replace_substring(last, "'", "")), domain, "@"), ".")
    created = pa.array(_T0_MS + rng.integers(0, 365 * 86_400_000, n), pa.timestamp("ms"))
    enriched = pa.array(created.cast(pa.int64()).to_numpy() + rng.integers(0, 86_400_000, n), pa.timestamp("ms"))
    iso = lambda a: pc.strftime(a, format="%Y-%m-%dT%H:%M:%SZ")  # ms unit: "…:05.123Z"
    tags = join(pa.array(["b2b"] * n), _pick(rng, ["saas", "smb", "enterprise", "mid-market"], n), '","')
    raw_json = join(pa.array(['{"source":"'] * n), _pick(rng, _SOURCES, n), pa.array(['","tags":["'] * n), tags,
                    pa.array(['"],"employees":'] * n), pa.array(rng.integers(1, 50_000, n)).cast(pa.string()),
                    pa.array(["}"] * n), "")
    columns = [
        _uuids(rng, n),
        company,
        domain,
        company,
        first,
        last,
        email,
        _with_nulls(rng, _pick(rng, _TITLES, n), 0.05),
        _pick(rng, _INDUSTRIES, n),
        _pick(rng, _COUNTRIES, n),
        pa.array(rng.integers(1, 100_000, n)),
        _with_nulls(rng, pa.array(rng.integers(1900, 2025, n)), 0.1),
        _with_nulls(rng, pa.array(np.round(rng.lognormal(15, 2, n), 2)), 0.2),
        pa.array(np.round(rng.random(n), 4)),
        pa.array(rng.integers(0, 101, n)),
        pa.array(rng.random(n) < 0.3),
        _with_nulls(rng, pa.array(rng.random(n) < 0.8), 0.1),
        iso(created),
        _with_nulls(rng, iso(enriched), 0.1),
        _with_nulls(rng, raw_json, 0.05),
    ]
    return pa.table(columns, names=COLUMNS)


def _csv_text(array: Any) -> Any:
    """A column's CSV cells as strings: minimal quoting (like Python's csv module), nulls empty."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_boolean(array.type):
        text = pc.if_else(array, "true", "false")
    else:
        text = array.cast(pa.string())
    if pa.types.is_string(array.type):
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(pc.match_substring_regex(text, '[",\\n\\r]'), quoted, text)
    return pc.fill_null(text, "")


def csv_bytes(table: Any, *, header: bool) -> bytes:
    """``table`` rendered as CSV (``\\n`` line ends), built with vectorized string kernels."""
    import pyarrow.compute as pc

    cells = [_csv_text(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*cells, ","), "\n", "")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    body = lines.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]]
    head = (",".join(table.column_names) + "\n").encode() if header else b""
    return head + body


def write_csv(path: str | os.PathLike[str], rows: int, *, seed: int = 0, chunk_rows: int = 250_000) -> int:
    """Write ``rows`` rows of Cargo-like output as CSV to ``path`` in chunks; return the file's size in bytes."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        done = 0
        while done < rows:
            n = min(chunk_rows, rows - done)
            f.write(csv_bytes(chunk(rng, n), header=done == 0))
            done += n
    return os.path.getsize(path)
