"""Fetching IdP metadata from a URL cannot pin a worker or reach inside the network: one deadline
for the whole exchange, IPv4 wrapped in IPv6 checked, one name lookup whose checked address is the
one connected to, one answer for every network failure; and IdP endpoints read from metadata get
the same scheme checks as typed ones."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import app.saml.metadata as metadata_module
from app.errors import SignInError
from app.extensions import db
from app.models import IdpConnection
from app.saml.metadata import UNREACHABLE_MESSAGE, MetadataError, fetch_metadata, is_public_address
from app.services.connections import create_connection, read_idp_side
from app.services.signin import start_sso
from tests.helpers.audit import audit_events
from tests.helpers.metadata import idp_metadata, make_cert
from tests.helpers.web import log_in

PUBLIC_ADDRESS = "93.184.216.34"


# --- local servers ------------------------------------------------------------------------------


@dataclass
class RawServer:
    """A TCP server on 127.0.0.1 that runs ``handler(conn)`` for each connection, in a thread."""

    port: int
    seen: list[bytes] = field(default_factory=list)


@contextlib.contextmanager
def raw_server(handler: Callable[[socket.socket, RawServer], None]) -> Iterator[RawServer]:
    listener = socket.create_server(("127.0.0.1", 0))
    server = RawServer(port=listener.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_handle, args=(conn,), daemon=True).start()

    def _handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            handler(conn, server)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def drip_body(conn: socket.socket, server: RawServer) -> None:
    """Answer 200 with a 100 KB body, then send it one byte every 0.2 s (for minutes, if let)."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(100_000):
        conn.sendall(b"<")
        time.sleep(0.2)


def drip_headers(conn: socket.socket, server: RawServer) -> None:
    """Send the status line, then one header byte every 0.2 s."""
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(100_000):
        conn.sendall(b"a")
        time.sleep(0.2)


def silent(conn: socket.socket, server: RawServer) -> None:
    """Accept and never answer."""
    _read_request(conn)
    time.sleep(10)


def plain_http(conn: socket.socket, server: RawServer) -> None:
    """A plain-http server answering whatever arrives (an https client's handshake fails against it)."""
    conn.settimeout(5)
    server.seen.append(conn.recv(4096))
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def _closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connecting is refused at once."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


# --- a TLS server with its own certificate authority ------------------------------------------


@dataclass
class Pki:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def _pki(tmp_path, hostname: str) -> Pki:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Pki(
        ca.public_bytes(serialization.Encoding.PEM),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@pytest.fixture
def tls_idp(tmp_path, monkeypatch, idp):
    """An https metadata server on 127.0.0.1 whose certificate names idp.example.com, trusted by the
    fetcher through a test CA. Records the SNI name and the request it received."""
    pki = _pki(tmp_path, "idp.example.com")
    (tmp_path / "cert.pem").write_bytes(pki.cert_pem + pki.ca_pem)
    (tmp_path / "key.pem").write_bytes(pki.key_pem)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    sni: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: sni.append(name)
    body = idp_metadata(idp.cert_pem)

    def handler(conn: socket.socket, server: RawServer) -> None:
        with server_context.wrap_socket(conn, server_side=True) as tls:
            server.seen.append(_read_request(tls))
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    monkeypatch.setattr(metadata_module, "tls_context", lambda: ssl.create_default_context(cadata=pki.ca_pem.decode()))
    with raw_server(handler) as server:
        yield {"server": server, "sni": sni, "body": body}


@pytest.fixture
def pinned_dns(monkeypatch):
    """``idp.example.com`` resolves to a public address first and to 127.0.0.1 on every later
    lookup (DNS rebinding). Connections to the public address are carried to the local server."""
    lookups: list[str] = []
    connects: list[tuple[str, int]] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection
    local_port: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in ("idp.example.com", "other.example.com"):
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = PUBLIC_ADDRESS if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    def create_connection(address, timeout=None, *args, **kwargs):
        connects.append(address)
        if address[0] == PUBLIC_ADDRESS:
            return real_connect(("127.0.0.1", local_port["port"]), timeout)
        raise AssertionError(f"connected to an address that was not checked: {address}")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return {"lookups": lookups, "connects": connects, "local_port": local_port}


# --- the deadline -------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", [drip_body, drip_headers, silent], ids=["body", "headers", "silent"])
def test_a_dripping_server_is_cut_off_at_the_deadline(handler):
    with raw_server(handler) as server:
        started = time.monotonic()
        with pytest.raises(MetadataError) as refused:
            fetch_metadata(f"http://127.0.0.1:{server.port}/metadata", allow_insecure=True, deadline_seconds=1.0)
        elapsed = time.monotonic() - started
    assert refused.value.code == "METADATA_URL_UNREACHABLE"
    assert 0.9 <= elapsed < 1.6, elapsed


def test_the_deadline_setting_bounds_an_import_from_the_wizard(app, make_account, make_user, client, csrf_token):
    account = make_account()
    log_in(client, make_user(account, "admin@acme.example", "admin"))
    connection = create_connection(account, "okta")
    db.session.commit()
    app.config.update(METADATA_FETCH_ALLOW_INSECURE=True, METADATA_FETCH_DEADLINE_SECONDS=1.0)
    try:
        with raw_server(drip_body) as server:
            started = time.monotonic()
            response = client.post(
                f"/setup/connections/{connection.id}/import/url",
                data={"csrf_token": csrf_token(), "metadata_url": f"http://127.0.0.1:{server.port}/m"},
            )
            elapsed = time.monotonic() - started
    finally:
        app.config.update(METADATA_FETCH_ALLOW_INSECURE=False, METADATA_FETCH_DEADLINE_SECONDS=10.0)
    assert response.status_code == 422 and "METADATA_URL_UNREACHABLE" in response.get_data(as_text=True)
    assert elapsed < 2.5, elapsed
    assert audit_events("connection.import", connection)[0].error_code == "METADATA_URL_UNREACHABLE"


def test_a_slow_name_server_is_cut_off_at_the_deadline(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: time.sleep(3) or [])
    started = time.monotonic()
    with pytest.raises(MetadataError) as refused:
        fetch_metadata("https://slow-dns.example.com/metadata", deadline_seconds=0.5)
    assert refused.value.code == "METADATA_URL_UNREACHABLE"
    assert time.monotonic() - started < 1.0


# --- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[::ffff:a9fe:a9fe]",  # IPv4-mapped 169.254.169.254 (cloud metadata)
        "[::7f00:1]",  # IPv4-compatible ::127.0.0.1
        "[::a00:1]",  # IPv4-compatible ::10.0.0.1
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
        "[64:ff9b:1::a00:1]",  # local-use NAT64 (RFC 8215)
        "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
        "[2002:c0a8:101::1]",  # 6to4 of 192.168.1.1
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
        "127.0.0.1",
        "2130706433",  # 127.0.0.1 as one decimal number: checked after resolution
        "[fe80::1]",
        "100.64.0.1",  # carrier-grade NAT
    ],
)
def test_private_addresses_wrapped_or_not_are_refused_before_connecting(monkeypatch, host):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("connected"))
    with pytest.raises(MetadataError) as refused:
        fetch_metadata(f"https://{host}/metadata")
    assert refused.value.code == "METADATA_URL_PRIVATE"


