"""Issue 9 item 14: what a signature must cover (errata E26) and an ambiguous email attribute.

Every response is really signed by the test IdP; the validator is not mocked.
"""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from app.demo_idp.idp import SAML, build_response, encode, sign_element
from app.errors import SignInError
from app.extensions import db
from app.idp_plugins import PLUGINS
from app.models import AuditEvent, UserSession
from app.saml.urls import sp_values
from app.saml.xmlguard import NS, check_assertion_covered
from tests.helpers.signin import post_acs, start_sso

EMAIL = "admin@acme.example"


def refused(response, code: str) -> None:
    """A 4xx page naming ``code``, its failure audit event, and no session."""
    assert 400 <= response.status_code < 500, response.status_code
    assert code.encode() in response.data
    event = db.session.query(AuditEvent).filter_by(outcome="failure").order_by(AuditEvent.id.desc()).first()
    assert event is not None and event.error_code == code
    assert db.session.query(UserSession).count() == 0


def signed_in(response) -> None:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert response.location == "/portal/"
    assert db.session.query(UserSession).count() == 1


SIGNATURES = {
    "assertion only": {"sign_assertion": True, "sign_response": False},
    "response only": {"sign_assertion": False, "sign_response": True},
    "both": {"sign_assertion": True, "sign_response": True},
}


@pytest.fixture
def account_with(make_account, make_connection, make_user):
    """An account whose connection requires ``signed_element`` (None: the plugin default)."""

    def build(signed_element: str | None = None, plugin_key: str = "generic"):
        account = make_account()
        settings = {"signed_element": signed_element} if signed_element else {}
        connection = make_connection(account, plugin_key, **settings)
        make_user(account, EMAIL)
        return connection

    return build


def test_every_plugin_accepts_either_signature_by_default() -> None:
    assert {plugin.key: plugin.signed_element for plugin in PLUGINS} == dict.fromkeys(
        (plugin.key for plugin in PLUGINS), "any"
    )


@pytest.mark.parametrize("plugin_key", ["generic", "entra", "okta", "google", "onelogin", "salesforce"])
@pytest.mark.parametrize("shape", list(SIGNATURES))
def test_default_accepts_a_signature_on_the_assertion_or_the_response(
    client, idp, account_with, plugin_key: str, shape: str
):
    """Entra's "Sign SAML response" and OneLogin's "Response" send only the Response signature."""
    connection = account_with(plugin_key=plugin_key)
    request_id = start_sso(client, EMAIL)
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, **SIGNATURES[shape])
    signed_in(post_acs(client, connection, saml))


def test_default_still_refuses_an_unsigned_response(client, idp, account_with):
    connection = account_with()
    request_id = start_sso(client, EMAIL)
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, sign_assertion=False)
    refused(post_acs(client, connection, saml), "SAML_UNSIGNED")


def test_response_signature_covers_the_assertion(client, idp, account_with):
    """Change the email inside a Response-only-signed response: the Response's digest breaks."""
    connection = account_with()
    request_id = start_sso(client, EMAIL)
    element = idp.response_element(
        sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, sign_assertion=False, sign_response=True
    )
    for node in element.iter(f"{{{SAML}}}NameID", f"{{{SAML}}}AttributeValue"):
        node.text = "agent@acme.example"
    refused(post_acs(client, connection, encode(element)), "SAML_SIGNATURE_INVALID")


@pytest.mark.parametrize(
    ("required", "shape"),
    [
        ("assertion", "response only"),
        ("response", "assertion only"),
        ("both", "assertion only"),
        ("both", "response only"),
    ],
)
def test_hardened_connection_requires_its_element(client, idp, account_with, required: str, shape: str):
    connection = account_with(required)
    request_id = start_sso(client, EMAIL)
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, **SIGNATURES[shape])
    refused(post_acs(client, connection, saml), "SAML_UNSIGNED")


@pytest.mark.parametrize(("required", "shape"), [("assertion", "both"), ("response", "both"), ("both", "both")])
def test_hardened_connection_accepts_what_it_requires(client, idp, account_with, required: str, shape: str):
    connection = account_with(required)
    request_id = start_sso(client, EMAIL)
    saml = idp.response(sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, **SIGNATURES[shape])
    signed_in(post_acs(client, connection, saml))


def _tree(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


_RESPONSE = (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_r">'
    '{response_signature}<saml:Assertion ID="_a">{assertion_signature}</saml:Assertion></samlp:Response>'
)


def _signature(uri: str) -> str:
    return f'<ds:Signature><ds:SignedInfo><ds:Reference URI="{uri}"/></ds:SignedInfo></ds:Signature>'


@pytest.mark.parametrize(
    ("response_signature", "assertion_signature", "covered"),
    [
        (_signature("#_r"), "", True),
        ("", _signature("#_a"), True),
        (_signature(""), "", True),
        ("", "", False),
        # A signature that names some other element covers nothing we read.
        (_signature("#_elsewhere"), "", False),
        ("", _signature("#_r"), False),
    ],
)
def test_coverage_rule_on_the_tree(response_signature: str, assertion_signature: str, covered: bool) -> None:
    """The structural rule that runs after the library verified the signatures present."""
    tree = _tree(_RESPONSE.format(response_signature=response_signature, assertion_signature=assertion_signature))
    if covered:
        check_assertion_covered(tree)
    else:
        with pytest.raises(SignInError) as caught:
            check_assertion_covered(tree)
        assert caught.value.code == "SAML_UNSIGNED"


# --- an ambiguous email ---------------------------------------------------------------------------


def test_two_values_in_the_email_attribute_are_refused(client, idp, account_with, make_user):
    connection = account_with()
    make_user(connection.account, "agent@acme.example", "agent")
    request_id = start_sso(client, EMAIL)
    saml = idp.response(
        sp_values(connection).as_dict(),
        email=EMAIL,
        request_id=request_id,
        attributes={"email": [EMAIL, "agent@acme.example"]},
    )
    refused(post_acs(client, connection, saml), "SAML_EMAIL_AMBIGUOUS")


def test_the_email_attribute_twice_is_refused_even_with_one_value(client, idp, account_with):
    """Two ``Attribute Name="email"`` elements, each with the same address: still ambiguous."""
    connection = account_with()
    request_id = start_sso(client, EMAIL)
    spec = idp.spec(sp_values(connection).as_dict(), email=EMAIL, request_id=request_id)
    response = build_response(spec)
    statement = response.find("saml:Assertion/saml:AttributeStatement", NS)
    statement.append(etree.fromstring(etree.tostring(statement.find("saml:Attribute", NS))))
    assert len(statement.findall("saml:Attribute", NS)) == 2
    sign_element(response.find("saml:Assertion", NS), idp.key_pem, idp.cert_pem)
    saml = base64.b64encode(etree.tostring(response)).decode()
    refused(post_acs(client, connection, saml), "SAML_EMAIL_AMBIGUOUS")


def test_an_empty_second_value_is_not_ambiguous(client, idp, account_with):
    connection = account_with()
    request_id = start_sso(client, EMAIL)
    saml = idp.response(
        sp_values(connection).as_dict(), email=EMAIL, request_id=request_id, attributes={"email": [EMAIL, " "]}
    )
    signed_in(post_acs(client, connection, saml))
