"""End to end through the Flask test client: /sso/start, the test IdP, the ACS, /api/v1/me."""

from __future__ import annotations

from app.extensions import db
from app.models import AuditEvent, UserSession
from tests.helpers.signin import post_acs, post_sso_start, start_sso
from tests.saml_idp import authn_request_from_location


def test_sign_in_lands_in_portal_and_me_answers(client, acme, sign_in):
    response = sign_in(acme["connection"], "admin@acme.example")
    assert response.status_code == 302
    assert response.location == "/portal/"
    cookie = client.get_cookie("__Host-portal_session")
    assert cookie is not None and cookie.secure and cookie.http_only and cookie.same_site == "Lax"

    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json["email"] == "admin@acme.example"
    assert me.json["account"] == "acme"
    assert me.json["roles"] == ["admin"]
    assert me.json["app"] == "portal"

    home = client.get("/portal/")
    assert home.status_code == 200
    assert b"admin@acme.example" in home.data

    event = db.session.query(AuditEvent).filter_by(action="signin.sso").one()
    assert event.outcome == "success" and event.subject_email == "admin@acme.example"


def test_authn_request_is_well_formed(client, acme):
    response = post_sso_start(client, "ADMIN@acme.example ")
    request = authn_request_from_location(response.location)
    assert request.get("ID")[0].isalpha()  # Entra refuses IDs that start with a digit
    assert request.get("AssertionConsumerServiceURL") == acme["sp"]["acs_url"]
    assert request.get("ProtocolBinding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    issuer = request.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
    assert issuer.text == acme["sp"]["sp_entity_id"]
    policy = request.find("{urn:oasis:names:tc:SAML:2.0:protocol}NameIDPolicy")
    assert "transient" not in policy.get("Format")
    assert request.find("{urn:oasis:names:tc:SAML:2.0:protocol}RequestedAuthnContext") is None


def test_next_path_is_followed_after_sign_in(client, acme, idp):
    request_id = start_sso(client, "admin@acme.example", next_path="/portal/?tab=users")
    response = post_acs(
        client, acme["connection"], idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    )
    assert response.location == "/portal/?tab=users"


def test_me_without_session_is_401(client, acme):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_session_token_rotates_at_each_sign_in(client, acme, sign_in):
    sign_in(acme["connection"], "admin@acme.example")
    first = client.get_cookie("__Host-portal_session").value
    sign_in(acme["connection"], "admin@acme.example")
    second = client.get_cookie("__Host-portal_session").value
    assert first != second
    sessions = db.session.query(UserSession).order_by(UserSession.id).all()
    assert len(sessions) == 2
    assert sessions[0].revoked_reason == "replaced_at_signin"
    assert sessions[1].revoked_at is None
    # Only the hash is stored, never the token.
    assert all(first not in (s.token_hash or "") and second not in s.token_hash for s in sessions)
