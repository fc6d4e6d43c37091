"""Importing the IdP side in the wizard: four ways in, a review before saving, bad input explained
with nothing saved, and certificate rollover (several certificates, re-import from the URL)."""

from __future__ import annotations

import contextlib
import html
import io
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import app.saml.metadata as metadata_module
from app.extensions import db
from app.models import IdpConnection
from app.models.idp_connection import DRAFT, ENABLED, TESTED
from app.saml.certs import certificate_info
from app.saml.core import sp_metadata_xml
from app.saml.urls import sp_values
from tests.helpers.audit import audit_events
from tests.helpers.metadata import MD, idp_metadata, make_cert
from tests.helpers.signin import post_acs, start_sso
from tests.helpers.web import log_in
from tests.saml_idp import TestIdP

IDP_ENTITY = "https://idp.example.test/saml/metadata"


@dataclass
class MetadataServer:
    """A real HTTP server on 127.0.0.1 playing the IdP's metadata URL (and its failure modes)."""

    url: str
    #: path -> (status, headers, body, seconds to wait before answering)
    routes: dict[str, tuple[int, dict[str, str], bytes, float]] = field(default_factory=dict)


@pytest.fixture
def metadata_server(app, monkeypatch) -> Iterator[MetadataServer]:
    """Serve metadata over http on a private address, which development settings allow."""
    monkeypatch.setitem(app.config, "METADATA_FETCH_ALLOW_INSECURE", True)
    routes: dict[str, tuple[int, dict[str, str], bytes, float]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body, delay = routes.get(self.path, (404, {}, b"not found", 0.0))
            time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The client may give up (time-out or size cap): that is the point of those tests.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield MetadataServer(url=f"http://127.0.0.1:{server.server_address[1]}", routes=routes)
    server.shutdown()
    server.server_close()


@pytest.fixture
def wizard(make_account, make_user, client) -> dict:
    """An admin signed in, with a fresh draft Okta connection (no IdP side yet)."""
    from app.services.connections import create_connection

    account = make_account("acme", "Acme Corp")
    admin = make_user(account, "admin@acme.example", "admin")
    connection = create_connection(account, "okta")
    db.session.commit()
    log_in(client, admin)
    return {"account": account, "admin": admin, "connection": connection}


def _read(client, connection: IdpConnection, method: str, csrf: str, **data):
    return client.post(
        f"/setup/connections/{connection.id}/import/{method}",
        data={"csrf_token": csrf, **data},
        content_type="multipart/form-data" if method == "file" else None,
    )


def _review_token(page: str) -> str:
    return html.unescape(re.search(r'name="review_token" type="hidden" value="([^"]+)"', page).group(1))


def _confirm(client, connection: IdpConnection, page: str, csrf: str):
    return client.post(
        f"/setup/connections/{connection.id}/import/confirm",
        data={"csrf_token": csrf, "review_token": _review_token(page)},
    )


def _fresh(connection: IdpConnection) -> IdpConnection:
    db.session.expire_all()
    return db.session.get(IdpConnection, connection.id)


def _assert_nothing_saved(connection: IdpConnection) -> None:
    connection = _fresh(connection)
    assert connection.idp_entity_id == "" and connection.idp_sso_url == "" and connection.certificates == []


# --- the four ways in ---------------------------------------------------------------------------


def test_paste_review_then_confirm(client, csrf_token, wizard, idp):
    connection = wizard["connection"]
    soon = make_cert(days=20)
    response = _read(
        client, connection, "paste", csrf_token(), metadata_xml=idp_metadata(idp.cert_pem, extra_cert=soon).decode()
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # The review shows what was parsed, and saves nothing yet.
    assert IDP_ENTITY in page and "https://idp.example.test/sso/redirect" in page
    for pem in (idp.cert_pem, soon):
        info = certificate_info(pem)
        assert info.fingerprint_sha256 in page and f"{info.not_after:%Y-%m-%d}" in page
    assert 'data-testid="review-warning"' in page and "expires on" in page
    _assert_nothing_saved(connection)

    response = _confirm(client, connection, page, csrf_token())
    assert response.status_code == 302 and response.location == f"/setup/connections/{connection.id}/test"
    connection = _fresh(connection)
    assert connection.idp_entity_id == IDP_ENTITY
    assert connection.idp_sso_url == "https://idp.example.test/sso/redirect"
    assert len(connection.certificates) == 2 and connection.status == DRAFT
    [event] = audit_events("connection.import", connection)
    assert (
        event.outcome == "success" and event.details["method"] == "paste" and event.details["certificates_added"] == 2
    )


def test_file_upload(client, csrf_token, wizard, idp):
    connection = wizard["connection"]
    response = _read(
        client, connection, "file", csrf_token(), metadata_file=(io.BytesIO(idp_metadata(idp.cert_pem)), "idp.xml")
    )
    assert response.status_code == 200
    _confirm(client, connection, response.get_data(as_text=True), csrf_token())
    assert _fresh(connection).idp_entity_id == IDP_ENTITY


def test_manual_fields(client, csrf_token, wizard, idp):
    connection = wizard["connection"]
    response = _read(
        client,
        connection,
        "manual",
        csrf_token(),
        entity_id=" https://idp.example.test/x ",
        sso_url="https://idp.example.test/sso",
        slo_url="",
        certificate=idp.cert_pem,
    )
    assert response.status_code == 200
    assert certificate_info(idp.cert_pem).fingerprint_sha256 in response.get_data(as_text=True)
    _confirm(client, connection, response.get_data(as_text=True), csrf_token())
    connection = _fresh(connection)
    assert connection.idp_entity_id == "https://idp.example.test/x" and len(connection.certificates) == 1
    assert audit_events("connection.import", connection)[0].details["method"] == "manual"


def test_metadata_url_is_fetched_and_remembered(client, csrf_token, wizard, idp, metadata_server):
    connection = wizard["connection"]
    metadata_server.routes["/app/metadata"] = (200, {"Content-Type": "application/xml"}, idp_metadata(idp.cert_pem), 0)
    url = f"{metadata_server.url}/app/metadata"
    response = _read(client, connection, "url", csrf_token(), metadata_url=url)
    assert response.status_code == 200
    _confirm(client, connection, response.get_data(as_text=True), csrf_token())
    connection = _fresh(connection)
    assert connection.idp_metadata_url == url and connection.idp_entity_id == IDP_ENTITY
    # The import page offers the remembered URL again.
    assert url in client.get(f"/setup/connections/{connection.id}/import").get_data(as_text=True)


# --- bad input: a message on the page, a code, an audit event, nothing saved -----------------


def _two_idps() -> bytes:
    one = idp_metadata(make_cert(days=300), entity_id="https://one.example").decode().split("?>", 1)[1]
    two = idp_metadata(make_cert(days=300), entity_id="https://two.example").decode().split("?>", 1)[1]
    return f'<md:EntitiesDescriptor xmlns:md="{MD}">{one}{two}</md:EntitiesDescriptor>'.encode()


BAD_PASTES = {
    "not XML": (b"this is not xml at all", "METADATA_NOT_XML"),
    "empty": (b"   ", "METADATA_EMPTY"),
    "no IdP descriptor": (None, "METADATA_NO_IDP"),  # an SP's metadata, filled in below
    "several entity descriptors": (_two_idps(), "METADATA_MULTIPLE_ENTITIES"),
    "no signing certificate": (idp_metadata(None), "METADATA_NO_SIGNING_CERTIFICATE"),
    "expired certificate": (idp_metadata(make_cert(days=-1)), "METADATA_CERTIFICATE_EXPIRED"),
    "a DTD": (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "METADATA_NOT_XML"),
    "not SAML": (b"<html><body>Sign in</body></html>", "METADATA_NOT_SAML"),
    "an entity ID longer than the column": (
        idp_metadata(make_cert(days=300), entity_id="https://idp.example/" + "e" * 1100),
        "METADATA_VALUE_TOO_LONG",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PASTES))
def test_bad_metadata_is_explained_and_nothing_saved(client, csrf_token, wizard, case):
    connection = wizard["connection"]
    raw, code = BAD_PASTES[case]
    if raw is None:
        raw = sp_metadata_xml(connection).encode()
    response = _read(client, connection, "paste", csrf_token(), metadata_xml=raw.decode())
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'data-testid="import-error-code">{code}<' in page
    assert "Nothing was saved" in page
    _assert_nothing_saved(connection)
    [event] = audit_events("connection.import", connection)
    assert event.outcome == "failure" and event.error_code == code and event.details["method"] == "paste"


def test_bad_upload_is_explained(client, csrf_token, wizard):
    connection = wizard["connection"]
    too_big = b"<x>" + b" " * (metadata_module.MAX_METADATA_BYTES + 10) + b"</x>"
    # Encoded by hand: the test client would spool a body this size to a file it never closes.
    boundary = "setup-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf_token()}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata_file"; filename="big.xml"\r\n'
            "Content-Type: application/xml\r\n\r\n"
        ).encode()
        + too_big
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        f"/setup/connections/{connection.id}/import/file",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 422 and "METADATA_TOO_LARGE" in response.get_data(as_text=True)
    response = _read(client, connection, "file", csrf_token())  # no file chosen
    assert response.status_code == 422 and "METADATA_EMPTY" in response.get_data(as_text=True)
    _assert_nothing_saved(connection)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"entity_id": "", "sso_url": "https://idp.example/sso", "certificate": "x"}, "MANUAL_NO_ENTITY_ID"),
        ({"entity_id": "e", "sso_url": "ftp://idp.example/sso", "certificate": "x"}, "MANUAL_BAD_SSO_URL"),
        ({"entity_id": "e", "sso_url": "https://idp.example/sso", "certificate": ""}, "MANUAL_NO_CERTIFICATE"),
        (
            {"entity_id": "e", "sso_url": "https://idp.example/sso", "certificate": "MIIBnot-a-cert"},
            "METADATA_BAD_CERTIFICATE",
        ),
        ({"entity_id": "e" * 1025, "sso_url": "https://idp.example/sso", "certificate": "x"}, "FORM_INVALID"),
    ],
)
def test_bad_manual_fields(client, csrf_token, wizard, fields, code):
    connection = wizard["connection"]
    response = _read(client, connection, "manual", csrf_token(), **fields)
    assert response.status_code == 422
    assert f">{code}<" in response.get_data(as_text=True)
    _assert_nothing_saved(connection)


