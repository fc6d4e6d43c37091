"""The SAML endpoints: SP metadata and the Assertion Consumer Service."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from app.errors import SignInError
from app.extensions import csrf, db
from app.models import IdpConnection
from app.saml import VerifiedAssertion, consume_response, sp_metadata_xml
from app.services.connection_tests import record_test_failure, record_test_result
from app.services.native_apps import is_app_purpose
from app.services.signin import finish_sso_sign_in
from app.sessions.web import binding_cookie_name, current_session, set_session_cookie
from app.views import app_auth
from app.views.errors import refuse

bp = Blueprint("saml", __name__, url_prefix="/saml")


@bp.get("/<id:connection_id>/metadata")
def metadata(connection_id: int) -> Response | tuple[str, int]:
    """SP metadata for one connection (public: the IdP admin or the IdP itself downloads it)."""
    connection = db.session.get(IdpConnection, connection_id)
    if connection is None:
        return refuse(SignInError("CONNECTION_NOT_FOUND", f"no connection {connection_id}"), action="saml.metadata")
    return Response(sp_metadata_xml(connection), mimetype="application/samlmetadata+xml")


# The ACS is exempt from CSRF tokens on purpose: the IdP posts here cross-site. What protects it
# is the SAML validation itself, with InResponseTo bound to a pending request of this browser.
@bp.route("/<id:connection_id>/acs", methods=["GET", "POST"])
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
    """A web sign-in: the sign-in service decides, this sets the new session's cookie."""
    signed_in = finish_sso_sign_in(
        verified,
        current=current_session(),
        relay_state=request.form.get("RelayState"),
        ip=request.remote_addr,
        user_agent=request.user_agent.string,
    )
    db.session.commit()
    response = redirect(signed_in.next_path)
    set_session_cookie(response, signed_in.token)
    return response


def _test_result(verified: VerifiedAssertion) -> Response:
    """An admin's test sign-in: record what arrived, create no session, show the result page."""
    event = record_test_result(verified)
    db.session.commit()
    return redirect(url_for("setup.test_result", connection_id=verified.connection.id, event_id=event.id))


def _test_failure(connection_id: int, err: SignInError) -> Response | tuple[str, int]:
    """A failed test sign-in goes to the result page with the reason and the plugin's hint."""
    db.session.rollback()
    connection = db.session.get(IdpConnection, connection_id)
    if connection is None:  # deleted while its test was under way: an ordinary refusal
        return refuse(err, action="signin.sso", connection_id=connection_id)
    event = record_test_failure(connection, err)
    db.session.commit()
    return redirect(url_for("setup.test_result", connection_id=connection_id, event_id=event.id))
