"""Password sign-in: only where the account allows it, hashed, rate-limited."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import AuditEvent, User
from tests.helpers.signin import post_sso_start

PASSWORD = "correct horse battery staple"


@pytest.fixture
def first_admin(make_account, make_user):
    account = make_account()
    return make_user(account, "first@acme.example", "admin", password=PASSWORD)


def _login(client, csrf_token, email: str, password: str, next_path: str = ""):
    return client.post(
        "/login/password", data={"email": email, "password": password, "next": next_path, "csrf_token": csrf_token()}
    )


def test_password_sign_in_for_an_account_without_sso_required(client, csrf_token, first_admin):
    response = _login(client, csrf_token, "First@Acme.example", PASSWORD)
    assert response.status_code == 302 and response.location == "/portal/"
    assert client.get("/api/v1/me").json["email"] == "first@acme.example"
    stored = db.session.get(User, first_admin.id).password_hash
    assert stored.startswith("scrypt:") and PASSWORD not in stored


def test_wrong_password_is_refused(client, csrf_token, first_admin):
    response = _login(client, csrf_token, "first@acme.example", "wrong password!")
    assert response.status_code == 401 and b"INVALID_CREDENTIALS" in response.data
    assert client.get("/api/v1/me").status_code == 401


def test_unknown_email_looks_like_a_wrong_password(client, csrf_token, first_admin):
    response = _login(client, csrf_token, "nobody@acme.example", PASSWORD)
    assert response.status_code == 401 and b"INVALID_CREDENTIALS" in response.data


def test_sso_required_account_refuses_passwords(client, csrf_token, first_admin):
    """Refused like a wrong password (no oracle); the real reason is in the audit event only."""
    first_admin.account.sso_required = True
    db.session.commit()
    response = _login(client, csrf_token, "first@acme.example", PASSWORD)
    assert response.status_code == 401 and b"INVALID_CREDENTIALS" in response.data
    assert b"SSO_REQUIRED" not in response.data


def test_failures_are_rate_limited_even_for_the_right_password(client, csrf_token, first_admin, app):
    for _ in range(app.config["PASSWORD_MAX_FAILURES"]):
        assert _login(client, csrf_token, "first@acme.example", "nope nope nope").status_code == 401
    response = _login(client, csrf_token, "first@acme.example", PASSWORD)
    assert response.status_code == 429 and b"LOGIN_RATE_LIMITED" in response.data
    assert db.session.query(AuditEvent).filter_by(error_code="LOGIN_RATE_LIMITED").count() == 1


def test_password_form_needs_a_csrf_token(client, first_admin):
    response = client.post("/login/password", data={"email": "first@acme.example", "password": PASSWORD})
    assert response.status_code == 400 and b"CSRF_FAILED" in response.data


def test_next_after_password_sign_in_stays_on_site(client, csrf_token, first_admin):
    response = _login(client, csrf_token, "first@acme.example", PASSWORD, next_path="//evil.example/x")
    assert response.location == "/portal/"


def test_sso_start_for_unknown_email_does_not_reveal_it(client, acme):
    unknown = post_sso_start(client, "nobody@acme.example")
    assert unknown.status_code == 404 and b"SSO_NOT_CONFIGURED" in unknown.data


def test_sso_start_for_an_account_without_sso(client, make_account, make_user):
    make_user(make_account("nosso", "No SSO"), "x@nosso.example")
    response = post_sso_start(client, "x@nosso.example")
    assert response.status_code == 404 and b"SSO_NOT_CONFIGURED" in response.data


def test_sso_start_refuses_other_apps(client, acme):
    response = post_sso_start(client, "admin@acme.example", app="fax")
    assert response.status_code == 400 and b"UNKNOWN_APP" in response.data


def test_login_page_renders(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert b"Sign in with SSO" in page.data
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