def test_expired_manual_certificate(client, csrf_token, wizard):
    response = _read(
        client,
        wizard["connection"],
        "manual",
        csrf_token(),
        entity_id="e",
        sso_url="https://idp.example/sso",
        certificate=make_cert(days=-2),
    )
    assert response.status_code == 422 and "METADATA_CERTIFICATE_EXPIRED" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://127.0.0.1/metadata", "METADATA_URL_PRIVATE"),
        ("https://10.20.30.40/metadata", "METADATA_URL_PRIVATE"),
        ("https://[::1]/metadata", "METADATA_URL_PRIVATE"),
        ("http://idp.example.com/metadata", "METADATA_URL_NOT_HTTPS"),
        ("https://user:secret@idp.example.com/metadata", "METADATA_URL_INVALID"),
        ("not a url", "METADATA_URL_INVALID"),
        ("https://[::1/metadata", "METADATA_URL_INVALID"),
        ("", "METADATA_URL_INVALID"),
    ],
)
def test_bad_metadata_urls_in_production_settings(client, csrf_token, wizard, url, code):
    connection = wizard["connection"]
    response = _read(client, connection, "url", csrf_token(), metadata_url=url)
    assert response.status_code == 422
    assert f">{code}<" in response.get_data(as_text=True)
    _assert_nothing_saved(connection)
    assert audit_events("connection.import", connection)[0].error_code == code


