"""After someone else ends a session, the browser's next click lands on the sign-in page saying why."""

from __future__ import annotations

import datetime as dt

import pytest

from app.extensions import db
from app.models import UserSession
from app.services.users import deactivate_user
from app.sessions import revoke_session
from tests.helpers.web import log_in

ADMIN_TEXT = "You were signed out by your company&#39;s administrator."


def _next_click(client) -> str:
    response = client.get("/portal/")
    assert response.status_code == 302 and "/login" in response.location
    return client.get(response.location).get_data(as_text=True)


def test_deactivation_says_the_administrator_signed_you_out(client, acme):
    log_in(client, acme["admin"])
    assert client.get("/portal/").status_code == 200
    deactivate_user(acme["admin"], actor="admin@acme.example")
    db.session.commit()
    page = _next_click(client)
    assert 'data-testid="session-ended"' in page and ADMIN_TEXT in page


def test_scim_deactivation_names_the_identity_provider(client, acme):
    log_in(client, acme["admin"])
    deactivate_user(acme["admin"], actor="scim:Okta", reason="scim_deactivated")
    db.session.commit()
    page = _next_click(client)
    assert "You were signed out by your company&#39;s administrator (through your identity provider)." in page


@pytest.mark.parametrize(
    ("reason", "text"),
    [("revoked_by_support", "our support team"), ("logout", None), ("replaced_at_signin", None)],
)
def test_each_reason_has_its_words_and_sign_out_says_nothing(client, acme, reason, text):
    log_in(client, acme["admin"])
    revoke_session(db.session.query(UserSession).one(), reason)
    db.session.commit()
    page = _next_click(client)
    if text is None:
        assert 'data-testid="session-ended"' not in page
    else:
        assert text in page


def test_an_expired_session_says_so(client, acme):
    log_in(client, acme["admin"])
    session = db.session.query(UserSession).one()
    session.expires_at = session.created_at - dt.timedelta(seconds=1)
    db.session.commit()
    assert "Your session expired" in _next_click(client)


def test_a_made_up_ended_argument_shows_nothing(client):
    page = client.get("/login", query_string={"ended": "<script>alert(1)</script>"}).get_data(as_text=True)
    assert 'data-testid="session-ended"' not in page and "<script>alert(1)" not in page
