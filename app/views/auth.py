"""Sign-in: the sign-in page, starting SSO, password sign-in, sign-out."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.errors import SignInError
from app.extensions import db
from app.redirects import safe_next_path
from app.services.signin import finish_sso_sign_in, password_sign_in, start_sso
from app.services.single_logout import start_single_logout
from app.sessions import revoke_session
from app.sessions.web import (
    binding_cookie_name,
    browser_binding,
    clear_session_cookie,
    current_session,
    set_binding_cookie,
    set_session_cookie,
)
from app.views.errors import refuse
from app.views.finish_cookie import clear_finish_cookie, finish_cookie_name
from app.views.forms import LogoutForm, PasswordLoginForm, SsoStartForm

bp = Blueprint("auth", __name__)


@bp.get("/")
def index() -> Response:
    if current_user.is_authenticated:
        return redirect(url_for("portal.home"))
    return redirect(url_for("auth.login"))


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page links: answer with the SVG icon, not a 404."""
    # Read whole (it is tiny) rather than streamed, so that no file handle outlives the request.
    with current_app.open_resource("static/favicon.svg") as icon:
        response = Response(icon.read(), mimetype="image/svg+xml")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


@bp.get("/login")
def login() -> str:
    """The sign-in page: SSO by email first, and a password form for accounts that allow it."""
    return _login_page(request.args.get("email", ""))


#: What the sign-in page says after a request came back with a session that someone else ended.
SESSION_ENDED_MESSAGES = {
    "administrator": "You were signed out by your company's administrator.",
    "provisioning": "You were signed out by your company's administrator (through your identity provider).",
    "sso_required": "You were signed out: your company now requires single sign-on. Sign in with SSO.",
    "support": "You were signed out by our support team.",
    "yourself": "You were signed out from another of your sessions.",
    "security": "You were signed out for your security: an app's sign-in code was used twice.",
    "expired": "Your session expired after a period without use. Please sign in again.",
}


def _login_page(email: str, *, continue_sso: bool = False) -> str:
    """The sign-in page with ``email`` filled in; ``continue_sso`` labels the SSO button
    "Continue to your identity provider" (for a link or bookmark to ``/sso/start``)."""
    next_path = safe_next_path(request.args.get("next"))
    sso_form = SsoStartForm(formdata=None, data={"next": next_path, "email": email[:320]})
    password_form = PasswordLoginForm(formdata=None, data={"next": next_path})
    ended = SESSION_ENDED_MESSAGES.get(request.args.get("ended", ""))
    return render_template(
        "auth/login.html", sso_form=sso_form, password_form=password_form, continue_sso=continue_sso, ended=ended
    )


@bp.get("/sso/start")
def sso_start_page() -> str:
    """A link or bookmark to start SSO: the sign-in page with the email filled in and a
    "Continue" button. Never a redirect to the IdP by itself (a third-party page could otherwise
    start a sign-in in a victim's browser)."""
    return _login_page(request.args.get("email", ""), continue_sso=True)


@bp.post("/sso/start")
def sso_start() -> Response | tuple[str, int]:
    """The SSO form, posted with its CSRF token (checked by CSRFProtect before this runs): find
    the account's IdP from the email and send the browser there with an AuthnRequest."""
    email = request.form.get("email", "")[:320]
    app_name = request.form.get("app", "portal")
    next_path = safe_next_path(request.form.get("next"))
    binding, is_new = browser_binding()
    try:
        location = start_sso(email, app_name=app_name, next_path=next_path, browser_binding=binding)
        db.session.commit()
    except SignInError as err:
        return refuse(err, action="signin.sso_start")
    response = redirect(location)
    if is_new:
        set_binding_cookie(response, binding)
    return response


@bp.get("/sso/finish")
def sso_finish() -> Response:
    """The same-site end of a web SSO sign-in: the ACS's 303 lands here with the portal's cookies,
    so this request can see who the browser is signed in as, refuse a switch to another person,
    and replace the old session."""
    response: Response
    try:
        signed_in = finish_sso_sign_in(
            request.args.get("r"),
            browser_secret=request.cookies.get(finish_cookie_name()),
            browser_binding=request.cookies.get(binding_cookie_name()),
            current=current_session(),
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
        )
    except SignInError as err:
        db.session.commit()  # the result is used up by a refusal too
        # A browser signed in as someone else gets a button to sign out first (A's session stays).
        page = {"logout_form": LogoutForm()} if err.code == "SAML_SESSION_CONFLICT" else {}
        response = make_response(refuse(err, action="signin.sso", template="errors/signin.html", **page))
    else:
        db.session.commit()  # the new session and the claimed result, together
        response = redirect(signed_in.next_path)
        set_session_cookie(response, signed_in.token)
    clear_finish_cookie(response)
    return response


@bp.post("/login/password")
def password_login() -> Response | tuple[str, int]:
    """Email + password, for accounts that do not require SSO; failures are rate-limited."""
    form = PasswordLoginForm()
    if not form.validate():
        flash("Enter your email and password.", "error")
        return redirect(url_for("auth.login"))
    try:
        new = password_sign_in(
            form.email.data,
            form.password.data,
            current=current_session(),
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
        )
        db.session.commit()
    except SignInError as err:
        return refuse(err, action="signin.password", template="errors/signin.html")
    response = redirect(safe_next_path(form.next.data))
    set_session_cookie(response, new.token)
    return response


@bp.post("/logout")
def logout() -> Response:
    """End this session (other devices stay signed in); then, with Single Logout on, send the
    browser to the IdP with a LogoutRequest. The session here ends first, whatever the IdP does."""
    form = LogoutForm()
    binding, is_new = browser_binding()
    idp_location = None
    if form.validate():
        existing = current_session()
        if existing is not None:
            revoke_session(existing, "logout")
            db.session.commit()
            idp_location = start_single_logout(existing, browser_binding=binding)
            db.session.commit()
        if idp_location is None:
            flash("You are signed out. Your identity provider may still be signed in.", "info")
    response = redirect(idp_location or url_for("auth.login"))
    clear_session_cookie(response)
    if idp_location and is_new:
        set_binding_cookie(response, binding)
    return response