def test_metadata_url_that_times_out(client, csrf_token, wizard, metadata_server, monkeypatch):
    monkeypatch.setitem(client.application.config, "METADATA_FETCH_DEADLINE_SECONDS", 0.3)
    metadata_server.routes["/slow"] = (200, {}, b"<late/>", 2.0)
    response = _read(client, wizard["connection"], "url", csrf_token(), metadata_url=f"{metadata_server.url}/slow")
    assert response.status_code == 422 and "METADATA_URL_UNREACHABLE" in response.get_data(as_text=True)
    _assert_nothing_saved(wizard["connection"])


def test_metadata_url_that_is_too_large(client, csrf_token, wizard, metadata_server):
    metadata_server.routes["/huge"] = (200, {}, b"<x>" + b"a" * (metadata_module.MAX_METADATA_BYTES + 1) + b"</x>", 0)
    response = _read(client, wizard["connection"], "url", csrf_token(), metadata_url=f"{metadata_server.url}/huge")
    assert response.status_code == 422 and "METADATA_TOO_LARGE" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("status", "headers", "code"),
    [
        (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, "METADATA_URL_REDIRECT"),
        (500, {}, "METADATA_URL_STATUS"),
    ],
)
def test_metadata_url_that_redirects_or_fails(client, csrf_token, wizard, metadata_server, status, headers, code):
    metadata_server.routes["/odd"] = (status, headers, b"", 0)
    response = _read(client, wizard["connection"], "url", csrf_token(), metadata_url=f"{metadata_server.url}/odd")
    assert response.status_code == 422 and code in response.get_data(as_text=True)


