"""The Single Logout Service: the IdP's LogoutRequests and its answers to ours."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from app.errors import LogoutError, SignInError
from app.extensions import csrf, db
from app.services.single_logout import handle_sls_message
from app.sessions.web import binding_cookie_name
from app.views.errors import refuse

bp = Blueprint("slo", __name__, url_prefix="/saml")


# The SLS is exempt from CSRF tokens on purpose: the IdP sends its messages cross-site (a redirect,
# or an auto-submitted form in the POST binding). What protects it is the message itself: the
# IdP's signature, the exact Destination, freshness, the replay cache, and for a LogoutResponse an
# InResponseTo bound to a logout this browser started.
@bp.route("/<id:connection_id>/sls", methods=["GET", "POST"])
@csrf.exempt
def sls(connection_id: int) -> Response | tuple[str, int]:
    """Single Logout Service (HTTP-Redirect and HTTP-POST bindings)."""
    request.max_content_length = current_app.config["SAML_ACS_MAX_BYTES"]
    try:
        try:
            form = request.form.to_dict(flat=False)
        except RequestEntityTooLarge:
            raise LogoutError("SAML_TOO_LARGE", f"body over {request.max_content_length} bytes") from None
        outcome = handle_sls_message(
            connection_id,
            method=request.method,
            query_string=request.query_string.decode("latin-1"),
            form=form,
            browser_binding=request.cookies.get(binding_cookie_name()),
        )
        db.session.commit()
    except SignInError as err:
        return refuse(err, action="signout.slo", connection_id=connection_id)
    if outcome.kind == "request":
        if outcome.location:
            return redirect(outcome.location)
        flash(f"You were signed out by {outcome.idp_name}.", "info")
    elif outcome.confirmed:
        flash(f"You are signed out here and at {outcome.idp_name}.", "info")
    else:
        flash(
            f"You are signed out here, but {outcome.idp_name} did not confirm signing you out there. "
            "Close your browser to be sure.",
            "warning",
        )
    return redirect(url_for("auth.login"))
