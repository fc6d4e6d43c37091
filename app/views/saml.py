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
from app.services.signin import record_sign_in_result
from app.sessions.web import binding_cookie_name
from app.views import app_auth
from app.views.errors import refuse
from app.views.finish_cookie import set_finish_cookie
from app.views.limits import give_back_with_commit

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
# Being cross-site, the POST carries none of the portal's SameSite=Lax cookies, so a web sign-in
# is only recorded here; the session decision happens on the same-site ``/sso/finish``.
@bp.route("/<id:connection_id>/acs", methods=["GET", "POST"])
@csrf.exempt
def acs(connection_id: int) -> Response | tuple[str, int]:
    """Assertion Consumer Service (HTTP-POST binding): validate, match the user, record the result."""
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
        if verified.purpose == "test" or is_app_purpose(verified.purpose):
            # These finish here: the response is used (replay entry, pending request) first.
            db.session.commit()
            if verified.purpose == "test":
                return _test_result(verified)
            return app_auth.finish_sign_in(verified)
        return _record_sign_in(verified)
    except SignInError as err:
        if err.context.get("purpose") == "test":
            return _test_failure(connection_id, err)
        if is_app_purpose(err.context.get("purpose")):
            return app_auth.refuse_sign_in(err, connection_id)
        return refuse(err, action="signin.sso", connection_id=connection_id)


def _record_sign_in(verified: VerifiedAssertion) -> Response:
    """A web sign-in: store the verified result and send the browser to the same-site finishing
    URL (303: the browser follows with a GET), bound to it by the finishing cookie."""
    try:
        recorded = record_sign_in_result(verified, relay_state=request.form.get("RelayState"))
    except SignInError:
        db.session.commit()  # refused, but the response stays used (replay entry, pending request)
        raise
    give_back_with_commit()  # not refused: the rate-limit place goes back in the same commit
    db.session.commit()  # replay entry + consumed pending request + the result, together
    # The token is URL-safe base64: appended as it is, without url_for's query encoding, and a
    # bare 303 without redirect()'s HTML body (the browser follows it at once).
    location = f"{url_for('auth.sso_finish')}?r={recorded.token}"
    response = Response(status=303, headers={"Location": location})
    set_finish_cookie(response, recorded.browser_secret)
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
