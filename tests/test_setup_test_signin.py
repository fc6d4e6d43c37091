"""The wizard's test sign-in, through the real ACS and real signed responses: what arrived, whether
it would let the user in, plain-language failures with the plugin's hint, no session, draft ->
tested; then enabling, real sign-ins, the diagnostics list and "SSO required"."""

from __future__ import annotations

import datetime as dt
import html

import pytest

from app.extensions import db
from app.models import Account, AuditEvent, IdpConnection, UserSession
from app.models.idp_connection import DRAFT, ENABLED, TESTED
from app.saml.urls import sp_values
from tests.helpers.audit import audit_events
from tests.helpers.signin import post_acs, start_test_sign_in
from tests.helpers.web import log_in
from tests.saml_idp import authn_request_from_location


@pytest.fixture
def okta(make_account, make_user, make_connection, client) -> dict:
    """Acme with an admin (signed in), a user, and a draft Okta connection whose IdP side is imported."""
    account = make_account("acme", "Acme Corp")
    admin = make_user(account, "admin@acme.example", "admin", password="a long enough password")
    user = make_user(account, "user@acme.example", "admin,agent")
    agent = make_user(account, "agent@acme.example", "agent")
    connection = make_connection(account, "okta", status=DRAFT)
    log_in(client, admin)
    return {
        "account": account,
        "admin": admin,
        "user": user,
        "agent": agent,
        "connection": connection,
        "sp": sp_values(connection).as_dict(),
    }


def _fresh(connection: IdpConnection) -> IdpConnection:
    db.session.expire_all()
    return db.session.get(IdpConnection, connection.id)


def _okta_response(idp, sp: dict, request_id: str, **kwargs) -> str:
    """Okta signs both the response and the assertion by default."""
    kwargs.setdefault("sign_response", True)
    return idp.response(sp, request_id=request_id, **kwargs)


def test_test_sign_in_shows_what_arrived_creates_no_session_and_marks_tested(client, csrf_token, okta, idp):
    connection = okta["connection"]
    admin_cookie = client.get_cookie("__Host-portal_session").value
    sessions_before = db.session.query(UserSession).count()

    response = client.post(f"/setup/connections/{connection.id}/test", data={"csrf_token": csrf_token()})
    assert response.status_code == 302
    authn_request = authn_request_from_location(response.location)
    assert authn_request.get("ForceAuthn") == "true"  # the IdP asks again: the admin may test as someone else

    saml = _okta_response(
        idp,
        okta["sp"],
        authn_request.get("ID"),
        email="user@acme.example",
        attributes={"email": ["user@acme.example"], "firstName": ["Uma"]},
    )
    response = post_acs(client, connection, saml)
    assert response.status_code == 302
    [event] = audit_events("connection.test", connection)
    assert response.location == f"/setup/connections/{connection.id}/tests/{event.id}"

    # No session was created and the admin's own session is untouched.
    assert db.session.query(UserSession).count() == sessions_before
    assert client.get_cookie("__Host-portal_session").value == admin_cookie
    assert _fresh(connection).status == TESTED

    page = client.get(response.location)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-outcome="success"' in text
    assert 'data-testid="test-nameid">user@acme.example<' in text
    assert "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" in text
    assert "firstName" in text and "Uma" in text
    assert f'data-testid="test-issuer">{idp.entity_id}<' in text
    assert okta["sp"]["sp_entity_id"] in text  # the audience
    signed = text[text.index('data-testid="test-signed"') :][:300]
    assert "the response (RSA-SHA256)" in signed and "the assertion (RSA-SHA256)" in signed
    assert 'data-testid="test-roles">admin, agent<' in text
    assert 'data-testid="test-would-sign-in">Yes<' in text
    assert 'data-testid="enable"' in text


def test_user_who_would_be_refused_still_proves_the_saml_setup(client, csrf_token, okta, idp):
    connection = okta["connection"]
    request_id = start_test_sign_in(client, connection, csrf_token())
    response = post_acs(client, connection, _okta_response(idp, okta["sp"], request_id, email="stranger@acme.example"))
    text = client.get(response.location).get_data(as_text=True)
    assert 'data-outcome="user-refused"' in text
    assert 'data-testid="test-error-code">USER_NOT_FOUND<' in text
    assert "No user of Acme Corp has this email" in text
    # Okta's own hint, with this account's name filled in.
    assert "Okta sent an identifier no user of Acme Corp has" in html.unescape(text)
    assert _fresh(connection).status == TESTED
    earlier = client.get(f"/setup/connections/{connection.id}/test").get_data(as_text=True)
    assert 'data-testid="earlier-tests"' in earlier and "USER_NOT_FOUND" in earlier


