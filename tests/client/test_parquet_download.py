"""``CargoClient.download_batch_to_parquet`` against the emulator over real loopback HTTP.

Row groups written as the body streams in, types like the DataFrame path, a column whose values
outgrow the first row group's type, retries with fresh URLs, atomic replacement (a failed download
never leaves a partial file), and the emulator's attached output files that the benchmarks use.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

pq = pytest.importorskip("pyarrow.parquet")

from cargo_gtm import CargoClient, records_data  # noqa: E402
from cargo_gtm.download.parquet import download_to_parquet  # noqa: E402
from cargo_gtm.errors import CargoDownloadError  # noqa: E402
from cargo_gtm_emulator import CargoEmulator  # noqa: E402
from cargo_gtm_emulator.enrichment import enrich_company  # noqa: E402

TOKEN = "tok-parquet-9d27c1"
DOMAINS = [f"pq{i}.example" for i in range(6)]


@pytest.fixture
def emu() -> Iterator[CargoEmulator]:
    with CargoEmulator(token=TOKEN, clock="manual", seed=7, run_failure_rate=0.0) as e:
        yield e


@pytest.fixture
def client(emu: CargoEmulator) -> Iterator[CargoClient]:
    with CargoClient(TOKEN, base_url=emu.base_url, sleep=lambda s: None) as c:
        yield c


def finished_batch(emu: CargoEmulator, client: CargoClient, domains: list[str] = DOMAINS) -> str:
    tool = emu.store.tool_by_name("Enrich company")
    batch = client.create_batch(str(tool["workflowUuid"]),
                                records_data([{"domain": d, "company_name": d.split(".")[0]} for d in domains]))
    emu.advance(600)
    return batch.uuid


def fetches(emu: CargoEmulator) -> list[dict]:
    return [e for e in emu.request_log if e["path"].startswith("/_files/")]


def write_csv(path: Path, rows: int, late: dict[str, str] | None = None, at: int = -1) -> Path:
    """A Cargo-like output: ids, ints, floats, booleans, ISO dates with Z, JSON-ish text, empty cells."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["_id", "employees", "score", "verified", "created_at", "raw", "note"])
    for i in range(rows):
        row = {"_id": f"rec-{i}", "employees": str(10 * i), "score": f"{i / 7:.4f}",
               "verified": "true" if i % 3 else "false", "created_at": f"2025-02-{1 + i % 28:02d}T08:30:00.000Z",
               "raw": '{"source":"clearbit","tags":["b2b","saas"]}', "note": "" if i % 5 else f"note, {i}"}
        if i == at:
            row.update(late or {})
        writer.writerow(row.values())
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def no_part_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".part")]


# ------------------------------------------------------------------------------ the normal flow
def test_a_batch_output_lands_in_parquet_like_the_dataframe(emu, client, tmp_path: Path):
    uuid = finished_batch(emu, client)
    target = tmp_path / "enriched" / "2025-02-01.parquet"  # parent folders are created
    result = client.download_batch_to_parquet(uuid, target, expected_rows=len(DOMAINS))
    assert result.path == str(target) and result.rows == len(DOMAINS) and result.restarts == 0
    table = pq.read_table(target)
    assert table.num_rows == len(DOMAINS) and table.column_names == result.columns
    from_parquet = table.to_pandas()
    frame = client.download_batch_dataframe(uuid, statuses=False)  # the file's rows, as the Parquet file holds them
    assert list(from_parquet.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(from_parquet, frame, check_dtype=False)
    for row in from_parquet.to_dict("records"):
        assert row["industry"] == enrich_company(row["domain"])["industry"]
    assert sorted(from_parquet["domain"]) == sorted(DOMAINS)
    assert len(fetches(emu)) == 2 and all("authorization" not in e["headers"] for e in fetches(emu))
    assert no_part_files(target.parent)


def test_a_big_output_is_written_row_group_by_row_group(emu, client, tmp_path: Path):
    source = write_csv(tmp_path / "big.csv", 12_345)
    uuid = finished_batch(emu, client)
    emu.attach_output_file(uuid, source)
    target = tmp_path / "out.parquet"
    result = download_to_parquet(lambda: client.get_batch_download_url(uuid), target, expected_rows=12_345,
                                 block_size=16 << 10, row_group_rows=2_000, batch_uuid=uuid)
    assert result.rows == 12_345 and result.bytes_downloaded == source.stat().st_size
    meta = pq.ParquetFile(target).metadata
    assert meta.num_rows == 12_345 and meta.num_row_groups == result.row_groups
    assert 6 <= meta.num_row_groups <= 8  # ~2,000 rows each (whole parser blocks): never the file at once
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) < 2_500
    assert result.schema == {"_id": "string", "employees": "int64", "score": "double", "verified": "bool",
                             "created_at": "timestamp[us, tz=UTC]", "raw": "string", "note": "string"}
    got = pq.read_table(target).to_pandas()
    want = pd.read_csv(source, keep_default_na=True)
    assert got["employees"].tolist() == want["employees"].tolist()
    assert got["score"].tolist() == want["score"].tolist()
    assert got["verified"].tolist() == [bool(i % 3) for i in range(12_345)]
    assert got["created_at"][0] == pd.Timestamp("2025-02-01T08:30:00Z")
    assert got["raw"][0] == '{"source":"clearbit","tags":["b2b","saas"]}'
    assert got["note"][0] == "note, 0" and pd.isna(got["note"][1])