def test_public_addresses_wrapped_in_ipv6_stay_allowed():
    assert is_public_address("64:ff9b::808:808")  # NAT64 of 8.8.8.8
    assert is_public_address("2002:808:808::1")  # 6to4 of 8.8.8.8
    assert is_public_address("2606:4700:4700::1111")
    assert not is_public_address(str(ipaddress.IPv6Address("::ffff:10.1.2.3")))


def test_one_lookup_and_the_checked_address_is_the_one_connected_to(pinned_dns, tls_idp):
    """DNS answers a public address, then 127.0.0.1: the fetch looks up once, connects to the public
    address, sends SNI and Host for the name and verifies the certificate against that name."""
    pinned_dns["local_port"]["port"] = tls_idp["server"].port
    url = f"https://idp.example.com:{tls_idp['server'].port}/app/metadata?tenant=a b"
    assert fetch_metadata(url) == tls_idp["body"]
    assert pinned_dns["lookups"] == ["idp.example.com"]
    assert pinned_dns["connects"] == [(PUBLIC_ADDRESS, tls_idp["server"].port)]
    assert tls_idp["sni"] == ["idp.example.com"]
    request = tls_idp["server"].seen[0].decode()
    assert request.startswith("GET /app/metadata?tenant=a%20b HTTP/1.1\r\n")
    assert f"\r\nHost: idp.example.com:{tls_idp['server'].port}\r\n" in request


def test_a_certificate_for_another_name_is_refused(pinned_dns, tls_idp):
    pinned_dns["local_port"]["port"] = tls_idp["server"].port
    with pytest.raises(MetadataError) as refused:
        fetch_metadata(f"https://other.example.com:{tls_idp['server'].port}/metadata")
    assert refused.value.code == "METADATA_URL_UNREACHABLE"
    assert refused.value.message == UNREACHABLE_MESSAGE


# --- one answer for every network failure ------------------------------------------------------


def test_refused_timed_out_and_failed_tls_read_the_same(caplog):
    answers = []
    answers.append(_refusal(f"http://127.0.0.1:{_closed_port()}/m"))
    with raw_server(silent) as server:
        answers.append(_refusal(f"http://127.0.0.1:{server.port}/m"))
    with raw_server(plain_http) as server:
        answers.append(_refusal(f"https://127.0.0.1:{server.port}/m"))
    answers.append(_refusal("https://no-such-host.invalid/m"))
    assert {answer for answer in answers} == {("METADATA_URL_UNREACHABLE", UNREACHABLE_MESSAGE)}
    # The detail is for the operator's log, not the admin's page.
    logged = caplog.text
    assert "ConnectionRefusedError" in logged and "TimeoutError" in logged and "SSL" in logged


