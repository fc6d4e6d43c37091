"""The support console, for staff (role ``support``) across all accounts: sessions, their detail and
revocation, the audit log, and the accounts.

Revocations are confirmed on a page of their own (GET); their POST, like every POST, has its CSRF
token checked by ``CSRFProtect`` before the view runs.

Every staff action is audited: revocations, and every look at one person's session detail (it
shows their IP address and device). Filters are typed by people: a bad one is shown as a message
with a stable code, never a 500.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app import audit
from app.extensions import db
from app.formatting import plural
from app.models import User, UserSession
from app.services import confirmations
from app.services.account_directory import list_accounts
from app.services.audit_log import AuditFilters, list_audit_events
from app.services.certificate_alerts import certificate_alerts
from app.services.listing import Cursor, FilterError
from app.services.session_queries import ORDERS, SessionFilters, list_sessions, session_detail
from app.sessions import revoke_session, revoke_sessions_for_user
from app.views.access import role_required
from app.views.confirm import Confirmation, render_confirmation

bp = Blueprint("support", __name__, url_prefix="/support")

STAFF_ROLE = "support"
#: Why a session ended, as written on the session and shown to support.
REVOKED_BY_SUPPORT = "revoked_by_support"


def _not_found(code: str, title: str, message: str) -> tuple[str, int]:
    return render_template("errors/http.html", status=404, code=code, title=title, message=message), 404


def _cursors() -> tuple[Cursor | None, Cursor | None]:
    return Cursor.decode(request.args.get("after")), Cursor.decode(request.args.get("before"))


@bp.get("/")
@role_required(STAFF_ROLE)
def index() -> Response:
    return redirect(url_for("support.sessions"))


@bp.get("/sessions")
@role_required(STAFF_ROLE)
def sessions() -> str | tuple[str, int]:
    """Sessions of every account, filtered by account, email, app, state, last use; newest first,
    or in the order the filter reads best (``session_queries.ORDERS``), shown in the table."""
    try:
        filters = SessionFilters.parse(request.args)
        after, before = _cursors()
        result = list_sessions(filters, after=after, before=before)
    except FilterError as err:
        return render_template("support/sessions.html", filters=None, result=None, error=err, args=request.args), 400
    return render_template(
        "support/sessions.html", filters=filters, result=result, error=None, args=request.args, orders=ORDERS
    )


@bp.get("/sessions/<id:session_id>")
@role_required(STAFF_ROLE)
def session(session_id: int) -> str | tuple[str, int]:
    """One session's detail: times, IP, device, app, how the user signed in."""
    detail = session_detail(session_id)
    if detail is None:
        return _not_found(
            "SESSION_NOT_FOUND",
            "No such session",
            f"There is no session {session_id}. It may have been purged after it ended; search the sessions list again.",
        )
    audit.record(
        "support.session_view",
        account_id=detail.session.account_id,
        subject_email=detail.user.email if detail.user else None,
        details={"session_id": session_id},
    )
    db.session.commit()
    return render_template("support/session.html", detail=detail)


@bp.route("/sessions/<id:session_id>/revoke", methods=["GET", "POST"])
@role_required(STAFF_ROLE)
def revoke(session_id: int) -> Response | tuple[str, int]:
    """Confirm, then end one session at once (the user's other sessions go on)."""
    target = db.session.get(UserSession, session_id)
    if target is None:
        return _not_found(
            "SESSION_NOT_FOUND",
            "No such session",
            f"There is no session {session_id}, so nothing was revoked. It may have been purged after it ended.",
        )
    if request.method == "GET":
        whose = f"{target.user.email}'s" if target.user else "A deleted user's"
        said = confirmations.sign_out_one(target, whose)
        return render_confirmation(
            Confirmation(
                title=f"Revoke session {session_id}?",
                consequence=said.sentence,
                details=(*said.details, "The user's identity provider session is not affected."),
                action=url_for("support.revoke", session_id=session_id),
                button="Revoke this session",
                cancel=url_for("support.session", session_id=session_id),
                testid="confirm-revoke-session",
                breadcrumb=(
                    ("Sessions", url_for("support.sessions")),
                    (f"Session {session_id}", url_for("support.session", session_id=session_id)),
                ),
            )
        )
    if not revoke_session(target, REVOKED_BY_SUPPORT):
        flash(f"Session {session_id} had already ended ({target.revoked_reason}); nothing changed.", "info")
        return redirect(url_for("support.session", session_id=session_id))
    db.session.commit()
    flash(f"Session {session_id} is revoked: its next request is refused.", "success")
    return redirect(url_for("support.session", session_id=session_id))


@bp.route("/users/<id:user_id>/revoke-sessions", methods=["GET", "POST"])
@role_required(STAFF_ROLE)
def revoke_user_sessions(user_id: int) -> Response | tuple[str, int]:
    """Confirm, then end every session of one user, on every device and app."""
    back = (request.form if request.method == "POST" else request.args).get("back_to_session", type=int)
    user = db.session.get(User, user_id)
    if user is None:
        return _not_found(
            "USER_NOT_FOUND",
            "No such user",
            f"There is no user {user_id}, so nothing was revoked. They may have been deleted.",
        )
    if request.method == "GET":
        said = confirmations.sign_out_everywhere(user)
        cancel = url_for("support.session", session_id=back) if back else url_for("support.sessions", email=user.email)
        return render_confirmation(
            Confirmation(
                title=f"Revoke every session of {user.email}?",
                consequence=said.sentence,
                details=(*said.details, "The user's identity provider session is not affected."),
                action=url_for("support.revoke_user_sessions", user_id=user_id),
                button="Revoke all sessions",
                cancel=cancel,
                hidden={"back_to_session": str(back)} if back else {},
                testid="confirm-revoke-all",
                breadcrumb=(("Sessions", url_for("support.sessions")), (user.email, "")),
            )
        )
    revoked = revoke_sessions_for_user(user, REVOKED_BY_SUPPORT)
    db.session.commit()
    flash(f"Revoked {plural(revoked, 'session')} of {user.email}.", "success")
    if back:
        return redirect(url_for("support.session", session_id=back))
    return redirect(url_for("support.sessions", email=user.email))


@bp.get("/audit")
@role_required(STAFF_ROLE)
def audit_log() -> str | tuple[str, int]:
    """The audit trail of every account, newest first, with filters."""
    try:
        filters = AuditFilters.parse(request.args)
        after, before = _cursors()
        result = list_audit_events(filters, after=after, before=before)
    except FilterError as err:
        return render_template("support/audit.html", filters=None, result=None, error=err, args=request.args), 400
    return render_template("support/audit.html", filters=filters, result=result, error=None, args=request.args)


@bp.get("/accounts")
@role_required(STAFF_ROLE)
def accounts() -> str:
    """Every account with its user counts and how its users sign in."""
    search = request.args.get("q", "")
    rows, next_after = list_accounts(search, after=request.args.get("after"))
    return render_template(
        "support/accounts.html", rows=rows, next_after=next_after, search=search, cert_alerts=certificate_alerts()
    )
