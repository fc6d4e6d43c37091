"""Single Logout: end the sessions an IdP's LogoutRequest names, and sign out at the IdP.

Rule 7 of the design: with Single Logout on, the IdP's LogoutRequest ends that person's sessions
from that IdP (web, desktop and mobile alike), and "Sign out" here also signs out at the IdP.
Callers commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, update

from app import audit
from app.extensions import db
from app.models import IdpConnection, UserSession
from app.saml import (
    IdpLogoutRequest,
    IdpLogoutResponse,
    logout_response_location,
    receive_logout_message,
    start_logout,
)
from app.timeutil import utcnow

log = logging.getLogger(__name__)

#: ``revoked_reason`` of the sessions an IdP's LogoutRequest ended.
IDP_LOGOUT_REASON = "idp_logout"


@dataclass(frozen=True)
class SlsOutcome:
    """What a message at the SLS led to, for the view to answer the browser."""

    #: ``request`` (the IdP signed the person out) or ``response`` (the IdP answered our request).
    kind: str
    #: Where to send the browser next: our LogoutResponse to the IdP, or None.
    location: str | None = None
    #: Sessions ended (for a LogoutRequest).
    ended: int = 0
    #: For a LogoutResponse: did the IdP confirm the sign-out?
    confirmed: bool = False
    #: The IdP's name as the connection shows it.
    idp_name: str = ""


def end_idp_sessions(connection: IdpConnection, name_id: str, session_indexes: list[str], *, request_id: str) -> int:
    """Revoke every live session created through ``connection`` for ``name_id`` (only those
    ``session_indexes`` when given), in one UPDATE, and audit it once. Returns how many."""
    query = update(UserSession).where(
        UserSession.connection_id == connection.id,
        UserSession.saml_name_id == name_id,
        UserSession.revoked_at.is_(None),
    )
    if session_indexes:
        query = query.where(UserSession.saml_session_index.in_(session_indexes))
    result = db.session.execute(
        query.values(revoked_at=utcnow(), revoked_reason=IDP_LOGOUT_REASON).execution_options(
            synchronize_session="fetch"
        )
    )
    ended = cast(CursorResult[Any], result).rowcount
    audit.record(
        "signout.idp_request",
        account_id=connection.account_id,
        connection_id=connection.id,
        subject_email=name_id[:320],
        details={"revoked": ended, "session_indexes": len(session_indexes), "request_id": request_id},
    )
    return ended


def handle_sls_message(
    connection_id: int,
    *,
    method: str,
    query_string: str,
    form: dict[str, list[str]],
    browser_binding: str | None,
) -> SlsOutcome:
    """A LogoutRequest or LogoutResponse at ``/saml/<id>/sls``: check it, then act on it.

    Raises ``LogoutError`` (audited by the view) when the message is refused: nothing ends then.
    """
    message = receive_logout_message(
        connection_id, method=method, query_string=query_string, form=form, browser_binding=browser_binding
    )
    connection = message.connection
    if isinstance(message, IdpLogoutRequest):
        ended = end_idp_sessions(connection, message.name_id, message.session_indexes, request_id=message.request_id)
        location = logout_response_location(
            connection, message.request_id, partial=ended == 0, relay_state=message.relay_state
        )
        return SlsOutcome(kind="request", location=location, ended=ended, idp_name=connection.name)
    return _logout_answered(message)


def _logout_answered(message: IdpLogoutResponse) -> SlsOutcome:
    connection = message.connection
    audit.record(
        "signout.idp_response",
        outcome="success" if message.success else "failure",
        account_id=connection.account_id,
        connection_id=connection.id,
        details={"status": message.status, "sub_status": message.sub_status, "in_response_to": message.in_response_to},
    )
    return SlsOutcome(kind="response", confirmed=message.success, idp_name=connection.name)


def start_single_logout(session: UserSession, *, browser_binding: str) -> str | None:
    """Where to send the browser to sign out at the IdP too, once ``session`` has ended here.

    None when the session did not come through a connection with Single Logout on and an IdP
    SLO URL. Records the pending LogoutRequest; the caller commits.
    """
    if session.connection_id is None or not session.saml_name_id:
        return None
    connection = db.session.get(IdpConnection, session.connection_id)
    if connection is None:
        return None
    location = start_logout(
        connection,
        name_id=session.saml_name_id,
        session_index=session.saml_session_index,
        browser_binding=browser_binding,
    )
    if location is not None:
        audit.record(
            "signout.slo_start",
            account_id=connection.account_id,
            connection_id=connection.id,
            subject_email=session.user.email if session.user is not None else None,
            details={"session_id": session.id},
        )
    return location