def _refusal(url: str) -> tuple[str, str]:
    with pytest.raises(MetadataError) as refused:
        fetch_metadata(url, allow_insecure=True, deadline_seconds=0.5)
    return refused.value.code, refused.value.message


# --- IdP endpoints read from metadata -----------------------------------------------------------


def _metadata_with(sso_url: str, slo_url: str | None = None) -> bytes:
    body = idp_metadata(_cert()).decode()
    body = body.replace("https://idp.example.test/sso/redirect", sso_url).replace(
        "https://idp.example.test/sso/post", sso_url
    )
    if slo_url:
        body = body.replace(
            "</md:IDPSSODescriptor>",
            f'<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            f'Location="{slo_url}"/></md:IDPSSODescriptor>',
        )
    return body.encode()


def _cert() -> str:
    return make_cert(days=300)


@pytest.mark.parametrize(
    ("sso_url", "slo_url", "code"),
    [
        ("javascript:alert(document.cookie)", None, "METADATA_BAD_SSO_URL"),
        ("JavaScript://idp.example/%0aalert(1)", None, "METADATA_BAD_SSO_URL"),
        ("data:text/html,hi", None, "METADATA_BAD_SSO_URL"),
        ("http://idp.example.test/sso", None, "METADATA_BAD_SSO_URL"),
        ("https://idp.example.test/sso", "javascript:alert(1)", "METADATA_BAD_SLO_URL"),
        ("https://idp.example.test/sso", "http://idp.example.test/slo", "METADATA_BAD_SLO_URL"),
    ],
)
def test_unsafe_endpoints_in_metadata_are_refused_with_a_code(sso_url, slo_url, code):
    with pytest.raises(MetadataError) as refused:
        read_idp_side("paste", raw=_metadata_with(sso_url, slo_url))
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("sso_url", "slo_url", "code"),
    [
        ("javascript:alert(1)", "", "MANUAL_BAD_SSO_URL"),
        ("http://idp.example.test/sso", "", "MANUAL_BAD_SSO_URL"),
        ("https://idp.example.test/sso", "javascript:alert(1)", "MANUAL_BAD_SLO_URL"),
    ],
)
def test_typed_endpoints_get_the_same_checks(sso_url, slo_url, code):
    with pytest.raises(MetadataError) as refused:
        read_idp_side("manual", entity_id="e", sso_url=sso_url, slo_url=slo_url, certificate=_cert())
    assert refused.value.code == code


def test_http_endpoints_are_fine_in_development(app, monkeypatch):
    monkeypatch.setitem(app.config, "METADATA_FETCH_ALLOW_INSECURE", True)
    parsed = read_idp_side("paste", raw=_metadata_with("http://localhost:5000/idp/sso", "http://localhost:5000/slo"))
    assert parsed.sso_url == "http://localhost:5000/idp/sso" and parsed.slo_url == "http://localhost:5000/slo"


def test_javascript_sso_url_from_metadata_is_refused_in_the_wizard_and_test_sign_in_does_not_fail(
    make_account, make_user, client, csrf_token
):
    account = make_account()
    log_in(client, make_user(account, "admin@acme.example", "admin"))
    connection = create_connection(account, "okta")
    db.session.commit()
    response = client.post(
        f"/setup/connections/{connection.id}/import/paste",
        data={"csrf_token": csrf_token(), "metadata_xml": _metadata_with("javascript:alert(document.domain)")},
    )
    assert response.status_code == 422 and "METADATA_BAD_SSO_URL" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(IdpConnection, connection.id).idp_sso_url == ""
    test = client.post(f"/setup/connections/{connection.id}/test", data={"csrf_token": csrf_token()})
    assert test.status_code < 500
    assert "javascript:" not in (test.location or "")


def test_a_stored_javascript_sso_url_is_refused_with_a_code_not_a_500(
    make_account, make_user, make_connection, client, csrf_token
):
    """Rows saved before the check: the test sign-in sends the admin back to import, and a user's
    sign-in is refused with a code (the sign-in views show refusals as a coded page)."""
    account = make_account()
    log_in(client, make_user(account, "admin@acme.example", "admin"))
    draft = make_connection(account, "okta", status="draft")
    draft.idp_sso_url = "javascript:alert(1)"
    db.session.commit()
    test = client.post(f"/setup/connections/{draft.id}/test", data={"csrf_token": csrf_token()})
    assert test.status_code == 302 and test.location.endswith(f"/setup/connections/{draft.id}/import")

    enabled = make_connection(make_account("globex", "Globex"))
    make_user(enabled.account, "user@globex.example", "agent")
    enabled.idp_sso_url = "javascript:alert(1)"
    db.session.commit()
    with pytest.raises(SignInError) as refused:
        start_sso("user@globex.example", app_name="portal", next_path="/", browser_binding="b" * 32)
    assert refused.value.code == "IDP_SSO_URL_INVALID" and refused.value.status == 409
