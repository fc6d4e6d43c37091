"""Desktop and mobile app sign-in (RFC 8252 + PKCE) through the Flask test client and the test IdP:
authorize, the ACS's code, the token exchange, bearer sessions, and every refusal."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import AppAuthorizationCode, AppAuthorizationRequest, AuditEvent, PendingRequest, UserSession
from app.saml.urls import sp_values
from app.services.native_apps import s256
from app.timeutil import utcnow
from tests.helpers.signin import post_acs
from tests.helpers.web import another_browser, bearer, csrf_from
from tests.saml_idp import IDP_SSO_URL, authn_request_from_location

DESKTOP_URI = "http://127.0.0.1:53682/callback"
MOBILE_URI = "com.example.phone:/oauth2redirect"


def challenge_for(verifier: str) -> str:
    """RFC 7636 S256, computed here independently of the code under test."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def authorize(client, verifier: str | None = None, **overrides: str | None):
    """Open /sso/app/authorize with valid parameters, except ``overrides`` (None drops one), as the
    app does; with a ``login_hint``, press "Continue" on the page, as the person does."""
    params: dict[str, str | None] = {
        "app": "desktop",
        "redirect_uri": DESKTOP_URI,
        "code_challenge": challenge_for(verifier or new_verifier()),
        "code_challenge_method": "S256",
        "state": "st-123",
        "login_hint": "admin@acme.example",
    }
    params.update(overrides)
    query = {k: v for k, v in params.items() if v is not None}
    page = client.get("/sso/app/authorize", query_string=query)
    if page.status_code != 200 or params["login_hint"] is None:
        return page
    assert 'data-testid="app-email-form"' in page.get_data(as_text=True)
    return client.post("/sso/app/authorize", data={**query, "csrf_token": csrf_from(client, "/login")})


def app_sign_in(
    client,
    idp,
    connection,
    email: str = "admin@acme.example",
    *,
    verifier: str | None = None,
    saml_email: str | None = None,
    **overrides: str | None,
):
    """Authorize, then answer the AuthnRequest with a signed response; return the ACS response."""
    started = authorize(client, verifier, login_hint=email, **overrides)
    assert started.status_code == 302, started.get_data(as_text=True)
    assert started.location.startswith(IDP_SSO_URL)
    request_id = authn_request_from_location(started.location).get("ID")
    saml = idp.response(sp_values(connection).as_dict(), email=saml_email or email, request_id=request_id)
    return post_acs(client, connection, saml)


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def get_code(client, idp, connection, verifier: str, email: str = "admin@acme.example", **overrides: str | None) -> str:
    response = app_sign_in(client, idp, connection, email, verifier=verifier, **overrides)
    assert response.status_code == 302, response.get_data(as_text=True)
    return query_of(response.location)["code"]


def exchange(client, code: str, verifier: str, redirect_uri: str = DESKTOP_URI, **extra: str):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        **extra,
    }
    return client.post("/api/v1/token", data=data)


def sign_in_app(client, idp, connection, email: str = "admin@acme.example", app: str = "desktop") -> dict:
    """The whole flow; return the token response's JSON."""
    verifier = new_verifier()
    uri = DESKTOP_URI if app == "desktop" else MOBILE_URI
    code = get_code(client, idp, connection, verifier, email, app=app, redirect_uri=uri)
    response = exchange(client, code, verifier, uri)
    assert response.status_code == 200, response.json
    return response.json


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def assert_token_error(response, error: str, code: str, status: int = 400) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["error"] == error
    assert response.json["code"] == code
    assert response.json["error_description"]


def assert_invalid_token(response) -> None:
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


# --- the flow that works ---------------------------------------------------------------------