@pytest.mark.parametrize("method", ["file", "paste", "url", "manual"])
def test_empty_post_of_each_method_is_explained(client, csrf_token, wizard, method):
    response = client.post(
        f"/setup/connections/{wizard['connection'].id}/import/{method}", data={"csrf_token": csrf_token()}
    )
    assert response.status_code == 422
    assert 'data-testid="import-error-code"' in response.get_data(as_text=True)
    _assert_nothing_saved(wizard["connection"])


def test_unknown_import_method_is_404(client, csrf_token, wizard):
    assert _read(client, wizard["connection"], "telepathy", csrf_token()).status_code == 404


def test_tampered_or_foreign_review_is_refused(client, csrf_token, wizard, idp):
    from app.services.connections import create_connection

    connection = wizard["connection"]
    response = client.post(
        f"/setup/connections/{connection.id}/import/confirm",
        data={"csrf_token": csrf_token(), "review_token": "forged"},
    )
    assert response.status_code == 302 and response.location.endswith("/import")
    _assert_nothing_saved(connection)
    assert "IMPORT_REVIEW_INVALID" in client.get(response.location).get_data(as_text=True)

    other = create_connection(wizard["account"], "generic")
    db.session.commit()
    review = _read(client, other, "paste", csrf_token(), metadata_xml=idp_metadata(idp.cert_pem).decode())
    _confirm(client, connection, review.get_data(as_text=True), csrf_token())  # other's review, this connection
    _assert_nothing_saved(connection)
    _assert_nothing_saved(other)


# --- certificates: rollover -------------------------------------------------------------------


def test_reimport_adds_certificates_and_keeps_the_old_ones(client, csrf_token, wizard, idp):
    connection = wizard["connection"]
    first = _read(client, connection, "paste", csrf_token(), metadata_xml=idp_metadata(idp.cert_pem).decode())
    _confirm(client, connection, first.get_data(as_text=True), csrf_token())
    new_cert = make_cert(days=700)
    second = _read(client, connection, "paste", csrf_token(), metadata_xml=idp_metadata(new_cert).decode())
    page = second.get_data(as_text=True)
    assert "New" in page
    _confirm(client, connection, page, csrf_token())
    fingerprints = {cert.fingerprint_sha256 for cert in _fresh(connection).certificates}
    assert fingerprints == {
        certificate_info(idp.cert_pem).fingerprint_sha256,
        certificate_info(new_cert).fingerprint_sha256,
    }


def test_refresh_from_metadata_url_rolls_over_an_enabled_connection(
    client, csrf_token, wizard, idp, metadata_server, make_user
):
    """The IdP publishes its next certificate; a re-import adds it, and sign-ins signed with it work."""
    connection = wizard["connection"]
    make_user(wizard["account"], "user@acme.example", "admin")
    route = "/okta/metadata"
    metadata_server.routes[route] = (200, {}, idp_metadata(idp.cert_pem), 0)
    page = _read(client, connection, "url", csrf_token(), metadata_url=metadata_server.url + route).get_data(
        as_text=True
    )
    _confirm(client, connection, page, csrf_token())
    connection = _fresh(connection)
    connection.status = ENABLED
    connection.settings = {"signed_element": "assertion"}
    db.session.commit()

    next_idp = TestIdP.create(IDP_ENTITY)
    metadata_server.routes[route] = (200, {}, idp_metadata(idp.cert_pem, extra_cert=next_idp.cert_pem), 0)
    response = client.post(f"/setup/connections/{connection.id}/refresh", data={"csrf_token": csrf_token()})
    assert response.status_code == 302
    assert "1 new certificate added" in client.get(response.location).get_data(as_text=True)
    assert len(_fresh(connection).certificates) == 2

    # The IdP switches to the new key and drops the old certificate from its metadata: we keep both.
    metadata_server.routes[route] = (200, {}, idp_metadata(next_idp.cert_pem), 0)
    client.post(f"/setup/connections/{connection.id}/refresh", data={"csrf_token": csrf_token()})
    connection = _fresh(connection)
    assert len(connection.certificates) == 2 and connection.status == ENABLED
    request_id = start_sso(client, "user@acme.example")
    signed_with_new = next_idp.response(
        sp_values(connection).as_dict(), email="user@acme.example", request_id=request_id
    )
    assert post_acs(client, connection, signed_with_new).location == "/portal/"

    # Then the old certificate can be removed; the last one cannot.
    old = next(
        cert
        for cert in connection.certificates
        if cert.fingerprint_sha256 == certificate_info(idp.cert_pem).fingerprint_sha256
    )
    client.post(f"/setup/connections/{connection.id}/certificates/{old.id}/remove", data={"csrf_token": csrf_token()})
    connection = _fresh(connection)
    [kept] = connection.certificates
    client.post(f"/setup/connections/{connection.id}/certificates/{kept.id}/remove", data={"csrf_token": csrf_token()})
    assert len(_fresh(connection).certificates) == 1
    assert len(audit_events("connection.certificate_remove", connection)) == 1