def test_agent_test_user_is_told_about_roles(client, csrf_token, okta, idp):
    connection = okta["connection"]
    request_id = start_test_sign_in(client, connection, csrf_token())
    text = client.get(
        post_acs(client, connection, _okta_response(idp, okta["sp"], request_id, email="agent@acme.example")).location
    ).get_data(as_text=True)
    assert "NO_ROLE_FOR_APP" in text and 'data-testid="test-roles">agent<' in text
    assert 'data-testid="test-would-sign-in">No<' in text


@pytest.mark.parametrize(
    ("overrides", "code", "hint_fragment"),
    [
        (
            {"audience": "https://wrong.example/sp"},
            "SAML_AUDIENCE_MISMATCH",
            "set Audience URI (SP Entity ID) to {sp_entity_id} exactly",
        ),
        (
            {"sign_response": False, "sign_assertion": False},
            "SAML_UNSIGNED",
            "set Response and Assertion Signature to Signed",
        ),
        (
            {
                "email": None,
                "name_id": "00u1abcd",
                "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
            },
            "SAML_NO_EMAIL",
            "Attribute Statement email = user.email",
        ),
        # Refused before any signature work, and still reported on the test page.
        ({"algorithm": "sha1"}, "SAML_WEAK_ALGORITHM", "SHA"),
    ],
)
def test_failed_test_explains_in_plain_words_with_the_plugins_hint(
    client, csrf_token, okta, idp, overrides, code, hint_fragment
):
    connection = okta["connection"]
    request_id = start_test_sign_in(client, connection, csrf_token())
    overrides = dict(overrides)
    email = overrides.pop("email", "user@acme.example")
    response = post_acs(client, connection, _okta_response(idp, okta["sp"], request_id, email=email, **overrides))
    assert response.status_code == 302 and "/tests/" in response.location
    text = html.unescape(client.get(response.location).get_data(as_text=True))
    assert f'data-testid="test-error-code">{code}<' in text
    assert 'data-testid="test-hint"' in text
    assert hint_fragment.format(**okta["sp"]) in text
    assert _fresh(connection).status == DRAFT
    assert db.session.query(UserSession).count() == 1  # the admin's own


def test_test_needs_the_idp_side_first(client, csrf_token, okta):
    from app.services.connections import create_connection

    bare = create_connection(okta["account"], "google")
    db.session.commit()
    response = client.post(f"/setup/connections/{bare.id}/test", data={"csrf_token": csrf_token()})
    assert response.status_code == 302 and response.location.endswith(f"/setup/connections/{bare.id}/import")


def test_result_pages_are_private_to_the_connection(
    client, csrf_token, okta, idp, make_account, make_user, make_connection
):
    connection = okta["connection"]
    request_id = start_test_sign_in(client, connection, csrf_token())
    result = post_acs(
        client, connection, _okta_response(idp, okta["sp"], request_id, email="user@acme.example")
    ).location
    event_id = int(result.rsplit("/", 1)[1])
    other_account = make_account("globex", "Globex")
    other_connection = make_connection(other_account, "okta")
    # Another connection's URL, an event that is no test, an unknown event: 404.
    assert client.get(f"/setup/connections/{other_connection.id}/tests/{event_id}").status_code == 404
    sign_in_event = audit_events("connection.create", connection)[0]
    assert client.get(f"/setup/connections/{connection.id}/tests/{sign_in_event.id}").status_code == 404
    assert client.get(f"/setup/connections/{connection.id}/tests/999999").status_code == 404
    log_in(client, make_user(other_account, "admin@globex.example", "admin"))
    assert client.get(result).status_code == 404


