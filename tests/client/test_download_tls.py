"""A big download over HTTPS is read from the TLS socket itself (``stream._SocketBody`` on an ``ssl.SSLSocket``).

Cargo's download URLs are presigned HTTPS URLs, so this is the path every large production download takes:
httpx reads the status line and headers through TLS, then the body's bytes come from ``SSLSocket.recv_into``
(decrypted there), after what httpx had already decrypted past the headers. Over a real loopback TLS server
(a self-signed certificate made for the test run): the same DataFrame as the pandas path,
gzip, a body cut short named as truncated, and the shared client still serving the next download.
"""

from __future__ import annotations

import gzip
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pandas as pd
import pytest

pytest.importorskip("pyarrow")

from cargo_gtm.download import stream  # noqa: E402
from cargo_gtm.download.dataframe import download_dataframe, frame_from_bytes  # noqa: E402
from cargo_gtm.errors import CargoDownloadError  # noqa: E402

from .test_download_socket import _csv  # noqa: E402  (the same tricky CSV: quoted line ends, dates, booleans)


@pytest.fixture(scope="module")
def pem(tmp_path_factory) -> str:
    """A throwaway self-signed certificate for 127.0.0.1 and its key, in one PEM file (made per test run: no key
    is kept in the repository)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path_factory.mktemp("tls") / "localhost.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


#: path -> (body, bytes actually sent): the header always promises the whole body
BODIES: dict[str, tuple[bytes, int]] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        body, sent = BODIES[self.path.split("?")[0]]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:sent])
        if sent < len(body):
            self.close_connection = True


@pytest.fixture(scope="module")
def https_url(pem: str) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def http(pem: str) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl.create_default_context(cafile=pem), timeout=30.0) as client:
        yield client


@pytest.fixture
def tls_sockets(monkeypatch) -> list[type]:
    """The type of every socket a body is read from directly."""
    seen: list[type] = []
    original = stream._SocketBody.__init__

    def spy(self, sock, *args, **kwargs):
        seen.append(type(sock))
        original(self, sock, *args, **kwargs)

    monkeypatch.setattr(stream._SocketBody, "__init__", spy)
    return seen


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_big_https_body_is_read_from_the_tls_socket_and_gives_the_pandas_frame(https_url, http, tls_sockets,
                                                                                  gzipped):
    data = _csv(120_000 * (4 if gzipped else 1))  # ~10 MB (gzip: ~4 MB compressed): past RAW_RECEIVE_MIN
    body = gzip.compress(data, compresslevel=1) if gzipped else data
    assert len(body) >= stream.RAW_RECEIVE_MIN
    BODIES[f"/out-{gzipped}.csv"] = (body, len(body))
    frame = download_dataframe(f"{https_url}/out-{gzipped}.csv?X-Amz-Signature=abc", format="csv", http=http)
    pd.testing.assert_frame_equal(frame, frame_from_bytes(data, "csv", engine="pandas"))
    assert tls_sockets == [ssl.SSLSocket]
    assert frame["note"][7] == 'say "7", then\nmore' and frame["n"].dtype == "int64"


def test_an_https_body_cut_short_is_named_truncated(https_url, http, tls_sockets):
    body = _csv(120_000)
    BODIES["/cut.csv"] = (body, len(body) // 2)
    with pytest.raises(CargoDownloadError) as caught:
        download_dataframe(f"{https_url}/cut.csv", format="csv", http=http, batch_uuid="b-tls-1")
    message = str(caught.value)
    assert "b-tls-1" in message and str(len(body)) in message, message
    assert tls_sockets == [ssl.SSLSocket]


def test_the_shared_client_serves_the_next_download_after_a_tls_socket_read(https_url, http, tls_sockets):
    big, small = _csv(120_000), _csv(50)
    BODIES["/big.csv"] = (big, len(big))
    BODIES["/small.csv"] = (small, len(small))
    first = download_dataframe(f"{https_url}/big.csv", format="csv", http=http)
    second = download_dataframe(f"{https_url}/small.csv", format="csv", http=http)
    third = download_dataframe(f"{https_url}/big.csv", format="csv", http=http)
    assert len(first) == len(third) == 120_000 and len(second) == 50
    assert second["id"].tolist()[-1] == "r49"
    assert tls_sockets == [ssl.SSLSocket, ssl.SSLSocket]  # the small body went through httpx