def test_refresh_failure_keeps_the_connection(client, csrf_token, wizard, idp, metadata_server):
    connection = wizard["connection"]
    metadata_server.routes["/m"] = (200, {}, idp_metadata(idp.cert_pem), 0)
    _confirm(
        client,
        connection,
        _read(client, connection, "url", csrf_token(), metadata_url=metadata_server.url + "/m").get_data(as_text=True),
        csrf_token(),
    )
    metadata_server.routes["/m"] = (200, {}, b"<broken", 0)
    response = client.post(f"/setup/connections/{connection.id}/refresh", data={"csrf_token": csrf_token()})
    assert "METADATA_NOT_XML" in client.get(response.location).get_data(as_text=True)
    connection = _fresh(connection)
    assert connection.idp_entity_id == IDP_ENTITY and len(connection.certificates) == 1
    assert audit_events("connection.import", connection)[-1].error_code == "METADATA_NOT_XML"


def test_refresh_without_metadata_url_is_explained(client, csrf_token, wizard):
    connection = wizard["connection"]
    response = client.post(f"/setup/connections/{connection.id}/refresh", data={"csrf_token": csrf_token()})
    assert "NO_METADATA_URL" in client.get(response.location).get_data(as_text=True)


def test_certificate_of_another_connection_cannot_be_removed(client, csrf_token, wizard, make_account, make_connection):
    other = make_connection(make_account("globex", "Globex"))
    cert_id = other.certificates[0].id
    response = client.post(
        f"/setup/connections/{wizard['connection'].id}/certificates/{cert_id}/remove", data={"csrf_token": csrf_token()}
    )
    assert response.status_code == 302
    assert len(_fresh(other).certificates) == 1
    assert (
        client.post(
            f"/setup/connections/{other.id}/certificates/{cert_id}/remove", data={"csrf_token": csrf_token()}
        ).status_code
        == 404
    )


def test_changing_the_idp_of_a_tested_connection_asks_for_a_new_test(client, csrf_token, wizard, idp):
    connection = wizard["connection"]
    _confirm(
        client,
        connection,
        _read(client, connection, "paste", csrf_token(), metadata_xml=idp_metadata(idp.cert_pem).decode()).get_data(
            as_text=True
        ),
        csrf_token(),
    )
    connection = _fresh(connection)
    connection.status = TESTED
    db.session.commit()
    review = _read(
        client,
        connection,
        "paste",
        csrf_token(),
        metadata_xml=idp_metadata(idp.cert_pem, entity_id="https://elsewhere.example").decode(),
    )
    page = review.get_data(as_text=True)
    assert "was https://idp.example.test/saml/metadata" in page and "back to draft" in page
    _confirm(client, connection, page, csrf_token())
    assert _fresh(connection).status == DRAFT


def test_cli_refresh_uses_the_same_rollover(runner, wizard, idp, metadata_server, client, csrf_token):
    connection = wizard["connection"]
    metadata_server.routes["/m"] = (200, {}, idp_metadata(idp.cert_pem), 0)
    _confirm(
        client,
        connection,
        _read(client, connection, "url", csrf_token(), metadata_url=metadata_server.url + "/m").get_data(as_text=True),
        csrf_token(),
    )
    metadata_server.routes["/m"] = (200, {}, idp_metadata(idp.cert_pem, extra_cert=make_cert(days=800)), 0)
    result = runner.invoke(args=["idp", "refresh", str(connection.id), "--json"])
    assert result.exit_code == 0, result.output
    assert '"certificates_added": 1' in result.output
    assert len(_fresh(connection).certificates) == 2
    assert audit_events("connection.import", connection)[-1].actor == "cli"
