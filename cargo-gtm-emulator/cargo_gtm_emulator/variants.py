"""Layout variants: where Cargo's documentation leaves a behaviour open, the emulator serves every plausible
variant, selected per emulator (``CargoEmulator(variants=...)``, ``emu.set_variants(...)``, CLI
``--variant NAME=VALUE``). Each tuple lists the allowed values, **default first**. EMULATOR.md says why each
default was chosen.
"""

from __future__ import annotations

from collections.abc import Mapping

VARIANTS: dict[str, tuple[str, ...]] = {
    # batch download and runs/download-outputs files: plain, gzip bytes with no Content-Encoding, or
    # Content-Encoding: gzip on the wire. runs/download is always a gzipped file (CARGO-DOCS 3.1).
    "download_gzip": ("off", "file", "transport"),
    # batch download file format (CARGO-DOCS 1.3: not covered).
    "batch_download_format": ("csv", "json"),
    # every JSON download file: one JSON array of row objects, or one object per line.
    "json_shape": ("array", "ndjson"),
    # batch download: the output node's object spread into columns, or kept as one ``output`` column.
    "batch_download_output": ("flat", "json"),
    # batch download rows of records whose run was skipped / stopped by a filter / cancelled.
    "stopped_rows": ("empty_output", "omitted"),
    # status of a run whose filter node evaluated false (CARGO-DOCS 4.2: not stated).
    "filter_stop_status": ("success", "skipped"),
    # order of GET /orchestration/batches/list.
    "batch_list_order": ("newest_first", "oldest_first", "unordered"),
    # whether Batch objects carry userUuid / echo data (CARGO-DOCS 7.2).
    "batch_user_uuid": ("present", "absent"),
    "batch_data_echo": ("present", "absent"),
    # what Batch.creditsUsedCount holds (CARGO-DOCS 5.4 implies provider cost only).
    "batch_credits": ("provider_only", "with_execution_charge"),
    # which runs Batch.executedRunsCount counts (CARGO-DOCS 4.4: success or error; older emulator: skipped too).
    "executed_runs_count": ("success_error", "with_skipped"),
    # the download's default node, "the last executed node" (CARGO-DOCS 1.2, 2.2): the release's exit node, or
    # literally each run's last execution (a filter-stopped run then exports the filter's data).
    "default_output_node": ("exit_node", "last_executed"),
    # a ``statuses`` value that is no run status (e.g. "finished", CARGO-DOCS 2.7): matches nothing, or a zod
    # 400 invalid_enum_value as for any other enum.
    "invalid_statuses": ("match_nothing", "zod_400"),
    # keys inside batch ``data`` that its kind does not declare: stripped (zod's default for nested objects,
    # as filter JSON, CARGO-DOCS 9.4), or a 400 unrecognized_keys as for top-level keys (10.1).
    "batch_data_unknown_keys": ("stripped", "rejected"),
    # isFinished on runs/ and records/download-outputs: rejected with unrecognized_keys until cargo#5579 is
    # deployed (CARGO-DOCS 2.6, 10.1: the current state), or accepted as finishedAt IS NOT NULL (4.1).
    "is_finished_exports": ("rejected", "accepted"),
    # precision of date comparisons in filters: milliseconds (values truncated, as a JavaScript Date
    # parses them) or microseconds (as a Postgres timestamptz keeps them). Neither REFERENCE nor CARGO-DOCS says.
    "date_precision": ("ms", "us"),
}


def default_variants() -> dict[str, str]:
    """Every variant at its default value."""
    return {name: values[0] for name, values in VARIANTS.items()}


def check_variants(values: Mapping[str, str]) -> dict[str, str]:
    """Validate ``values`` (name -> value); raise ``ValueError`` naming the allowed names or values."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if name not in VARIANTS:
            raise ValueError(f"unknown emulator variant {name!r}; allowed: {', '.join(VARIANTS)}")
        if value not in VARIANTS[name]:
            raise ValueError(f"invalid value {value!r} for emulator variant {name!r}; "
                             f"allowed: {', '.join(VARIANTS[name])}")
        out[name] = value
    return out


def parse_variant_option(text: str) -> tuple[str, str]:
    """Parse a CLI ``NAME=VALUE`` and validate it."""
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"expected NAME=VALUE, got {text!r}; variants: {', '.join(VARIANTS)}")
    name, value = name.strip(), value.strip()
    check_variants({name: value})
    return name, value
