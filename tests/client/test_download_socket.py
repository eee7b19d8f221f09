"""Big download bodies are read from the connection's socket (``stream._SocketBody``), not through httpx's parser.

Every guarantee of the httpx path holds there too, over real loopback HTTP: the same DataFrame, gzip, a body cut
short named as truncated (and retried with a fresh URL), a stalled body raised as httpx's ``ReadTimeout``, no
header reaching the storage host, and a shared download client that still works after a socket read.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("pyarrow")

from cargo_gtm import CargoClient, records_data  # noqa: E402
from cargo_gtm.download import stream  # noqa: E402
from cargo_gtm.download.dataframe import download_dataframe  # noqa: E402
from cargo_gtm.errors import CargoDownloadError  # noqa: E402
from cargo_gtm_emulator import CargoEmulator  # noqa: E402

TOKEN = "tok-socket-path-71c2"


@pytest.fixture
def emu() -> Iterator[CargoEmulator]:
    with CargoEmulator(token=TOKEN, clock="manual", seed=5, run_failure_rate=0.0) as e:
        yield e


@pytest.fixture
def socket_reads(monkeypatch) -> list[int]:
    """Every body is read from the socket (the size threshold at 0); the list records the bytes of each socket
    read (-1 for one that raised)."""
    reads: list[int] = []
    original = stream._SocketBody._io

    def spy(self, call, *args):
        reads.append(-1)
        got = original(self, call, *args)
        reads[-1] = got if isinstance(got, int) else len(got)
        return got

    monkeypatch.setattr(stream, "RAW_RECEIVE_MIN", 0)
    monkeypatch.setattr(stream._SocketBody, "_io", spy)
    return reads


def _csv(rows: int) -> bytes:
    lines = ["id,n,score,flag,when,note"]
    lines += [f'r{i},{i},{i / 4},{"true" if i % 3 else "false"},2025-01-{1 + i % 28:02d}T10:00:00.000Z,'
              f'"say ""{i}"", then\nmore"' for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _batch(emu: CargoEmulator, client: CargoClient, path: Path) -> str:
    tool = emu.store.tool_by_name("Enrich company")
    batch = client.create_batch(str(tool["workflowUuid"]), records_data([{"domain": "acme.com"}]))
    emu.advance(600)
    emu.attach_output_file(batch.uuid, path)
    return batch.uuid


def _fetches(emu: CargoEmulator) -> list[dict]:
    return [e for e in emu.request_log if e["path"].startswith("/_files/")]


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_body_read_from_the_socket_gives_the_frame_httpx_gives(emu, tmp_path: Path, socket_reads, monkeypatch,
                                                                gzipped):
    data = _csv(20_000)
    path = tmp_path / ("out.csv.gz" if gzipped else "out.csv")
    path.write_bytes(gzip.compress(data) if gzipped else data)
    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        uuid = _batch(emu, client, path)
        http = client.download_http
        raw = download_dataframe(client.get_batch_download_url(uuid), http=http, block_size=64 << 10)
        again = download_dataframe(client.get_batch_download_url(uuid), http=http)  # the shared client still works
        read_raw = sum(socket_reads)
        monkeypatch.setattr(stream, "RAW_RECEIVE_MIN", 1 << 40)
        through_httpx = download_dataframe(client.get_batch_download_url(uuid), http=http)
    pd.testing.assert_frame_equal(raw, through_httpx)
    pd.testing.assert_frame_equal(again, through_httpx)
    assert len(raw) == 20_000 and raw["note"][7] == 'say "7", then\nmore' and raw["n"].dtype == "int64"
    assert 0 < read_raw <= 2 * path.stat().st_size  # the socket carried the body (less what came with the headers)
    assert sum(socket_reads) == read_raw  # the httpx path did not touch the socket reader
    assert all("authorization" not in e["headers"] for e in _fetches(emu)) and len(_fetches(emu)) == 3


def test_a_body_cut_short_on_the_socket_is_named_truncated_and_retried(emu, tmp_path: Path, socket_reads):
    path = tmp_path / "out.csv"
    path.write_bytes(_csv(5_000))
    with CargoClient(TOKEN, base_url=emu.base_url, sleep=lambda s: None) as client:
        uuid = _batch(emu, client, path)
        emu.faults.next("GET /_files/*", "truncated_download")
        with pytest.raises(CargoDownloadError, match=r"truncated: received \d+ of \d+ bytes") as info:
            download_dataframe(client.get_batch_download_url(uuid), http=client.download_http, batch_uuid=uuid)
        assert uuid in str(info.value) and "Next step" in str(info.value)
        emu.faults.next("GET /_files/*", "truncated_download")
        frame = client.download_batch_dataframe(uuid, expected_rows=5_000)
    assert len(frame) == 5_000 and frame["id"].tolist()[:2] == ["r0", "r1"]
    assert [e.get("fault") for e in _fetches(emu)] == ["truncated_download", "truncated_download", None]
    assert socket_reads


def _stalling_server(body_sent: bytes, length: int) -> tuple[str, socket.socket, threading.Event]:
    """A server that answers one GET with ``Content-Length: length``, sends ``body_sent`` and then nothing."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
                         + f"Content-Length: {length}\r\n\r\n".encode() + body_sent)
            done.wait(10)  # stalls until the test is over

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/out.csv", server, done


def test_a_stalled_body_on_the_socket_is_a_read_timeout(socket_reads):
    import httpx

    data = _csv(2_000)
    url, server, done = _stalling_server(data[:20_000], len(data))
    try:
        with httpx.Client(timeout=httpx.Timeout(0.2, connect=5.0)) as http, \
                pytest.raises(CargoDownloadError, match="failed: ReadTimeout") as info:
            download_dataframe(url, http=http, batch_uuid="b-7")
    finally:
        done.set()
        server.close()
    assert isinstance(info.value.__cause__, httpx.ReadTimeout) and info.value.batch_uuid == "b-7"
    assert socket_reads[-1] == -1  # the timeout came from the socket reader, not httpx's


def test_a_body_cut_inside_a_quoted_value_is_named_truncated_not_read_again(socket_reads):
    """The last block of a body cut short inside a quoted value swallows the sentinel row: that is the
    truncation, reported as such at once (not an exact re-read of a body that will be just as short)."""
    import httpx

    data = _csv(2_000)
    cut = data.index(b"then\n", 30_000) + 5  # inside the quoted note of some row
    url, server, done = _stalling_server(data[:cut], len(data))
    done.set()  # the server closes the connection once the part is sent
    try:
        with httpx.Client(timeout=httpx.Timeout(5.0)) as http, \
                pytest.raises(CargoDownloadError, match=rf"truncated: received {cut} of {len(data)} bytes") as info:
            download_dataframe(url, http=http, batch_uuid="b-8")
    finally:
        server.close()
    assert info.value.batch_uuid == "b-8" and socket_reads[-1] == 0  # the socket reader saw the end