def test_rfc7636_test_vector() -> None:
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_desktop_app_signs_in_and_uses_its_token(client, acme, idp):
    verifier = new_verifier()
    response = app_sign_in(client, idp, acme["connection"], verifier=verifier)
    assert response.status_code == 302
    assert response.location.startswith(DESKTOP_URI + "?")
    answer = query_of(response.location)
    assert answer["state"] == "st-123"
    assert set(answer) == {"code", "state"}
    # The browser gets no portal session from an app sign-in.
    assert client.get_cookie("__Host-portal_session") is None

    token = exchange(client, answer["code"], verifier)
    assert token.status_code == 200, token.json
    body = token.json
    assert body["token_type"] == "Bearer"
    assert body["app"] == "desktop"
    assert body["user"] == {"email": "admin@acme.example", "name": "", "account": "acme", "roles": ["admin"]}
    assert 21 * 86400 - 60 < body["expires_in"] <= 21 * 86400
    assert body["expires_at"].endswith("Z")
    assert token.headers["Cache-Control"] == "no-store"

    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json["email"] == "admin@acme.example" and me.json["app"] == "desktop"

    session = db.session.scalars(select(UserSession)).one()
    assert session.app == "desktop" and session.connection_id == acme["connection"].id
    assert session.saml_name_id == "admin@acme.example"
    assert session.token_hash != body["access_token"]  # only the hash is kept
    stored = db.session.scalars(select(AppAuthorizationCode)).one()
    assert stored.used_at is not None and stored.session_id == session.id
    assert answer["code"] not in stored.code_hash
    assert count(AppAuthorizationRequest) == 0  # used up
    actions = [(e.action, e.outcome) for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert ("signin.sso_start", "success") in actions
    assert ("signin.sso", "success") in actions
    assert ("signin.app_token", "success") in actions


def test_state_with_reserved_characters_comes_back_unchanged(client, acme, idp):
    state = "a b&c=d/?%+#x"
    response = app_sign_in(client, idp, acme["connection"], state=state)
    assert query_of(response.location)["state"] == state


def test_mobile_app_uses_its_private_scheme(client, acme, idp):
    verifier = new_verifier()
    response = app_sign_in(
        client, idp, acme["connection"], "agent@acme.example", verifier=verifier, app="mobile", redirect_uri=MOBILE_URI
    )
    assert response.location.startswith(MOBILE_URI + "?code=")
    token = exchange(client, query_of(response.location)["code"], verifier, MOBILE_URI, client_id="mobile")
    assert token.status_code == 200
    assert token.json["app"] == "mobile" and token.json["user"]["roles"] == ["agent"]


def test_ipv6_loopback_and_an_existing_query_are_kept(client, acme, idp):
    uri = "http://[::1]:8123/cb?session=7"
    verifier = new_verifier()
    response = app_sign_in(client, idp, acme["connection"], verifier=verifier, redirect_uri=uri)
    assert response.location.startswith("http://[::1]:8123/cb?session=7&code=")
    token = exchange(client, query_of(response.location)["code"], verifier, uri)
    assert token.status_code == 200


def test_without_login_hint_the_browser_asks_for_the_email(client, acme, idp):
    verifier = new_verifier()
    page = authorize(client, verifier, login_hint=None)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="app-email-form"' in html
    assert f'name="redirect_uri" value="{DESKTOP_URI}"' in html
    assert f'value="{challenge_for(verifier)}"' in html
    assert count(AppAuthorizationRequest) == 0 and count(PendingRequest) == 0
    # The form sends the same parameters back with the email.
    started = authorize(client, verifier, login_hint="admin@acme.example")
    assert started.status_code == 302 and started.location.startswith(IDP_SSO_URL)


def test_unknown_email_is_asked_again(client, acme):
    page = authorize(client, login_hint="nobody@elsewhere.example")
    assert page.status_code == 404
    html = page.get_data(as_text=True)
    assert 'data-testid="app-email-form"' in html and "SSO_NOT_CONFIGURED" in html
    assert count(AppAuthorizationRequest) == 0 and count(PendingRequest) == 0


def test_me_slides_the_app_session(client, acme, idp):
    token = sign_in_app(client, idp, acme["connection"])["access_token"]
    ten_days_ago = utcnow() - dt.timedelta(days=10)
    db.session.execute(
        update(UserSession).values(last_used_at=ten_days_ago, expires_at=ten_days_ago + dt.timedelta(days=21))
    )
    db.session.commit()
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    session = db.session.scalars(select(UserSession)).one()
    db.session.refresh(session)
    assert session.expires_at > utcnow() + dt.timedelta(days=20, hours=23)


def test_logout_revokes_this_token_only(client, acme, idp):
    first = sign_in_app(client, idp, acme["connection"])["access_token"]
    second = sign_in_app(client, idp, acme["connection"], app="mobile")["access_token"]
    response = client.post("/api/v1/logout", headers=bearer(first))
    assert response.status_code == 204
    assert_invalid_token(client.get("/api/v1/me", headers=bearer(first)))
    assert_invalid_token(client.post("/api/v1/logout", headers=bearer(first)))
    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 200
    revoked = db.session.scalars(select(UserSession).where(UserSession.app == "desktop")).one()
    assert revoked.revoked_reason == "logout"
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "session.revoke")).one().details == {
        "session_id": revoked.id,
        "reason": "logout",
        "app": "desktop",
    }