# ------------------------------------------------------------------------------ type drift
@pytest.mark.parametrize("late, column, widened, value", [
    ({"employees": "unknown"}, "employees", "string", "unknown"),
    ({"employees": "12.5"}, "employees", "double", 12.5),
    ({"created_at": "last week"}, "created_at", "string", "last week"),
    ({"verified": "maybe"}, "verified", "string", "maybe"),
])
def test_a_column_that_outgrows_its_first_row_group_type_restarts_wider(emu, client, tmp_path: Path, late,
                                                                         column, widened, value):
    source = write_csv(tmp_path / "drift.csv", 6_000, late, at=5_500)
    uuid = finished_batch(emu, client)
    emu.attach_output_file(uuid, source)
    target = tmp_path / "out.parquet"
    result = download_to_parquet(lambda: client.get_batch_download_url(uuid), target, block_size=16 << 10,
                                 row_group_rows=1_000, batch_uuid=uuid)
    assert result.restarts == 1 and result.rows == 6_000 and result.schema[column] == widened
    got = pq.read_table(target).column(column).to_pylist()
    assert got[5_500] == value
    assert len(fetches(emu)) == 2  # the restart downloaded again, with a fresh URL
    assert len({e["query"] for e in fetches(emu)}) == 2
    assert no_part_files(tmp_path)


def test_pinned_column_types_avoid_the_restart(emu, client, tmp_path: Path):
    source = write_csv(tmp_path / "drift.csv", 3_000, {"employees": "unknown"}, at=2_900)
    uuid = finished_batch(emu, client)
    emu.attach_output_file(uuid, source)
    target = tmp_path / "out.parquet"
    result = download_to_parquet(lambda: client.get_batch_download_url(uuid), target,
                                 column_types={"employees": "string", "score": "float64"},
                                 block_size=16 << 10, row_group_rows=500)
    assert result.restarts == 0 and result.schema["employees"] == "string" and result.schema["score"] == "double"
    assert pq.read_table(target).column("employees").to_pylist()[:3] == ["0", "10", "20"]
    assert len(fetches(emu)) == 1


# ------------------------------------------------------------------------------ failures
@pytest.mark.parametrize("kind", ["truncated_download", "expired_download_url", "connection_reset"])
def test_a_bad_download_is_retried_with_a_fresh_url(emu, client, tmp_path: Path, kind):
    source = write_csv(tmp_path / "src.csv", 4_000)
    uuid = finished_batch(emu, client)
    emu.attach_output_file(uuid, source)
    emu.faults.next("GET /_files/*", kind)
    result = client.download_batch_to_parquet(uuid, tmp_path / "out.parquet", expected_rows=4_000)
    assert result.rows == 4_000 and pq.read_table(tmp_path / "out.parquet").num_rows == 4_000
    assert [e.get("fault") for e in fetches(emu)] == [kind, None]
    assert len(emu.request_log and [e for e in emu.request_log
                                    if e["path"] == f"/v1/orchestration/batches/{uuid}/download"]) == 2
    assert no_part_files(tmp_path)


def test_a_download_that_keeps_failing_leaves_the_old_file_untouched(emu, client, tmp_path: Path):
    uuid = finished_batch(emu, client)
    target = tmp_path / "out.parquet"
    target.write_bytes(b"yesterday's complete file")
    emu.faults.next("GET /_files/*", "truncated_download", times=3)
    pauses: list[float] = []
    with CargoClient(TOKEN, base_url=emu.base_url, sleep=pauses.append) as paused, \
            pytest.raises(CargoDownloadError) as info:
        paused.download_batch_to_parquet(uuid, target, expected_rows=len(DOMAINS), attempts=3)
    assert pauses == [0.5, 1.0]  # a growing pause between attempts, none after the last
    assert info.value.batch_uuid == uuid and uuid in str(info.value) and "Next step" in str(info.value)
    assert "3 time(s)" in str(info.value)
    assert target.read_bytes() == b"yesterday's complete file"
    assert len(fetches(emu)) == 3 and no_part_files(tmp_path)


def test_fewer_rows_than_expected_is_partial_and_writes_nothing(emu, client, tmp_path: Path):
    uuid = finished_batch(emu, client)
    target = tmp_path / "out.parquet"
    with pytest.raises(CargoDownloadError, match="partial"):
        client.download_batch_to_parquet(uuid, target, expected_rows=len(DOMAINS) + 1, attempts=2)
    assert not target.exists() and no_part_files(tmp_path) and len(fetches(emu)) == 2


@pytest.mark.parametrize("body, columns", [(b"", []), (b"a,b\n", ["a", "b"])])
def test_empty_and_header_only_outputs(emu, client, tmp_path: Path, body, columns):
    source = tmp_path / "src.csv"
    source.write_bytes(body)
    uuid = finished_batch(emu, client)
    emu.attach_output_file(uuid, source)
    result = client.download_batch_to_parquet(uuid, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert result.rows == table.num_rows == 0 and table.column_names == result.columns == columns


# ------------------------------------------------------------------------------ the emulator facility
def test_an_attached_file_is_served_from_disk_with_content_length(emu, client, tmp_path: Path):
    source = write_csv(tmp_path / "src.csv", 2_000)
    uuid = finished_batch(emu, client)
    emu.attach_output_file(uuid, source)
    url = client.get_batch_download_url(uuid)
    with httpx.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(source.stat().st_size)
        assert "transfer-encoding" not in response.headers
        assert response.headers["content-type"].startswith("text/csv")
        assert response.read() == source.read_bytes()
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered).status_code == 403  # still a presigned URL
    other = client.get_batch_download_url(uuid, "enrich_company")  # another node: the emulator's own rows
    assert httpx.get(other).content.startswith(b"_id,_title,")
    with pytest.raises(KeyError):
        emu.attach_output_file("00000000-0000-4000-8000-000000000000", source)
    with pytest.raises(FileNotFoundError):
        emu.attach_output_file(uuid, tmp_path / "missing.csv")
