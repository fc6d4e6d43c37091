"""Test sign-ins from the setup wizard: record what arrived, never create a session.

The result is an audit event (``connection.test``), so that the result page, the connection's
diagnostics and the audit log all read the same record.
"""

from __future__ import annotations

from app import audit
from app.errors import SignInError
from app.models import AuditEvent, IdpConnection
from app.models.idp_connection import DRAFT, TESTED
from app.saml.core import VerifiedAssertion
from app.signin import authorize, email_from_assertion, match_user


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
    if connection.status == DRAFT and error_code in (None, "USER_NOT_FOUND", "USER_DEACTIVATED", "NO_ROLE_FOR_APP"):
        connection.status = TESTED
    return audit.record(
        "connection.test",
        outcome="success" if error_code is None else "failure",
        error_code=error_code,
        account_id=connection.account_id,
        connection_id=connection.id,
        subject_email=email,
        details=details,
    )


def record_test_failure(connection: IdpConnection, err: SignInError) -> AuditEvent:
    """Record a test response that failed validation. The caller commits."""
    return audit.record(
        "connection.test",
        outcome="failure",
        error_code=err.code,
        account_id=connection.account_id,
        connection_id=connection.id,
        details={"reason": err.detail[:2000]},
    )