def test_expired_app_session_is_401(client, acme, idp):
    token = sign_in_app(client, idp, acme["connection"])["access_token"]
    db.session.execute(update(UserSession).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.session.commit()
    assert_invalid_token(client.get("/api/v1/me", headers=bearer(token)))


# --- revocation: the app's next call is refused --------------------------------------------------


def test_mobile_token_after_the_user_is_deactivated(client, runner, acme, idp):
    token = sign_in_app(client, idp, acme["connection"], "agent@acme.example", app="mobile")["access_token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    result = runner.invoke(args=["users", "deactivate", "agent@acme.example", "--json"])
    assert result.exit_code == 0, result.output
    assert_invalid_token(client.get("/api/v1/me", headers=bearer(token)))


def test_token_after_the_user_is_deleted(client, runner, acme, idp):
    token = sign_in_app(client, idp, acme["connection"], "agent@acme.example")["access_token"]
    result = runner.invoke(args=["users", "delete", "agent@acme.example", "--json"])
    assert result.exit_code == 0, result.output
    assert_invalid_token(client.get("/api/v1/me", headers=bearer(token)))


@pytest.mark.parametrize("target", ["id", "user"])
def test_token_after_the_session_is_revoked_from_the_cli(client, runner, acme, idp, target):
    token = sign_in_app(client, idp, acme["connection"])["access_token"]
    session = db.session.scalars(select(UserSession)).one()
    args = ["--id", str(session.id)] if target == "id" else ["--user", "admin@acme.example"]
    result = runner.invoke(args=["sessions", "revoke", *args, "--json"])
    assert result.exit_code == 0, result.output
    assert_invalid_token(client.get("/api/v1/me", headers=bearer(token)))


# --- refusals at the ACS go back to the app ------------------------------------------------------


def _refusal(response, code: str) -> None:
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.location.startswith(DESKTOP_URI + "?")
    assert query_of(response.location) == {"error": "access_denied", "error_description": code, "state": "st-123"}
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "signin.sso")).one()
    assert event.outcome == "failure" and event.error_code == code
    assert count(AppAuthorizationCode) == 0 and count(UserSession) == 0
    assert count(AppAuthorizationRequest) == 0  # used up


def test_user_without_a_role_for_the_app_is_refused(client, acme, idp, make_user):
    make_user(acme["account"], "staff@acme.example", "support")
    response = app_sign_in(client, idp, acme["connection"], "staff@acme.example")
    _refusal(response, "NO_ROLE_FOR_APP")


def test_unknown_user_at_the_idp_is_refused(client, acme, idp):
    response = app_sign_in(client, idp, acme["connection"], saml_email="ghost@acme.example")
    _refusal(response, "USER_NOT_FOUND")


def test_user_deactivated_during_sign_in_is_refused(client, runner, acme, idp):
    started = authorize(client, login_hint="agent@acme.example")
    runner.invoke(args=["users", "deactivate", "agent@acme.example"])
    request_id = authn_request_from_location(started.location).get("ID")
    saml = idp.response(acme["sp"], email="agent@acme.example", request_id=request_id)
    _refusal(post_acs(client, acme["connection"], saml), "USER_DEACTIVATED")


def test_saml_failure_of_an_app_sign_in_goes_back_to_the_app(client, acme, idp):
    started = authorize(client)
    request_id = authn_request_from_location(started.location).get("ID")
    saml = idp.response(acme["sp"], email="admin@acme.example", request_id=request_id, audience="https://other.example")
    _refusal(post_acs(client, acme["connection"], saml), "SAML_AUDIENCE_MISMATCH")


def test_expired_authorization_request_shows_the_error_page(client, acme, idp):
    started = authorize(client)
    db.session.execute(update(AppAuthorizationRequest).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.session.commit()
    request_id = authn_request_from_location(started.location).get("ID")
    response = post_acs(
        client, acme["connection"], idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    )
    assert response.status_code == 400 and response.location is None
    assert b"APP_AUTHORIZATION_EXPIRED" in response.data
    assert count(AppAuthorizationCode) == 0 and count(UserSession) == 0


def test_response_in_another_browser_never_reaches_the_app(client, app, acme, idp):
    started = authorize(client)
    request_id = authn_request_from_location(started.location).get("ID")
    other_browser = another_browser(app)
    saml = idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    response = post_acs(other_browser, acme["connection"], saml)
    assert response.status_code == 400 and response.location is None
    assert b"SAML_IN_RESPONSE_TO_MISMATCH" in response.data


# --- refusals at the token endpoint --------------------------------------------------------------


def test_code_replay_is_refused_and_ends_the_session_it_gave(client, acme, idp):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier)
    first = exchange(client, code, verifier)
    assert first.status_code == 200
    assert_token_error(exchange(client, code, verifier), "invalid_grant", "CODE_USED")
    assert_invalid_token(client.get("/api/v1/me", headers=bearer(first.json["access_token"])))
    session = db.session.scalars(select(UserSession)).one()
    assert session.revoked_reason == "code_replayed"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.error_code == "CODE_USED")).one()
    assert event.details["session_revoked"] == "True" and event.subject_email == "admin@acme.example"


