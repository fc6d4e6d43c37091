"""Issue 9, item 5: "SSO required" means it. Switching it on ends the account's password sessions
(SSO and app sessions stay), audited with the count; and the password form answers a right and a
wrong password of a user who may not use it (SSO required, deactivated, no portal role) in the same
way, after the same work, so that it tells nobody whether a password is right."""

from __future__ import annotations

import re

import pytest
from werkzeug import security

from app.extensions import db
from app.models import User, UserSession
from app.models.user import DEACTIVATED
from app.services import signin
from app.services.accounts import set_sso_required
from app.sessions import create_session
from app.timeutil import utcnow
from tests.helpers.audit import audit_events
from tests.helpers.signin import sso_sign_in
from tests.helpers.web import another_browser, app_session, csrf_from, log_in

PASSWORD = "a long and right password"


def _password_session(user: User) -> UserSession:
    new = create_session(user, app_name="portal", ip="198.51.100.7", user_agent="password browser")
    db.session.commit()
    return new.session


def _is_live(session_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(UserSession, session_id).revoked_at is None


def test_switching_sso_required_on_ends_password_sessions_only(app, acme, idp, make_account, make_user):
    account, connection = acme["account"], acme["connection"]
    connection.signin_test_passed_at = utcnow()  # a test sign-in through it succeeded
    db.session.commit()
    password = _password_session(acme["agent"])
    desktop = app_session(acme["agent"], "desktop").session  # an app session: stays
    elsewhere = _password_session(make_user(make_account("globex", "Globex"), "x@globex.example", "admin"))
    admin = another_browser(app)
    sso_sign_in(admin, idp, connection, "admin@acme.example")

    response = admin.post(
        "/setup/accounts/acme/sso-required",
        data={"csrf_token": csrf_from(admin, "/setup/accounts/acme/"), "required": "on"},
    )

    assert response.status_code == 302
    assert not _is_live(password.id)
    assert db.session.get(UserSession, password.id).revoked_reason == "sso_required"
    assert _is_live(desktop.id) and _is_live(elsewhere.id)
    assert admin.get("/portal/").status_code == 200  # the admin's SSO session stays
    [switch] = audit_events("account.sso_required")
    assert switch.details == {"sso_required": True, "password_sessions_revoked": 1}
    [revocation] = audit_events("session.revoke_many")
    assert revocation.account_id == account.id and revocation.details["revoked"] == 1
    assert revocation.details["reason"] == "sso_required"


def test_switching_it_off_ends_nothing(acme):
    acme["account"].sso_required = True
    db.session.commit()
    password = _password_session(acme["agent"])
    assert set_sso_required(acme["account"], False) == 0
    db.session.commit()
    assert _is_live(password.id) and not audit_events("session.revoke_many")


# --- no password oracle --------------------------------------------------------------------------


def _refusable(kind: str, account, make_user) -> User:
    """A user with a password who may not use the password form, for the reason ``kind``."""
    user = make_user(
        account, f"{kind.lower()}@acme.example", "agent" if kind == "NO_ROLE_FOR_APP" else "admin", PASSWORD
    )
    if kind == "SSO_REQUIRED":
        account.sso_required = True
    if kind == "USER_DEACTIVATED":
        user.status = DEACTIVATED
    db.session.commit()
    return user


def _answer(client, email: str, password: str) -> tuple[int, str]:
    response = client.post(
        "/login/password",
        data={"email": email, "password": password, "csrf_token": csrf_from(client, "/login")},
    )
    # The page is the same but for the next form's CSRF token.
    return response.status_code, re.sub(r'name="csrf_token"[^>]*>', "", response.get_data(as_text=True))


@pytest.fixture
def scrypt_calls(monkeypatch) -> list[str]:
    """The password checks the sign-in makes (the real check runs; its calls are counted)."""
    calls: list[str] = []

    def counting(pwhash: str, password: str) -> bool:
        calls.append(pwhash.split("$", 1)[0])
        return security.check_password_hash(pwhash, password)

    monkeypatch.setattr(signin, "check_password_hash", counting)
    return calls


@pytest.mark.parametrize("kind", ["SSO_REQUIRED", "USER_DEACTIVATED", "NO_ROLE_FOR_APP"])
def test_right_and_wrong_passwords_get_the_same_answer(client, acme, make_user, scrypt_calls, kind):
    user = _refusable(kind, acme["account"], make_user)
    right = _answer(client, user.email, PASSWORD)
    assert len(scrypt_calls) == 1
    wrong = _answer(client, user.email, "not the password at all")
    unknown = _answer(client, "nobody@acme.example", PASSWORD)
    assert len(scrypt_calls) == 3  # one scrypt each, whatever the outcome
    assert right == wrong == unknown
    assert right[0] == 401 and 'data-testid="error-code">INVALID_CREDENTIALS<' in right[1]
    assert kind not in right[1]
    assert client.get("/api/v1/me").status_code == 401
    # The real reason is in the audit trail, for the admins.
    events = [event for event in audit_events("signin.password") if event.subject_email == user.email]
    assert [event.error_code for event in events] == ["INVALID_CREDENTIALS"] * 2
    assert [event.details["refused_because"] for event in events] == [kind, "WRONG_PASSWORD"]


def test_right_passwords_of_refused_users_count_as_failures(app, client, acme, make_user):
    """Otherwise the rate limit itself would tell: wrong passwords lock the form, right ones not."""
    user = _refusable("SSO_REQUIRED", acme["account"], make_user)
    for _ in range(app.config["PASSWORD_MAX_FAILURES"]):
        assert _answer(client, user.email, PASSWORD)[0] == 401
    assert _answer(client, user.email, PASSWORD)[0] == 429


def test_an_admin_signed_in_with_a_password_is_sent_to_sign_in_with_sso(client, acme):
    """The admin's own password session ends too: the page says so and leads to the SSO sign-in."""
    acme["connection"].signin_test_passed_at = utcnow()
    db.session.commit()
    log_in(client, acme["admin"])
    response = client.post(
        "/setup/accounts/acme/sso-required",
        data={"csrf_token": csrf_from(client, "/setup/accounts/acme/"), "required": "on"},
    )
    assert response.status_code == 302 and response.location.startswith("/login?next=")
    assert "sign in with SSO" in client.get(response.location).get_data(as_text=True)
    assert client.get("/portal/").status_code == 302
