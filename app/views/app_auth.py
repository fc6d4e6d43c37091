"""Desktop and mobile app sign-in in the system browser (RFC 8252): the authorize endpoint, and
how the ACS ends an app's sign-in (a code, or the refusal, sent back to the app)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from app.errors import SignInError
from app.extensions import db
from app.saml import VerifiedAssertion
from app.services.native_apps import complete_app_sign_in, parse_authorize_request, refusal_redirect, start_app_sign_in
from app.sessions.web import browser_binding, set_binding_cookie
from app.views.errors import record_refusal, refuse
from app.views.forms import AppSignInEmailForm

bp = Blueprint("app_auth", __name__, url_prefix="/sso/app")

#: Bad requests show this page: a code never goes to a redirect URI we have not checked.
ERROR_TEMPLATE = "app_auth/error.html"


@bp.get("/authorize")
def authorize() -> tuple[str, int] | str:
    """Check the app's request, then ask for (or show, from ``login_hint``) the work email with a
    "Continue" button. Never a redirect to the IdP by itself: starting a sign-in is a user action,
    as on the sign-in page (a third-party page must not start one in a victim's browser)."""
    try:
        params = parse_authorize_request(request.args)
    except SignInError as err:
        return refuse(err, action="signin.sso_start", template=ERROR_TEMPLATE)
    form = AppSignInEmailForm(formdata=None, data={"login_hint": params.login_hint or ""})
    return render_template("app_auth/email.html", form=form, params=params)


@bp.post("/authorize")
def start() -> Response | tuple[str, int] | str:
    """The "Continue" button (CSRF-checked): the same parameters, checked again, and the email;
    go to the IdP of the email's account."""
    try:
        params = parse_authorize_request(request.form)
    except SignInError as err:
        return refuse(err, action="signin.sso_start", template=ERROR_TEMPLATE)
    form = AppSignInEmailForm(formdata=None, data={"login_hint": params.login_hint or ""})
    if params.login_hint is None:
        return render_template("app_auth/email.html", form=form, params=params)
    binding, is_new = browser_binding()
    try:
        location = start_app_sign_in(params, browser_binding=binding)
        db.session.commit()
    except SignInError as err:
        if err.code == "SSO_NOT_CONFIGURED":
            # Most likely a typo in the address: let the person correct it on the same page.
            return refuse(err, action="signin.sso_start", template="app_auth/email.html", form=form, params=params)
        return refuse(err, action="signin.sso_start", template=ERROR_TEMPLATE)
    response = redirect(location)
    if is_new:
        set_binding_cookie(response, binding)
    return response


def finish_sign_in(verified: VerifiedAssertion) -> Response | tuple[str, int]:
    """The ACS's ending for an app: the browser goes back to the app with a one-time code."""
    try:
        location = complete_app_sign_in(verified)
    except SignInError as err:
        return refuse_sign_in(err, verified.connection.id)
    db.session.commit()
    return redirect(location)


def refuse_sign_in(err: SignInError, connection_id: int) -> Response | tuple[str, int]:
    """A refused app sign-in goes back to the app as ``error=access_denied`` with our code when its
    redirect URI is known (it was checked at authorize time); otherwise the error page shows."""
    db.session.rollback()
    location = refusal_redirect(err)
    if location is None:
        return refuse(err, action="signin.sso", connection_id=connection_id, template=ERROR_TEMPLATE)
    record_refusal(err, action="signin.sso", connection_id=connection_id)
    db.session.commit()
    return redirect(location)
