"""Responses shaped like the real IdPs' (namespaces, timestamps, claims), really signed.

The field layout follows what each IdP documents and sends; only the key is the test IdP's.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from app.demo_idp.idp import SAML, encode, sign_element
from app.saml.urls import sp_values
from tests.helpers.signin import post_acs, start_sso

CLAIM_EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def _instant(moment: dt.datetime, digits: int = 0) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{'123456789'[:digits]}" if digits else "") + "Z"


def _entra_response(sp: dict, request_id: str, idp_entity: str, email: str) -> etree._Element:
    """Entra ID's shape: default namespaces, 7-digit fractions, claims URIs, assertion signed."""
    now = dt.datetime.now(dt.UTC)
    xml = f"""<samlp:Response ID="_e1a2b3" Version="2.0" IssueInstant="{_instant(now, 7)}"
        Destination="{sp["acs_url"]}" InResponseTo="{request_id}" xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">
      <Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{idp_entity}</Issuer>
      <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
      <Assertion ID="_a9f8e7" IssueInstant="{_instant(now, 7)}" Version="2.0" xmlns="urn:oasis:names:tc:SAML:2.0:assertion">
        <Issuer>{idp_entity}</Issuer>
        <Subject>
          <NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">upn.{email}</NameID>
          <SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
            <SubjectConfirmationData InResponseTo="{request_id}" NotOnOrAfter="{_instant(now + dt.timedelta(minutes=5), 7)}" Recipient="{sp["acs_url"]}"/>
          </SubjectConfirmation>
        </Subject>
        <Conditions NotBefore="{_instant(now - dt.timedelta(minutes=5), 7)}" NotOnOrAfter="{_instant(now + dt.timedelta(hours=1), 7)}">
          <AudienceRestriction><Audience>{sp["sp_entity_id"]}</Audience></AudienceRestriction>
        </Conditions>
        <AttributeStatement>
          <Attribute Name="http://schemas.microsoft.com/identity/claims/tenantid"><AttributeValue>4f1c</AttributeValue></Attribute>
          <Attribute Name="{CLAIM_EMAIL}"><AttributeValue>{email.upper()}</AttributeValue></Attribute>
          <Attribute Name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"><AttributeValue>upn.{email}</AttributeValue></Attribute>
        </AttributeStatement>
        <AuthnStatement AuthnInstant="{_instant(now, 3)}" SessionIndex="_a9f8e7">
          <AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</AuthnContextClassRef></AuthnContext>
        </AuthnStatement>
      </Assertion>
    </samlp:Response>"""
    return etree.fromstring(xml.encode())


def test_entra_shaped_response_signs_the_user_in_by_the_email_claim(
    client, make_account, make_connection, make_user, idp
):
    account = make_account()
    connection = make_connection(account, "entra")
    make_user(account, "admin@acme.example")
    request_id = start_sso(client, "admin@acme.example")
    response = _entra_response(sp_values(connection).as_dict(), request_id, idp.entity_id, "admin@acme.example")
    sign_element(response.find(f"{{{SAML}}}Assertion"), idp.key_pem, idp.cert_pem)
    result = post_acs(client, connection, encode(response))
    assert result.status_code == 302, result.get_data(as_text=True)[:300]
    assert client.get("/api/v1/me").json["email"] == "admin@acme.example"


def test_google_shaped_response_uses_the_unspecified_name_id(client, make_account, make_connection, make_user, idp):
    """Google: NameID format unspecified carrying the primary email, no attributes, assertion signed."""
    account = make_account()
    connection = make_connection(account, "google")
    make_user(account, "admin@acme.example")
    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(
        sp_values(connection).as_dict(),
        email="Admin@Acme.example",
        request_id=request_id,
        attributes={},
        name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    )
    assert post_acs(client, connection, saml).status_code == 302


def test_okta_shaped_response_both_signed_with_prefix_list(client, make_account, make_connection, make_user, idp):
    account = make_account()
    connection = make_connection(account, "okta")
    make_user(account, "admin@acme.example")
    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(
        sp_values(connection).as_dict(),
        email="admin@acme.example",
        request_id=request_id,
        sign_response=True,
        inclusive_prefixes=("xs",),
        name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    )
    assert post_acs(client, connection, saml).status_code == 302


def test_okta_connection_hardened_to_both_refuses_a_response_without_the_outer_signature(
    client, make_account, make_connection, make_user, idp
):
    """Okta signs both; a connection hardened to require both refuses a stripped Response signature
    (by default either signature is enough: errata E26)."""
    account = make_account()
    connection = make_connection(account, "okta", signed_element="both")
    make_user(account, "admin@acme.example")
    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(sp_values(connection).as_dict(), email="admin@acme.example", request_id=request_id)
    response = post_acs(client, connection, saml)
    assert response.status_code == 400 and b"SAML_UNSIGNED" in response.data
