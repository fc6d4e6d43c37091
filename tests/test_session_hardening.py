"""Issue 9, item 11: sessions and forms. The CSRF secret is renewed at sign-in and sign-out and a
token expires; losing a role ends the sessions of the apps only that role opened; an optional
absolute session lifetime (``SESSION_MAX_AGE_DAYS``, off by default)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import event

from app.extensions import db
from app.models import UserSession
from app.sessions import create_session, find_live_session
from app.timeutil import utcnow
from tests.helpers.audit import audit_events
from tests.helpers.signin import sso_sign_in
from tests.helpers.web import PORTAL_COOKIE, another_browser, app_session, csrf_from, log_in

PASSWORD = "a long and right password"


def _is_live(session_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(UserSession, session_id).revoked_at is None


# --- the CSRF secret and the token's time limit ----------------------------------------------------


def _logout(client, token: str) -> int:
    return client.post("/logout", data={"csrf_token": token}).status_code


def test_a_token_from_before_a_password_sign_in_is_worthless_after_it(client, acme, make_user):
    make_user(acme["account"], "pw@acme.example", "admin", PASSWORD)
    before = csrf_from(client, "/login")
    signed_in = client.post(
        "/login/password", data={"email": "pw@acme.example", "password": PASSWORD, "csrf_token": before}
    )
    assert signed_in.status_code == 302 and signed_in.location == "/portal/"
    assert _logout(client, before) == 400
    assert _logout(client, csrf_from(client, "/portal/")) == 302  # a token issued after it works


def test_a_token_from_before_an_sso_sign_in_is_worthless_after_it(client, acme, idp):
    before = csrf_from(client, "/login")
    sso_sign_in(client, idp, acme["connection"], "admin@acme.example")
    assert client.get("/portal/").status_code == 200
    assert _logout(client, before) == 400
    assert _logout(client, csrf_from(client, "/portal/")) == 302


def test_a_token_from_before_a_sign_out_is_worthless_after_it(client, acme):
    log_in(client, acme["admin"])
    before = csrf_from(client, "/portal/")
    assert _logout(client, before) == 302
    assert "You are signed out" in client.get("/login").get_data(as_text=True)  # flashes survive
    refused = client.post(
        "/login/password", data={"email": "admin@acme.example", "password": "x", "csrf_token": before}
    )
    assert refused.status_code == 400 and "CSRF_FAILED" in refused.get_data(as_text=True)


@pytest.mark.parametrize(("hours_ago", "status"), [(7, 302), (9, 400)])
def test_csrf_tokens_expire_after_eight_hours(app, client, acme, monkeypatch, hours_ago, status):
    assert app.config["WTF_CSRF_TIME_LIMIT"] == 8 * 3600
    log_in(client, acme["admin"])
    issued_at = int(utcnow().replace(tzinfo=dt.UTC).timestamp()) - hours_ago * 3600
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda _self: issued_at)
        old_token = csrf_from(client, "/portal/")
    assert _logout(client, old_token) == status


# --- a lost role ends its apps' sessions -----------------------------------------------------------


@pytest.fixture
def lead(acme, make_user):
    """An admin of acme with a portal, a desktop and a mobile session."""
    user = make_user(acme["account"], "lead@acme.example", "admin")
    sessions = {name: app_session(user, name).session.id for name in ("portal", "desktop", "mobile")}
    return user, sessions


def test_admin_to_agent_on_the_admin_page_ends_portal_sessions_only(app, acme, idp, lead):
    user, sessions = lead
    admin = another_browser(app)
    sso_sign_in(admin, idp, acme["connection"], "admin@acme.example")
    token = csrf_from(admin, f"/admin/users/{user.id}")
    assert admin.post(f"/admin/users/{user.id}", data={"csrf_token": token, "roles": ["agent"]}).status_code == 302
    assert not _is_live(sessions["portal"])
    assert db.session.get(UserSession, sessions["portal"]).revoked_reason == "role_removed"
    assert _is_live(sessions["desktop"]) and _is_live(sessions["mobile"])
    [revocation] = audit_events("session.revoke_all")
    assert revocation.subject_email == "lead@acme.example" and revocation.actor == "admin@acme.example"
    assert revocation.details == {"revoked": 1, "reason": "role_removed", "apps": ["portal"]}
    # Giving the role back opens new sign-ins, never the old session.
    assert admin.post(f"/admin/users/{user.id}", data={"csrf_token": token, "roles": ["admin"]}).status_code == 302
    assert not _is_live(sessions["portal"])
    # Adding a role ends nothing.
    assert len(audit_events("session.revoke_all")) == 1


def test_admin_to_agent_in_a_csv_import_ends_portal_sessions_only(runner, acme, lead, tmp_path):
    _user, sessions = lead
    agent_desktop = app_session(acme["agent"], "desktop").session.id
    path = tmp_path / "users.csv"
    path.write_text("email,name,roles\nlead@acme.example,Lead,agent\nagent@acme.example,Agent,agent\n")
    result = runner.invoke(args=["users", "import", str(path), "--account", "acme", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["updated"] == 2
    assert not _is_live(sessions["portal"])
    assert db.session.get(UserSession, sessions["portal"]).revoked_reason == "role_removed"
    assert _is_live(sessions["desktop"]) and _is_live(sessions["mobile"]) and _is_live(agent_desktop)
    [summary] = audit_events("session.revoke_many")
    assert summary.account_id == acme["account"].id and summary.details["reason"] == "role_removed"
    assert summary.details["revoked"] == 1 and summary.details["users"] == 1


def test_a_dry_run_import_ends_nothing(runner, acme, lead, tmp_path):
    _user, sessions = lead
    path = tmp_path / "users.csv"
    path.write_text("email,name,roles\nlead@acme.example,Lead,agent\n")
    result = runner.invoke(args=["users", "import", str(path), "--account", "acme", "--json", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert _is_live(sessions["portal"]) and not audit_events("session.revoke_many")


# --- optional absolute lifetime --------------------------------------------------------------------


def _session_created_days_ago(user, days: int) -> str:
    new = create_session(user, app_name="portal", ip=None, user_agent=None)
    new.session.created_at = utcnow() - dt.timedelta(days=days)
    db.session.commit()
    return new.token


@pytest.mark.parametrize(("max_age", "days", "live"), [(0, 400, True), (30, 29, True), (30, 31, False)])
def test_session_max_age(app, client, acme, monkeypatch, max_age, days, live):
    """Used an hour ago and far from its sliding expiry, a session older than the limit is refused."""
    monkeypatch.setitem(app.config, "SESSION_MAX_AGE_DAYS", max_age)
    token = _session_created_days_ago(acme["admin"], days)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        found = find_live_session(token)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert (found is not None) is live
    assert len(statements) == 1  # the limit is one more condition of the one lookup
    client.set_cookie(PORTAL_COOKIE, token, secure=True)
    assert (client.get("/portal/").status_code == 200) is live


def test_session_max_age_is_off_by_default(app):
    assert app.config["SESSION_MAX_AGE_DAYS"] == 0
