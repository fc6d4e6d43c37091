"""The faster stand-ins for python3-saml's helpers (``app.saml.schema_cache``) answer exactly as
the library does: the same UNIX seconds or the same failure for every timestamp, and the same
verdict for every signature, with the xmlsec key of a certificate loaded once and reused."""

from __future__ import annotations

import base64

import pytest
import xmlsec
from lxml import etree
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError

from app.saml import schema_cache
from tests.saml_idp import TestIdP

TIMESTAMPS = [
    "2026-12-01T19:15:34Z",
    "2026-12-01T19:15:34.123Z",
    "2026-12-01T19:15:34.1234567890Z",
    "2024-02-29T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-12-01T23:59:60Z",
    "2026-12-01T24:00:00Z",
    "2026-1-01T19:15:34Z",
    "2026-12-01T19:15:34",
    "2026-12-01 19:15:34Z",
    "\u0662\u0660\u0662\u0666-12-01T19:15:34Z",  # Arabic-Indic digits
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "",
    "garbage",
]


def _outcome(parse, value: str) -> object:
    try:
        return parse(value)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("value", TIMESTAMPS)
def test_timestamps_read_as_the_library_reads_them(value):
    assert _outcome(schema_cache.parse_SAML_to_time, value) == _outcome(schema_cache._LIBRARY_PARSE_TIME, value)


def _signed_response(idp: TestIdP) -> etree._Element:
    """A signed Response, its ID registered as the library's ``validate_sign`` does before."""
    sp = {"acs_url": "https://sso.test/saml/1/acs", "sp_entity_id": "https://sso.test/saml/1/metadata"}
    root = etree.fromstring(base64.b64decode(idp.response(sp, email="a@b.example", sign_response=True)))
    xmlsec.tree.add_ids(root, ["ID"])
    return root


def _signature(root: etree._Element) -> etree._Element:
    return root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")


def test_a_reused_key_verifies_the_signer_and_refuses_others():
    signer, stranger = TestIdP.create(), TestIdP.create()
    for _ in range(3):  # the first call loads the key, the next ones reuse it
        root = _signed_response(signer)
        assert schema_cache.validate_node_sign(_signature(root), root, signer.cert_pem, raise_exceptions=True)
        root = _signed_response(signer)
        assert schema_cache.validate_node_sign(_signature(root), root, stranger.cert_pem) is False
        with pytest.raises(OneLogin_Saml2_ValidationError):
            schema_cache.validate_node_sign(_signature(root), root, stranger.cert_pem, raise_exceptions=True)


def test_a_tampered_document_is_refused_with_a_cached_key():
    signer = TestIdP.create()
    root = _signed_response(signer)
    assert schema_cache.validate_node_sign(_signature(root), root, signer.cert_pem, raise_exceptions=True)
    root = _signed_response(signer)
    root.set("Destination", "https://evil.test/acs")
    assert schema_cache.validate_node_sign(_signature(root), root, signer.cert_pem) is False


def test_pending_values_follow_the_pending_requests_table():
    """The ACS reads a pending request positionally from its joined query."""
    from app.models import PendingRequest
    from app.saml.core import PendingValues

    assert list(PendingValues._fields) == [column.key for column in PendingRequest.__table__.c]


# --- the ACS parses once, with the library's parser ------------------------------------------


def _acs_code(client, connection_id: int, raw: bytes) -> str | None:
    response = client.post(f"/saml/{connection_id}/acs", data={"SAMLResponse": base64.b64encode(raw).decode()})
    assert response.status_code == 400
    from tests.helpers.audit import audit_events

    return audit_events("signin.sso")[-1].error_code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        # UTF-16: the byte pattern check cannot see this DOCTYPE, the parser's own check does.
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]>'
            '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&a;</samlp:Response>'.encode("utf-16"),
            "SAML_DOCTYPE",
        ),
        (b"\x00\xff not xml", "SAML_MALFORMED"),
        (b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"', "SAML_MALFORMED"),
    ],
    ids=["utf16-doctype", "binary", "truncated"],
)
def test_what_the_parser_refuses_is_a_clean_refusal(client, acme, raw, code):
    assert _acs_code(client, acme["connection"].id, raw) == code