def test_from_test_to_enabled_to_sign_in_to_sso_required(client, csrf_token, okta, idp, sign_in):
    connection, account = okta["connection"], okta["account"]
    request_id = start_test_sign_in(client, connection, csrf_token())
    post_acs(client, connection, _okta_response(idp, okta["sp"], request_id, email="user@acme.example"))

    # Enable from the tested state.
    response = client.post(f"/setup/connections/{connection.id}/enable", data={"csrf_token": csrf_token()})
    assert response.status_code == 302
    assert _fresh(connection).status == ENABLED
    assert "is enabled" in client.get(response.location).get_data(as_text=True)

    # SSO required can now be switched on.
    response = client.post("/setup/accounts/acme/sso-required", data={"csrf_token": csrf_token(), "required": "on"})
    db.session.expire_all()
    assert db.session.get(Account, account.id).sso_required is True
    [event] = audit_events("account.sso_required")
    assert event.details == {"sso_required": True, "password_sessions_revoked": 1}  # the admin's own

    # A user of the account signs in through SSO (a fresh browser).
    client.delete_cookie("__Host-portal_session")
    assert sign_in(connection, "user@acme.example", sign_response=True).location == "/portal/"
    assert client.get("/api/v1/me").json["email"] == "user@acme.example"

    # Passwords are refused now.
    client.delete_cookie("__Host-portal_session")
    refused = client.post(
        "/login/password",
        data={"email": "admin@acme.example", "password": "a long enough password", "csrf_token": csrf_token()},
    )
    assert refused.status_code == 401 and "INVALID_CREDENTIALS" in refused.get_data(as_text=True)


def test_diagnostics_list_sign_ins_through_the_connection(client, csrf_token, okta, idp, sign_in, make_connection):
    connection = okta["connection"]
    connection.status = ENABLED
    db.session.commit()
    other = make_connection(okta["account"], "generic", status=DRAFT)
    assert sign_in(connection, "user@acme.example", sign_response=True).status_code == 302
    sign_in(connection, "agent@acme.example", sign_response=True)  # refused: no portal role
    post_acs(client, other, "bm90IHhtbA==")  # junk through the other connection
    log_in(client, okta["admin"])  # the sign-ins above replaced this browser's session

    text = client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True)
    rows = text[text.index('data-testid="diagnostics"') :]
    assert rows.count('data-testid="attempt"') == 2
    assert "user@acme.example" in rows and "agent@acme.example" in rows
    assert 'data-testid="attempt-code">NO_ROLE_FOR_APP<' in rows
    assert 'data-outcome="success"' in rows
    other_page = client.get(f"/setup/connections/{other.id}/").get_data(as_text=True)
    assert "SAML_" in other_page and "agent@acme.example" not in other_page


def test_enabling_for_sso_required_account_needs_a_fully_successful_test(
    client, csrf_token, okta, idp, make_connection
):
    account, connection = okta["account"], okta["connection"]
    current = make_connection(account, "generic", status=ENABLED)
    account.sso_required = True
    db.session.commit()
    request_id = start_test_sign_in(client, connection, csrf_token())
    post_acs(client, connection, _okta_response(idp, okta["sp"], request_id, email="stranger@acme.example"))
    assert _fresh(connection).status == TESTED
    client.post(f"/setup/connections/{connection.id}/enable", data={"csrf_token": csrf_token()})
    assert _fresh(connection).status == TESTED and _fresh(current).status == ENABLED

    request_id = start_test_sign_in(client, connection, csrf_token())
    post_acs(client, connection, _okta_response(idp, okta["sp"], request_id, email="user@acme.example"))
    client.post(f"/setup/connections/{connection.id}/enable", data={"csrf_token": csrf_token()})
    assert _fresh(connection).status == ENABLED and _fresh(current).status == DRAFT


def test_events_older_than_the_connection_are_not_its_own(client, okta):
    """SQLite can give a deleted connection's id to a new one; its old events must not show up."""
    connection = okta["connection"]
    db.session.add(
        AuditEvent(
            action="signin.sso",
            outcome="failure",
            error_code="SAML_REPLAY",
            connection_id=connection.id,
            subject_email="someone@elsewhere.example",
            created_at=connection.created_at - dt.timedelta(days=1),
            details={},
        )
    )
    db.session.commit()
    text = client.get(f"/setup/connections/{connection.id}/").get_data(as_text=True)
    assert "someone@elsewhere.example" not in text and 'data-testid="no-attempts"' in text