def test_wrong_verifier_is_refused_and_spends_the_code(client, acme, idp):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier)
    assert_token_error(exchange(client, code, new_verifier()), "invalid_grant", "PKCE_VERIFIER_MISMATCH")
    assert_token_error(exchange(client, code, verifier), "invalid_grant", "CODE_USED")
    assert count(UserSession) == 0


def test_challenge_itself_is_not_a_verifier(client, acme, idp):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier)
    assert_token_error(exchange(client, code, challenge_for(verifier)), "invalid_grant", "PKCE_VERIFIER_MISMATCH")


@pytest.mark.parametrize(
    "other_uri",
    [
        "http://127.0.0.1:53683/callback",
        "http://127.0.0.1:53682/callback/",
        "http://127.0.0.1:53682/other",
        "http://[::1]:53682/callback",
        "http://127.0.0.1:53682/callback?x=1",
    ],
)
def test_changed_redirect_uri_is_refused(client, acme, idp, other_uri):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier)
    assert_token_error(exchange(client, code, verifier, other_uri), "invalid_grant", "REDIRECT_URI_MISMATCH")
    assert count(UserSession) == 0


def test_expired_code_is_refused(client, acme, idp):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier)
    stored = db.session.scalars(select(AppAuthorizationCode)).one()
    assert dt.timedelta(seconds=59) <= stored.expires_at - stored.created_at <= dt.timedelta(seconds=60)
    db.session.execute(update(AppAuthorizationCode).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.session.commit()
    assert_token_error(exchange(client, code, verifier), "invalid_grant", "CODE_EXPIRED")
    assert count(UserSession) == 0


def test_code_of_another_app_is_refused(client, acme, idp):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier)
    assert_token_error(exchange(client, code, verifier, client_id="mobile"), "invalid_grant", "CODE_APP_MISMATCH")
    assert_token_error(exchange(client, "x" * 43, verifier, client_id="portal"), "invalid_client", "CLIENT_UNKNOWN")


def test_user_deactivated_before_the_exchange_is_refused(client, runner, acme, idp):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier, "agent@acme.example")
    runner.invoke(args=["users", "deactivate", "agent@acme.example"])
    assert_token_error(exchange(client, code, verifier), "invalid_grant", "USER_DEACTIVATED")
    assert count(UserSession) == 0


def test_unknown_code_is_refused(client, acme):
    assert_token_error(exchange(client, secrets.token_urlsafe(32), new_verifier()), "invalid_grant", "CODE_INVALID")
    assert_token_error(exchange(client, "é" * 500, new_verifier()), "invalid_grant", "CODE_INVALID")


@pytest.mark.postgres
def test_concurrent_exchanges_give_one_session(app, client, acme, idp):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier)
    statuses: list[int] = []

    def attempt() -> None:
        with app.app_context():
            other = another_browser(app)
            statuses.append(exchange(other, code, verifier).status_code)
            db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 400, 400, 400]
    # The replays revoked the session the winner got: a stolen code never leaves a usable token.
    session = db.session.scalars(select(UserSession)).one()
    assert session.revoked_reason == "code_replayed"


