"""Sign-in: the sign-in page, starting SSO, password sign-in, sign-out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app.errors import SignInError
from app.extensions import db
from app.redirects import safe_next_path
from app.services.signin import password_sign_in, start_sso
from app.services.single_logout import start_single_logout
from app.sessions import revoke_session
from app.sessions.web import (
    browser_binding,
    clear_session_cookie,
    current_session,
    set_binding_cookie,
    set_session_cookie,
)
from app.views.errors import refuse
from app.views.forms import LogoutForm, PasswordLoginForm, SsoStartForm

bp = Blueprint("auth", __name__)


@bp.get("/")
def index() -> Response:
    if current_user.is_authenticated:
        return redirect(url_for("portal.home"))
    return redirect(url_for("auth.login"))


@bp.get("/login")
def login() -> str:
    """The sign-in page: SSO by email first, and a password form for accounts that allow it."""
    next_path = safe_next_path(request.args.get("next"))
    sso_form = SsoStartForm(data={"next": next_path, "email": request.args.get("email", "")})
    password_form = PasswordLoginForm(data={"next": next_path})
    return render_template("auth/login.html", sso_form=sso_form, password_form=password_form)


@bp.get("/sso/start")
def sso_start() -> Response | tuple[str, int]:
    """Find the account's IdP from the email and send the browser there with an AuthnRequest."""
    email = request.args.get("email", "")[:320]
    app_name = request.args.get("app", "portal")
    next_path = safe_next_path(request.args.get("next"))
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
