"""Issue 9 item 3: starting a sign-in is a user action (a CSRF-protected POST), never a link."""

from __future__ import annotations

import html

from app.extensions import db
from app.models import AuditEvent, PendingRequest
from tests.helpers.signin import post_sso_start


def test_a_link_to_sso_start_shows_the_form_filled_in_and_goes_nowhere(client, acme):
    response = client.get("/sso/start", query_string={"email": "admin@acme.example", "next": "/portal/?tab=users"})
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert 'value="admin@acme.example"' in page
    assert "Continue to your identity provider" in page
    assert 'method="post" action="/sso/start"' in page
    assert 'name="csrf_token"' in page
    assert 'value="/portal/?tab=users"' in page
    # Nothing started: no AuthnRequest, no sign-in audit event, no binding cookie.
    assert db.session.query(PendingRequest).count() == 0
    assert db.session.query(AuditEvent).filter(AuditEvent.action.like("signin.%")).count() == 0
    assert "sso_binding" not in response.headers.get("Set-Cookie", "")


def test_the_login_page_posts_the_sso_form_with_a_csrf_token(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'method="post" action="/sso/start"' in page
    assert "Sign in with SSO" in page


def test_a_post_without_the_csrf_token_starts_nothing(client, acme):
    """A third-party page's auto-submitting form cannot start a sign-in in a victim's browser."""
    response = client.post("/sso/start", data={"email": "admin@acme.example"})
    assert response.status_code == 400 and b"CSRF_FAILED" in response.data
    assert db.session.query(PendingRequest).count() == 0


def test_the_posted_form_starts_the_sign_in(client, acme):
    response = post_sso_start(client, "admin@acme.example", next_path="/portal/")
    assert response.status_code == 302 and "SAMLRequest=" in response.location
    pending = db.session.query(PendingRequest).one()
    assert pending.next_path == "/portal/" and pending.app == "portal"