# --- bad input: a clear error, nothing created, never a 500 --------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"app": None}, "APP_REQUEST_INVALID"),
        ({"app": "portal"}, "UNKNOWN_APP"),
        ({"app": "fax"}, "UNKNOWN_APP"),
        ({"redirect_uri": None}, "APP_REQUEST_INVALID"),
        ({"state": None}, "APP_REQUEST_INVALID"),
        ({"state": ""}, "APP_REQUEST_INVALID"),
        ({"state": "s" * 513}, "APP_REQUEST_INVALID"),
        ({"state": "line\nbreak"}, "APP_REQUEST_INVALID"),
        ({"code_challenge": None}, "APP_PKCE_REQUIRED"),
        ({"code_challenge_method": None}, "APP_PKCE_REQUIRED"),
        ({"code_challenge_method": "plain"}, "APP_PKCE_REQUIRED"),
        ({"code_challenge_method": "s256"}, "APP_PKCE_REQUIRED"),
        ({"code_challenge": "short"}, "APP_REQUEST_INVALID"),
        ({"code_challenge": "a" * 129}, "APP_REQUEST_INVALID"),
        ({"code_challenge": "=" * 43}, "APP_REQUEST_INVALID"),
        ({"response_type": "token"}, "APP_REQUEST_INVALID"),
        ({"login_hint": "a" * 330 + "@acme.example"}, "APP_REQUEST_INVALID"),
        ({"redirect_uri": "http://127.0.0.1:53682/callback#frag"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1:53682/callback#"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://user@127.0.0.1:53682/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1:53682@evil.example/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://localhost:53682/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "https://127.0.0.1:53682/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.2:53682/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1.evil.example:53682/"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://evil.example/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1:0/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1:70000/callback"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1:53682/call back"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1:53682/\\evil"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "http://127.0.0.1:53682/" + "a" * 2000}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": "javascript:alert(1)"}, "APP_REDIRECT_URI_INVALID"),
        ({"redirect_uri": MOBILE_URI}, "APP_REDIRECT_URI_INVALID"),
        ({"app": "mobile"}, "APP_REDIRECT_URI_INVALID"),
        ({"app": "mobile", "redirect_uri": "com.evil.phone:/oauth2redirect"}, "APP_REDIRECT_URI_INVALID"),
        ({"app": "mobile", "redirect_uri": MOBILE_URI + "/x"}, "APP_REDIRECT_URI_INVALID"),
        ({"app": "mobile", "redirect_uri": MOBILE_URI + "#"}, "APP_REDIRECT_URI_INVALID"),
    ],
)
def test_bad_authorize_request_shows_an_error_page(client, acme, overrides, code):
    response = authorize(client, **overrides)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.location is None  # never a redirect to the app or the IdP
    assert f'data-testid="error-code">{code}<' in response.get_data(as_text=True)
    assert count(AppAuthorizationRequest) == 0 and count(PendingRequest) == 0
    assert client.get_cookie("__Host-sso_binding") is None
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "signin.sso_start")).one()
    assert event.outcome == "failure" and event.error_code == code


@pytest.mark.parametrize(
    "name", ["app", "redirect_uri", "code_challenge", "code_challenge_method", "state", "login_hint", "response_type"]
)
def test_duplicated_authorize_parameter_is_refused(client, acme, name):
    verifier = new_verifier()
    good = {
        "app": "desktop",
        "redirect_uri": DESKTOP_URI,
        "code_challenge": challenge_for(verifier),
        "code_challenge_method": "S256",
        "state": "s",
        "login_hint": "admin@acme.example",
        "response_type": "code",
    }
    query = [*good.items(), (name, good[name])]
    response = client.get("/sso/app/authorize", query_string=query)
    assert response.status_code == 400
    assert b"APP_REQUEST_INVALID" in response.data
    assert count(AppAuthorizationRequest) == 0 and count(PendingRequest) == 0


def _valid_form() -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": "c" * 43,
        "redirect_uri": DESKTOP_URI,
        "code_verifier": "v" * 43,
    }


@pytest.mark.parametrize("missing", ["grant_type", "code", "redirect_uri", "code_verifier"])
def test_token_request_with_a_missing_parameter(client, acme, missing):
    form = _valid_form()
    del form[missing]
    assert_token_error(client.post("/api/v1/token", data=form), "invalid_request", "TOKEN_REQUEST_INVALID")


@pytest.mark.parametrize("name", ["grant_type", "code", "redirect_uri", "code_verifier", "client_id"])
def test_token_request_with_a_duplicated_parameter(client, acme, idp, name):
    verifier = new_verifier()
    code = get_code(client, idp, acme["connection"], verifier)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": DESKTOP_URI,
        "code_verifier": verifier,
        "client_id": "desktop",
    }
    body = "&".join(f"{key}={value}" for key, value in [*form.items(), (name, form[name])])
    response = client.post("/api/v1/token", data=body, content_type="application/x-www-form-urlencoded")
    assert_token_error(response, "invalid_request", "TOKEN_REQUEST_INVALID")
    # Refused before the code was looked at: it still works once.
    assert exchange(client, code, verifier, client_id="desktop").status_code == 200


