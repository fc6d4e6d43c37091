"""Helpers for the setup wizard's tests (tests/test_setup_*.py and the browser test)."""

from __future__ import annotations

from flask.testing import FlaskClient

from app.extensions import db
from app.models import AuditEvent, IdpConnection, User
from app.sessions import create_session
from tests.saml_idp import authn_request_from_location


def log_in(client: FlaskClient, user: User) -> None:
    """Give ``client`` a live portal session of ``user``, as a sign-in would."""
    new = create_session(user, app_name="portal", ip="127.0.0.1", user_agent="pytest")
    db.session.commit()
    client.set_cookie("__Host-portal_session", new.token, secure=True)


def audit_events(action: str, connection: IdpConnection | None = None) -> list[AuditEvent]:
    query = db.session.query(AuditEvent).filter_by(action=action)
    if connection is not None:
        query = query.filter_by(connection_id=connection.id)
    return query.order_by(AuditEvent.id).all()


def start_test_sign_in(client: FlaskClient, connection: IdpConnection, csrf: str) -> str:
    """Press "Sign in at <IdP> now" and return the AuthnRequest ID the IdP receives."""
    response = client.post(f"/setup/connections/{connection.id}/test", data={"csrf_token": csrf})
    assert response.status_code == 302, response.get_data(as_text=True)
    return authn_request_from_location(response.location).get("ID")
