"""Test sign-ins from the setup wizard: record what arrived, never create a session.

Each test is an audit event (``connection.test``) that the result page and the connection's
diagnostics show; what a test proved is state on the connection itself
(``saml_test_passed_at``, ``signin_test_passed_at``), never worked out from the audit log.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from app import audit
from app.errors import SignInError
from app.extensions import db
from app.models import AuditEvent, IdpConnection
from app.models.idp_connection import DRAFT, TESTED
from app.saml import VerifiedAssertion
from app.services.signin import authorize, email_from_assertion, match_user
from app.timeutil import utcnow

TEST_ACTION = "connection.test"
#: The audit actions that are sign-in attempts through a connection (the diagnostics list).
SIGNIN_ACTIONS = ("signin.sso", TEST_ACTION)
#: Outcomes of a test whose SAML exchange worked; only the user lookup refused (no access yet).
#: Such a test moves a draft connection to ``tested``.
SAML_WORKED_CODES = ("USER_NOT_FOUND", "USER_DEACTIVATED", "NO_ROLE_FOR_APP")


def record_test_result(verified: VerifiedAssertion) -> AuditEvent:
    """Record a validated test response and whether it would sign a user in. The caller commits."""
    connection = verified.connection
    details: dict = {
        "name_id": verified.name_id,
        "name_id_format": verified.name_id_format,
        "attributes": verified.attributes,
        "signed_elements": verified.signed_elements,
        "signature_algorithms": verified.signature_algorithms,
        "audiences": verified.audiences,
        "issuer": verified.issuer,
        "session_index": verified.session_index,
    }
    error_code = None
    email = None
    try:
        email = email_from_assertion(verified)
        details["email"] = email
        user = match_user(connection.account_id, email)
        if user is not None:
            details["user_roles"] = user.role_list
            details["user_status"] = user.status
        authorize(connection.account_id, email, "portal")
        details["would_sign_in"] = True
    except SignInError as err:
        error_code = err.code
        details["would_sign_in"] = False
        details["reason"] = err.detail
    # The SAML exchange itself worked: that is what "tested" certifies, even when the user
    # who tried it has no access yet.
    now = utcnow()
    if error_code is None or error_code in SAML_WORKED_CODES:
        connection.saml_test_passed_at = connection.saml_test_passed_at or now
        if connection.status == DRAFT:
            connection.status = TESTED
    if error_code is None:
        connection.signin_test_passed_at = connection.signin_test_passed_at or now
    return audit.record(
        TEST_ACTION,
        outcome="success" if error_code is None else "failure",
        error_code=error_code,
        account_id=connection.account_id,
        connection_id=connection.id,
        subject_email=email,
        details=details,
    )


def record_test_failure(connection: IdpConnection, err: SignInError) -> AuditEvent:
    """Record a test response that failed validation. The caller commits.

    ``signed_with`` (a signature failure) names the certificates the response itself claimed to be
    signed with, so that the result page can set them beside the trusted ones.
    """
    details: dict[str, str] = {"reason": err.detail[:2000]}
    if "signed_with" in err.context:
        details["signed_with"] = str(err.context["signed_with"])[:400]
    return audit.record(
        TEST_ACTION,
        outcome="failure",
        error_code=err.code,
        account_id=connection.account_id,
        connection_id=connection.id,
        details=details,
    )


def _events_of(connection: IdpConnection) -> Select[tuple[AuditEvent]]:
    """Audit events naming this connection. Ids are plain numbers in the trail, and SQLite may
    hand a deleted connection's id to a new one: events older than the connection are not its own."""
    return select(AuditEvent).where(
        AuditEvent.connection_id == connection.id, AuditEvent.created_at >= connection.created_at
    )


def recent_signin_attempts(
    connection: IdpConnection, limit: int = 25, actions: tuple[str, ...] = SIGNIN_ACTIONS
) -> list[AuditEvent]:
    """The latest sign-ins and test sign-ins through ``connection``, newest first (diagnostics)."""
    query = _events_of(connection).where(AuditEvent.action.in_(actions))
    return list(db.session.scalars(query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)))


def find_test_event(connection: IdpConnection, event_id: int) -> AuditEvent | None:
    """The test sign-in ``event_id`` of ``connection``, or None when it is not one."""
    return db.session.scalar(_events_of(connection).where(AuditEvent.id == event_id, AuditEvent.action == TEST_ACTION))


def has_successful_test(connection: IdpConnection) -> bool:
    """True once a test sign-in through ``connection`` would have signed its user in."""
    return connection.signin_test_passed_at is not None


def has_passed_saml_test(connection: IdpConnection) -> bool:
    """True once a test response through ``connection`` was valid (even if its user had no access)."""
    return connection.saml_test_passed_at is not None