@pytest.mark.parametrize(
    ("form", "error", "code"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type", "GRANT_TYPE_UNSUPPORTED"),
        ({"grant_type": "refresh_token"}, "unsupported_grant_type", "GRANT_TYPE_UNSUPPORTED"),
        ({"client_id": "portal"}, "invalid_client", "CLIENT_UNKNOWN"),
        ({"code_verifier": "too-short"}, "invalid_request", "PKCE_VERIFIER_INVALID"),
        ({"code_verifier": "v" * 129}, "invalid_request", "PKCE_VERIFIER_INVALID"),
        ({"code_verifier": "v" * 42 + "+"}, "invalid_request", "PKCE_VERIFIER_INVALID"),
        ({"code": "c" * 5000}, "invalid_grant", "CODE_INVALID"),
    ],
)
def test_token_request_with_bad_values(client, acme, form, error, code):
    assert_token_error(client.post("/api/v1/token", data=_valid_form() | form), error, code)
    assert count(UserSession) == 0


def test_token_request_must_be_form_encoded(client, acme):
    response = client.post("/api/v1/token", json=_valid_form())
    assert_token_error(response, "invalid_request", "TOKEN_REQUEST_INVALID")
    huge = client.post("/api/v1/token", data=_valid_form() | {"pad": "x" * 100_000})
    assert_token_error(huge, "invalid_request", "TOKEN_REQUEST_INVALID")
    assert client.get("/api/v1/token").status_code == 405


def test_refused_token_requests_are_audited(client, acme):
    client.post("/api/v1/token", data=_valid_form() | {"grant_type": "password"})
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "signin.app_token")).one()
    assert (event.outcome, event.error_code) == ("failure", "GRANT_TYPE_UNSUPPORTED")


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("garbage", "invalid_request"),
        ("Basic YWxpY2U6c2VjcmV0", "invalid_request"),
        ("Bearer", "invalid_request"),
        ("Bearer ", "invalid_request"),
        ("Bearer " + "x" * 300, "invalid_request"),
        ("Bearer \u00e9t\u00e9", "invalid_request"),
        ("Bearer not-a-token", "invalid_token"),
        ("Bearer a b c", "invalid_token"),
    ],
)
def test_garbage_authorization_header_is_a_clear_401(client, acme, header, error):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json["error"] == error and response.json["message"]
    assert f'error="{error}"' in response.headers["WWW-Authenticate"]
    assert client.post("/api/v1/logout", headers={"Authorization": header}).status_code == 401


def test_portal_cookie_is_no_bearer_token_and_no_api_logout(client, acme, sign_in):
    sign_in(acme["connection"], "admin@acme.example")
    cookie = client.get_cookie("__Host-portal_session").value
    # A web session's token is not an app token.
    assert_invalid_token(client.get("/api/v1/me", headers=bearer(cookie)))
    # The API's logout takes no cookies: a cross-site POST cannot sign anyone out.
    response = client.post("/api/v1/logout")
    assert response.status_code == 401
    assert client.get("/api/v1/me").status_code == 200
    assert db.session.scalars(select(UserSession)).one().revoked_at is None


def test_bearer_calls_ignore_cookies(client, acme, sign_in):
    sign_in(acme["connection"], "admin@acme.example")
    assert_invalid_token(client.get("/api/v1/me", headers=bearer("unknown-token")))


def test_a_login_hint_shows_the_continue_page_and_starts_nothing(client, acme):
    """Issue 9 item 3: a link (from the app or from anyone) never sends the browser to the IdP."""
    verifier = new_verifier()
    query = {
        "app": "desktop",
        "redirect_uri": DESKTOP_URI,
        "code_challenge": challenge_for(verifier),
        "code_challenge_method": "S256",
        "state": "st-123",
        "login_hint": "admin@acme.example",
    }
    page = client.get("/sso/app/authorize", query_string=query)
    assert page.status_code == 200 and page.location is None
    html = page.get_data(as_text=True)
    assert 'value="admin@acme.example"' in html and "Continue to your identity provider" in html
    assert 'method="post"' in html and 'name="csrf_token"' in html
    assert count(AppAuthorizationRequest) == 0 and count(PendingRequest) == 0
    # A third-party page posting the same form has no CSRF token: nothing starts.
    refused = client.post("/sso/app/authorize", data=query)
    assert refused.status_code == 400 and b"CSRF_FAILED" in refused.data
    assert count(AppAuthorizationRequest) == 0 and count(PendingRequest) == 0
