"""Server-side sessions: 21 days sliding, throttled writes, revocation seen on the next request."""

from __future__ import annotations

import datetime as dt

import pytest

from app.extensions import db
from app.models import User, UserSession
from app.services.users import deactivate_user, delete_user
from app.sessions import create_session, find_live_session, hash_token
from app.timeutil import utcnow
from tests.helpers.web import bearer


@pytest.fixture
def signed_in(client, acme, sign_in):
    assert sign_in(acme["connection"], "admin@acme.example").status_code == 302
    return db.session.query(UserSession).one()


def _age(session: UserSession, **delta: float) -> None:
    session.last_used_at = utcnow() - dt.timedelta(**delta)
    db.session.commit()


def test_session_lasts_21_days_from_sign_in(signed_in):
    lifetime = signed_in.expires_at - signed_in.created_at
    assert lifetime == dt.timedelta(days=21)


def test_use_slides_the_expiry(client, signed_in):
    _age(signed_in, days=3)
    signed_in.expires_at = utcnow() + dt.timedelta(days=18)
    db.session.commit()
    assert client.get("/api/v1/me").status_code == 200
    db.session.refresh(signed_in)
    assert signed_in.expires_at > utcnow() + dt.timedelta(days=20, hours=23)
    assert utcnow() - signed_in.last_used_at < dt.timedelta(minutes=1)


def test_writes_are_throttled(client, signed_in):
    _age(signed_in, seconds=60)
    before = signed_in.last_used_at
    assert client.get("/api/v1/me").status_code == 200
    db.session.refresh(signed_in)
    assert signed_in.last_used_at == before  # within the 5-minute interval: no write


def test_unused_session_expires(client, signed_in):
    signed_in.expires_at = utcnow() - dt.timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/portal/").status_code == 302


def test_revoked_session_is_refused_on_the_next_request(client, signed_in):
    signed_in.revoked_at = utcnow()
    db.session.commit()
    assert client.get("/api/v1/me").status_code == 401


def test_deactivation_revokes_every_session_at_once(client, acme, signed_in):
    app_token = create_session(acme["admin"], app_name="desktop", ip=None, user_agent=None).token
    db.session.commit()
    revoked = deactivate_user(acme["admin"])
    db.session.commit()
    assert revoked == 2
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=bearer(app_token)).status_code == 401
    assert {s.revoked_reason for s in db.session.query(UserSession)} == {"user_deactivated"}


def test_deletion_revokes_sessions_and_keeps_them_detached(client, acme, signed_in):
    delete_user(acme["admin"])
    db.session.commit()
    assert client.get("/api/v1/me").status_code == 401
    session = db.session.query(UserSession).one()
    assert session.user_id is None and session.revoked_reason == "user_deleted"
    assert db.session.query(User).filter_by(email="admin@acme.example").count() == 0


def test_a_session_of_a_user_deactivated_behind_our_back_is_refused(client, acme, signed_in):
    """Even if some path flipped the status without the hook, the lookup checks the user."""
    db.session.query(User).filter_by(id=acme["admin"].id).update({"status": "deactivated"})
    db.session.commit()
    assert client.get("/api/v1/me").status_code == 401


def test_logout_ends_this_session_only(client, acme, signed_in, csrf_token):
    other = create_session(acme["admin"], app_name="portal", ip=None, user_agent=None)
    db.session.commit()
    response = client.post("/logout", data={"csrf_token": csrf_token()})
    assert response.status_code == 302 and response.location == "/login"
    assert client.get("/api/v1/me").status_code == 401
    db.session.refresh(signed_in)
    assert signed_in.revoked_reason == "logout"
    assert find_live_session(other.token) is not None


def test_logout_without_csrf_token_changes_nothing(client, signed_in):
    response = client.post("/logout")
    assert response.status_code == 400
    assert b"CSRF_FAILED" in response.data
    assert client.get("/api/v1/me").status_code == 200


def test_logout_by_get_is_not_allowed(client, signed_in):
    assert client.get("/logout").status_code == 405
    assert client.get("/api/v1/me").status_code == 200


def test_token_is_random_and_only_its_hash_is_stored(acme):
    tokens = {create_session(acme["admin"], app_name="portal", ip=None, user_agent=None).token for _ in range(5)}
    db.session.commit()
    assert len(tokens) == 5 and all(len(token) >= 43 for token in tokens)  # 256 bits, base64url
    stored = {s.token_hash for s in db.session.query(UserSession)}
    assert stored == {hash_token(token) for token in tokens}


def test_no_remember_me_cookie_and_no_max_age(client, acme, sign_in):
    response = sign_in(acme["connection"], "admin@acme.example")
    cookies = response.headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("__Host-portal_session="))
    assert "Max-Age" not in session_cookie and "Expires" not in session_cookie
    assert "Path=/" in session_cookie and "Secure" in session_cookie and "HttpOnly" in session_cookie
    assert not any(c.startswith("remember_token") for c in cookies)


def test_garbage_cookie_and_bearer_are_just_unauthenticated(client, acme):
    client.set_cookie("__Host-portal_session", "x" * 3000, domain="sso.test")
    assert client.get("/api/v1/me").status_code == 401
    for header in ("Bearer", "Bearer ", "Basic abc", "Bearer \u00e9\u00e9", "Bearer " + "a" * 500):
        assert client.get("/api/v1/me", headers={"Authorization": header}).status_code == 401


def test_cookie_without_https_is_not_host_prefixed(app, monkeypatch):
    from app.sessions.web import session_cookie_name

    monkeypatch.setitem(app.config, "BASE_URL", "http://localhost:5000")
    with app.test_request_context("/"):
        assert session_cookie_name() == "portal_session"


def test_losing_the_role_for_the_app_ends_access_at_once(client, acme, signed_in):
    app_token = create_session(acme["agent"], app_name="desktop", ip=None, user_agent=None).token
    acme["admin"].roles = "agent"
    acme["agent"].roles = ""
    db.session.commit()
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=bearer(app_token)).status_code == 401