def test_the_guard_and_the_library_read_one_tree(acme, idp):
    """The checks before validation see the document the library verifies: comments are gone
    from it (as they are from what the signature covers), not read around."""
    from app.saml.xmlguard import decode_saml_response

    element = idp.response_element(acme["sp"], email="admin@acme.example", sign_response=True)
    element.find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion").addprevious(etree.Comment("x"))
    raw, root = decode_saml_response(base64.b64encode(etree.tostring(element)).decode())
    assert b"<!--x-->" in raw
    assert b"<!--" not in etree.tostring(root)


# --- consuming the pending request and recording the assertion (one statement on PostgreSQL) ---


def _verified(connection, assertion_id: str):
    import datetime as dt

    from app.saml.core import VerifiedAssertion

    return VerifiedAssertion(
        connection=connection,
        assertion_id=assertion_id,
        issuer="",
        name_id=None,
        name_id_format=None,
        session_index=None,
        attributes={},
        audiences=[],
        signed_elements=["assertion"],
        signature_algorithms=["RSA-SHA256"],
        not_on_or_after=dt.datetime(2099, 1, 1),
    )


def _pending(request_id: str):
    from app.extensions import db
    from app.models import PendingRequest
    from app.saml.core import PendingValues

    row = db.session.get(PendingRequest, request_id)
    return PendingValues(*(getattr(row, name) for name in PendingValues._fields))


def test_a_pending_request_answered_meanwhile_records_nothing(client, acme):
    from app.errors import SignInError
    from app.extensions import db
    from app.models import PendingRequest, UsedAssertion
    from app.saml.core import _remember
    from tests.helpers.signin import start_sso

    pending = _pending(start_sso(client, "admin@acme.example"))
    db.session.query(PendingRequest).filter_by(id=pending.id).delete()  # another worker's answer
    with pytest.raises(SignInError) as refused:
        _remember(_verified(acme["connection"], "_meanwhile"), pending)
    assert refused.value.code == "SAML_REPLAY"
    assert db.session.get(UsedAssertion, (acme["connection"].id, "_meanwhile")) is None


def test_consuming_and_recording_happen_together(client, acme):
    from app.errors import SignInError
    from app.extensions import db
    from app.models import PendingRequest, UsedAssertion
    from app.saml.core import _remember
    from tests.helpers.signin import start_sso

    first = _pending(start_sso(client, "admin@acme.example"))
    _remember(_verified(acme["connection"], "_once"), first)
    db.session.commit()
    assert db.session.get(PendingRequest, first.id) is None
    assert db.session.get(UsedAssertion, (acme["connection"].id, "_once")) is not None
    second = _pending(start_sso(client, "admin@acme.example"))
    with pytest.raises(SignInError) as refused:  # the same assertion again, with a live request
        _remember(_verified(acme["connection"], "_once"), second)
    assert refused.value.code == "SAML_REPLAY"
    assert db.session.get(PendingRequest, second.id) is not None  # rolled back with the refusal


def test_a_direct_statement_sees_the_sessions_pending_changes(app, acme):
    """``app.saml.driver.execute`` flushes first, as ``Session.execute`` does (on PostgreSQL it
    runs on the driver connection, past SQLAlchemy's own autoflush)."""
    import datetime as dt

    from sqlalchemy import select

    from app.extensions import db
    from app.models import PendingRequest
    from app.saml import driver

    now = dt.datetime(2026, 1, 1)
    db.session.add(
        PendingRequest(
            id="_unflushed",
            connection_id=acme["connection"].id,
            app="portal",
            next_path="/",
            browser_binding_hash="0" * 64,
            purpose="login",
            created_at=now,
            expires_at=now,
        )
    )
    rows, count = driver.execute(
        select(PendingRequest.id, PendingRequest.created_at).where(PendingRequest.id == "_unflushed"), {}
    )
    assert rows == [("_unflushed", now)] and count == 1
    db.session.rollback()
