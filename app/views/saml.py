"""The SAML endpoints: SP metadata and the Assertion Consumer Service."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from app import audit
from app.errors import SignInError
from app.extensions import csrf, db
from app.models import IdpConnection
from app.redirects import safe_next_path
from app.saml.core import VerifiedAssertion, consume_response, sp_metadata_xml
from app.services.connection_tests import record_test_failure, record_test_result
from app.services.native_apps import is_app_purpose
from app.services.signin import authorize, email_from_assertion
from app.sessions import create_session, find_live_session, revoke_session
from app.sessions.web import binding_cookie_name, session_cookie_name, set_session_cookie
from app.views import app_auth
from app.views.errors import refuse

bp = Blueprint("saml", __name__, url_prefix="/saml")


@bp.get("/<int(max=2147483647):connection_id>/metadata")
def metadata(connection_id: int) -> Response | tuple[str, int]:
    """SP metadata for one connection (public: the IdP admin or the IdP itself downloads it)."""
    connection = db.session.get(IdpConnection, connection_id)
    if connection is None:
        return refuse(SignInError("CONNECTION_NOT_FOUND", f"no connection {connection_id}"), action="saml.metadata")
    return Response(sp_metadata_xml(connection), mimetype="application/samlmetadata+xml")


# The ACS is exempt from CSRF tokens on purpose: the IdP posts here cross-site. What protects it
# is the SAML validation itself, with InResponseTo bound to a pending request of this browser.
@bp.route("/<int(max=2147483647):connection_id>/acs", methods=["GET", "POST"])
@csrf.exempt
def acs(connection_id: int) -> Response | tuple[str, int]:
    """Assertion Consumer Service (HTTP-POST binding): validate, match the user, start a session."""
    if request.method != "POST":
        return refuse(
            SignInError("ACS_METHOD_NOT_ALLOWED", f"{request.method} to the ACS"),
            action="signin.sso",
            connection_id=connection_id,
        )
    request.max_content_length = current_app.config["SAML_ACS_MAX_BYTES"]
    try:
        try:
            saml_response = request.form.get("SAMLResponse")
        except RequestEntityTooLarge:
            raise SignInError("SAML_TOO_LARGE", f"body over {request.max_content_length} bytes") from None
        verified = consume_response(
            connection_id, saml_response, browser_binding=request.cookies.get(binding_cookie_name())
        )
        if verified.purpose == "test":
            return _test_result(verified)
        if is_app_purpose(verified.purpose):
            return app_auth.finish_sign_in(verified)
        return _sign_in(verified)
    except SignInError as err:
        if err.context.get("purpose") == "test":
            return _test_failure(connection_id, err)
        if is_app_purpose(err.context.get("purpose")):
            return app_auth.refuse_sign_in(err, connection_id)
        return refuse(err, action="signin.sso", connection_id=connection_id)


def _sign_in(verified: VerifiedAssertion) -> Response:
    """Match the user, rotate this browser's session token, and go where the sign-in asked."""
    connection = verified.connection
    email = email_from_assertion(verified)
    try:
        user = authorize(connection.account_id, email, verified.app)
    except SignInError as err:
        err.context.setdefault("account_id", connection.account_id)
        err.context.setdefault("name_id", verified.name_id)
        raise
    existing = find_live_session(request.cookies.get(session_cookie_name()), app_name="portal")
    if existing is not None:
        if verified.request_id is None and existing.user_id != user.id:
            raise SignInError(
                "SAML_SESSION_CONFLICT",
                f"IdP-initiated response for {user.email} while {existing.user_id} is signed in",
                email=user.email,
                account_id=connection.account_id,
            )
        revoke_session(existing, "replaced_at_signin")
    new = create_session(
        user,
        app_name=verified.app,
        ip=request.remote_addr,
        user_agent=request.user_agent.string,
        connection_id=connection.id,
        name_id=verified.name_id,
        session_index=verified.session_index,
    )
    audit.record(
        "signin.sso",
        account_id=connection.account_id,
        connection_id=connection.id,
        subject_email=user.email,
        details={"app": verified.app, "idp_initiated": verified.request_id is None},
    )
    db.session.commit()
    # An IdP-initiated sign-in may say where to go in RelayState; it is checked like any `next`.
    next_path = verified.next_path if verified.request_id else request.form.get("RelayState")
    response = redirect(safe_next_path(next_path))
    set_session_cookie(response, new.token)
    return response


def _test_result(verified: VerifiedAssertion) -> Response:
    """An admin's test sign-in: record what arrived, create no session, show the result page."""
    event = record_test_result(verified)
    db.session.commit()
    return redirect(url_for("setup.test_result", connection_id=verified.connection.id, event_id=event.id))


def _test_failure(connection_id: int, err: SignInError) -> Response:
    """A failed test sign-in goes to the result page with the reason and the plugin's hint."""
    db.session.rollback()
    connection = db.session.get(IdpConnection, connection_id)
    event = record_test_failure(connection, err)
    db.session.commit()
    return redirect(url_for("setup.test_result", connection_id=connection_id, event_id=event.id))
