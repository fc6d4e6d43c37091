"""Your sessions: a signed-in user sees their own live sessions (this one marked) and signs out the
others, one by one or all at once; nobody else's session can be seen or touched."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.extensions import db
from app.models import UserSession
from app.timeutil import utcnow
from tests.helpers.audit import audit_events
from tests.helpers.signin import sso_sign_in
from tests.helpers.web import another_browser, app_session, bearer, csrf_from


@pytest.fixture
def me(app, client, acme, idp):
    """acme's admin signed in here, in a second browser, and in the desktop and mobile apps."""
    sso_sign_in(client, idp, acme["connection"], "admin@acme.example")
    laptop = another_browser(app)
    sso_sign_in(laptop, idp, acme["connection"], "admin@acme.example")
    desktop = app_session(acme["admin"], "desktop")
    mobile = app_session(acme["admin"], "mobile")
    sessions = (
        db.session.query(UserSession).filter_by(user_id=acme["admin"].id, app="portal").order_by(UserSession.id).all()
    )
    return {"here": sessions[0], "laptop_session": sessions[1], "laptop": laptop, "desktop": desktop, "mobile": mobile}


def _rows(html: str) -> dict[int, bool]:
    """Session id -> whether it is marked as this session."""
    return {
        int(session_id): bool(current)
        for session_id, current in re.findall(
            r'data-testid="my-session" data-session-id="(\d+)"( data-current="yes")?', html
        )
    }


def test_lists_my_live_sessions_and_marks_this_one(client, acme, me):
    other = app_session(acme["agent"], "desktop")
    ended = app_session(acme["admin"], "mobile")
    ended.session.revoked_at, ended.session.revoked_reason = utcnow(), "logout"
    expired = app_session(acme["admin"], "desktop")
    expired.session.expires_at = utcnow() - dt.timedelta(minutes=1)
    db.session.commit()

    response = client.get("/me/sessions")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    rows = _rows(html)
    assert set(rows) == {me["here"].id, me["laptop_session"].id, me["desktop"].session.id, me["mobile"].session.id}
    assert rows[me["here"].id] is True and sum(rows.values()) == 1
    assert other.session.id not in rows and ended.session.id not in rows and expired.session.id not in rows
    assert "This session" in html and "Phone desktop 5.1" in html
    assert 'data-testid="nav-my-sessions"' in html


def test_sign_out_one_other_session(client, me):
    token = csrf_from(client, "/me/sessions")
    response = client.post(f"/me/sessions/{me['desktop'].session.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302 and response.location == "/me/sessions"
    assert "Signed out the desktop session." in client.get("/me/sessions").get_data(as_text=True)
    assert client.get("/api/v1/me", headers=bearer(me["desktop"].token)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(me["mobile"].token)).status_code == 200
    assert me["laptop"].get("/portal/").status_code == 200
    event = audit_events("session.revoke")[-1]
    assert event.actor == "admin@acme.example" and event.details["reason"] == "signed_out_by_owner"


def test_sign_out_all_the_others_keeps_this_one(client, me):
    response = client.post("/me/sessions/revoke-others", data={"csrf_token": csrf_from(client, "/me/sessions")})
    assert response.status_code == 302
    page = client.get("/me/sessions").get_data(as_text=True)
    assert "Signed out 3 other sessions." in page
    assert _rows(page) == {me["here"].id: True}
    assert 'data-testid="only-session"' in page
    assert me["laptop"].get("/portal/").status_code == 302
    for app_token in (me["desktop"].token, me["mobile"].token):
        assert client.get("/api/v1/me", headers=bearer(app_token)).status_code == 401
    assert client.get("/portal/").status_code == 200
    event = audit_events("session.revoke_all")[-1]
    assert event.details == {"revoked": 3, "reason": "signed_out_by_owner", "kept_session_id": me["here"].id}


def test_this_session_is_not_ended_from_the_list(client, me):
    response = client.post(
        f"/me/sessions/{me['here'].id}/revoke", data={"csrf_token": csrf_from(client, "/me/sessions")}
    )
    assert response.status_code == 302
    assert "use Sign out at the top" in client.get("/me/sessions").get_data(as_text=True)
    assert client.get("/portal/").status_code == 200


def test_someone_elses_session_is_404_and_untouched(client, acme, me):
    theirs = app_session(acme["agent"], "desktop")
    token = csrf_from(client, "/me/sessions")
    for session_id in (theirs.session.id, 987654):
        response = client.post(f"/me/sessions/{session_id}/revoke", data={"csrf_token": token})
        assert response.status_code == 404 and "SESSION_NOT_FOUND" in response.get_data(as_text=True)
    assert client.get("/api/v1/me", headers=bearer(theirs.token)).status_code == 200
    assert not audit_events("session.revoke")


def test_posts_need_the_csrf_token(client, me):
    assert client.post("/me/sessions/revoke-others").status_code == 400
    assert client.post(f"/me/sessions/{me['desktop'].session.id}/revoke").status_code == 400
    assert client.get("/api/v1/me", headers=bearer(me["desktop"].token)).status_code == 200


def test_anonymous_goes_to_sign_in_and_staff_see_their_own(app, client, make_account, make_user, make_connection, idp):
    response = client.get("/me/sessions")
    assert response.status_code == 302 and response.location.startswith("/login")
    staff_account = make_account("phoneco", "Phone Co")
    make_user(staff_account, "helpdesk@phoneco.example", "support")
    browser = another_browser(app)
    sso_sign_in(browser, idp, make_connection(staff_account), "helpdesk@phoneco.example")
    page = browser.get("/me/sessions").get_data(as_text=True)
    assert list(_rows(page).values()) == [True]
