"""Signed AuthnRequests: the Redirect-binding query signature (RSA-SHA256) and the metadata flag."""

from __future__ import annotations

from urllib.parse import urlsplit

from lxml import etree

from app.demo_idp.idp import verify_redirect_signature
from app.extensions import db
from app.saml import sp_metadata_xml, sp_values
from app.saml.schema_cache import validate_xml
from tests.helpers.signin import post_acs, post_sso_start
from tests.saml_idp import authn_request_from_location

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"


def _turn_on(connection) -> None:
    connection.settings = {**connection.settings, "sign_requests": True}
    db.session.commit()


def test_signed_authn_request_verifies_with_the_sp_certificate_and_the_sign_in_completes(client, acme, idp):
    connection = acme["connection"]
    _turn_on(connection)
    response = post_sso_start(client, "admin@acme.example")
    assert response.status_code == 302
    query = urlsplit(response.location).query
    assert "SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256" in query
    assert verify_redirect_signature(query, "SAMLRequest", connection.sp_certificate)
    assert not verify_redirect_signature(
        query.replace("SAMLRequest=", "SAMLRequest=x"), "SAMLRequest", connection.sp_certificate
    )
    request_id = authn_request_from_location(response.location).get("ID")
    saml = idp.response(sp_values(connection).as_dict(), email="admin@acme.example", request_id=request_id)
    assert post_acs(client, connection, saml).status_code == 302


def test_unsigned_by_default(client, acme):
    response = post_sso_start(client, "admin@acme.example")
    assert "Signature=" not in urlsplit(response.location).query
    assert 'AuthnRequestsSigned="true"' not in sp_metadata_xml(acme["connection"])


def test_metadata_says_authn_requests_signed_and_stays_schema_valid(acme):
    _turn_on(acme["connection"])
    xml = sp_metadata_xml(acme["connection"])
    descriptor = etree.fromstring(xml.encode()).find(f"{MD}SPSSODescriptor")
    assert descriptor.get("AuthnRequestsSigned") == "true"
    assert not isinstance(validate_xml(xml, "saml-schema-metadata-2.0.xsd"), str)
