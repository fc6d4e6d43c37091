"""Sign-in: the sign-in page, starting SSO, password sign-in, sign-out."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from app import audit
from app.errors import SignInError
from app.extensions import db
from app.models import AuditEvent
from app.redirects import safe_next_path
from app.saml.core import start_login
from app.services.signin import authorize, connection_for_email
from app.services.users import find_user_by_email, normalise_email
from app.sessions import create_session, revoke_session
from app.sessions.web import (
    browser_binding,
    clear_session_cookie,
    current_session,
    set_binding_cookie,
    set_session_cookie,
)
from app.timeutil import utcnow
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
    try:
        if app_name != "portal":
            raise SignInError("UNKNOWN_APP", f"app {app_name!r} cannot start at /sso/start")
        if not email.strip():
            raise SignInError("SSO_NOT_CONFIGURED", "no email given")
        _user, connection = connection_for_email(email)
        binding, is_new = browser_binding()
        location = start_login(connection, app_name=app_name, next_path=next_path, browser_binding=binding)
        audit.record(
            "signin.sso_start",
            account_id=connection.account_id,
            connection_id=connection.id,
            subject_email=normalise_email(email),
        )
        db.session.commit()
    except SignInError as err:
        return refuse(err, action="signin.sso_start")
    response = redirect(location)
    if is_new:
        set_binding_cookie(response, binding)
    return response


def _recent_password_failures(email: str, ip: str | None) -> tuple[int, int]:
    since = utcnow() - dt.timedelta(seconds=current_app.config["PASSWORD_FAILURE_WINDOW_SECONDS"])
    base = select(func.count(AuditEvent.id)).where(
        AuditEvent.action == "signin.password",
        AuditEvent.outcome == "failure",
        AuditEvent.error_code == "INVALID_CREDENTIALS",
        AuditEvent.created_at >= since,
    )
    by_email = db.session.scalar(base.where(AuditEvent.subject_email == email)) or 0
    by_ip = (db.session.scalar(base.where(AuditEvent.ip == ip)) or 0) if ip else 0
    return by_email, by_ip


@bp.post("/login/password")
def password_login() -> Response | tuple[str, int]:
    """Email + password, for accounts that do not require SSO; failures are rate-limited."""
    form = PasswordLoginForm()
    if not form.validate():
        flash("Enter your email and password.", "error")
        return redirect(url_for("auth.login"))
    email = normalise_email(form.email.data)
    limit = current_app.config["PASSWORD_MAX_FAILURES"]
    try:
        by_email, by_ip = _recent_password_failures(email, request.remote_addr)
        if by_email >= limit or by_ip >= limit * 5:
            raise SignInError(
                "LOGIN_RATE_LIMITED", f"{by_email} failures for the email, {by_ip} for the IP", email=email
            )
        user = find_user_by_email(email)
        # Hash check even for unknown users, so that timing does not reveal who exists.
        known_hash = user.password_hash if user and user.password_hash else None
        password_ok = check_password_hash(known_hash or _DUMMY_HASH, form.password.data) and known_hash
        if user is None or not password_ok:
            raise SignInError("INVALID_CREDENTIALS", "wrong email or password", email=email)
        if user.account.sso_required:
            raise SignInError("SSO_REQUIRED", "the account requires SSO", email=email, account_id=user.account_id)
        authorize(user.account_id, user.email, "portal")
        _replace_browser_session("replaced_at_signin")
        new = create_session(user, app_name="portal", ip=request.remote_addr, user_agent=request.user_agent.string)
        audit.record("signin.password", account_id=user.account_id, subject_email=user.email)
        db.session.commit()
    except SignInError as err:
        return refuse(err, action="signin.password", template="errors/signin.html")
    response = redirect(safe_next_path(form.next.data))
    set_session_cookie(response, new.token)
    return response


#: Checked against when the email is unknown, so that both paths cost one scrypt.
_DUMMY_HASH = "scrypt:32768:8:1$mKfPq0dX7l4xyzAb$" + "0" * 128


def _replace_browser_session(reason: str) -> None:
    """Revoke the session this browser already had: a sign-in always starts a fresh token."""
    existing = current_session()
    if existing is not None:
        revoke_session(existing, reason)


@bp.post("/logout")
def logout() -> Response:
    """End this session only (other devices, and the IdP session, stay signed in)."""
    form = LogoutForm()
    if form.validate():
        existing = current_session()
        if existing is not None:
            revoke_session(existing, "logout")
            audit.record("signout", account_id=existing.account_id, subject_email=current_user.email)
            db.session.commit()
        flash("You are signed out. Your identity provider may still be signed in.", "info")
    response = redirect(url_for("auth.login"))
    clear_session_cookie(response)
    return response
