"""Rules 1 and 2: the email is matched inside the connection's account; active users with a role only."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import AuditEvent, UserSession
from app.saml.urls import sp_values
from app.services.signin import email_from_assertion
from app.services.users import deactivate_user, normalise_email
from tests.helpers.signin import post_acs, start_sso


def refusal_code(response) -> str:
    assert response.status_code == 403, response.status_code
    return db.session.query(AuditEvent).filter_by(outcome="failure").order_by(AuditEvent.id.desc()).first().error_code


def test_email_is_trimmed_and_compared_case_insensitively(client, acme, idp):
    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(acme["sp"], email="  Admin@ACME.Example ", request_id=request_id)
    assert post_acs(client, acme["connection"], saml).status_code == 302


def test_unknown_user_is_refused(client, acme, idp):
    request_id = start_sso(client, "admin@acme.example")
    response = post_acs(
        client, acme["connection"], idp.response(acme["sp"], email="nobody@acme.example", request_id=request_id)
    )
    assert refusal_code(response) == "USER_NOT_FOUND"
    assert b"USER_NOT_FOUND" in response.data
    assert db.session.query(UserSession).count() == 0


def test_idp_of_one_account_never_signs_in_a_user_of_another(
    client, acme, make_account, make_connection, make_user, idp
):
    other = make_account("globex", "Globex")
    globex_connection = make_connection(other, allow_idp_initiated=True)
    # The Globex IdP vouches for Acme's admin: refused, whatever the IdP says.
    saml = idp.response(sp_values(globex_connection).as_dict(), email="admin@acme.example", request_id=None)
    response = post_acs(client, globex_connection, saml)
    assert refusal_code(response) == "USER_NOT_FOUND"
    event = db.session.query(AuditEvent).filter_by(error_code="USER_NOT_FOUND").one()
    assert event.account_id == other.id and event.subject_email == "admin@acme.example"


@pytest.mark.parametrize(
    "lookalike",
    [
        "adm\u0131n@acme.example",  # dotless i
        "\u0430dmin@acme.example",  # Cyrillic a
        "admin@acme.exampl\u0435",  # Cyrillic e
        "ADMIN@ACME.EXAMPL\u0130".lower(),
    ],
)
def test_lookalike_addresses_never_match(client, acme, idp, lookalike):
    request_id = start_sso(client, "admin@acme.example")
    response = post_acs(client, acme["connection"], idp.response(acme["sp"], email=lookalike, request_id=request_id))
    assert refusal_code(response) == "USER_NOT_FOUND"


def test_kelvin_sign_is_not_folded_into_k():
    assert normalise_email("\u212aate@acme.example") != "kate@acme.example"
    assert normalise_email(" KATE@Acme.Example ") == "kate@acme.example"


def test_deactivated_user_is_refused(client, acme, idp):
    deactivate_user(acme["admin"])
    db.session.commit()
    request_id = start_sso(client, "agent@acme.example")
    response = post_acs(
        client, acme["connection"], idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    )
    assert refusal_code(response) == "USER_DEACTIVATED"


def test_user_without_a_portal_role_is_refused(client, acme, sign_in):
    response = sign_in(acme["connection"], "agent@acme.example")
    assert refusal_code(response) == "NO_ROLE_FOR_APP"
    assert db.session.query(UserSession).count() == 0


def test_email_attribute_wins_over_the_name_id(client, acme, idp):
    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(
        acme["sp"], email="agent@acme.example", request_id=request_id, attributes={"email": ["admin@acme.example"]}
    )
    assert post_acs(client, acme["connection"], saml).status_code == 302
    assert client.get("/api/v1/me").json["email"] == "admin@acme.example"


def test_connection_can_name_its_email_attribute(client, make_account, make_connection, make_user, idp):
    account = make_account()
    connection = make_connection(account, email_attributes=["mailPrimaryAddress"])
    make_user(account, "admin@acme.example")
    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(
        sp_values(connection).as_dict(),
        email="someone-else@acme.example",
        request_id=request_id,
        attributes={"mailPrimaryAddress": ["admin@acme.example"], "email": ["someone-else@acme.example"]},
    )
    assert post_acs(client, connection, saml).status_code == 302


def test_name_id_is_the_fallback_when_no_attribute_carries_the_email(client, acme, idp):
    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(acme["sp"], email="admin@acme.example", request_id=request_id, attributes={})
    assert post_acs(client, acme["connection"], saml).status_code == 302


def test_persistent_name_id_is_never_taken_for_an_email(client, acme, idp):
    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(
        acme["sp"],
        email="admin@acme.example",
        request_id=request_id,
        attributes={},
        name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    )
    response = post_acs(client, acme["connection"], saml)
    assert response.status_code == 400
    assert b"SAML_NO_EMAIL" in response.data


def test_email_from_assertion_prefers_attributes_in_plugin_order(acme):
    from app.saml.core import VerifiedAssertion

    entra = acme["connection"]
    entra.plugin_key = "entra"
    claim = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    verified = VerifiedAssertion(
        connection=entra,
        assertion_id="_a",
        issuer="i",
        name_id="upn@acme.example",
        name_id_format=None,
        session_index=None,
        attributes={claim: ["Mail@Acme.Example"]},
        audiences=[],
        signed_elements=["assertion"],
        signature_algorithms=["RSA-SHA256"],
        not_on_or_after=None,
    )
    assert email_from_assertion(verified) == "mail@acme.example"
