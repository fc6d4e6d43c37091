"""Your sessions: every signed-in user sees where they are signed in and can sign out the others.

Each sign-out is confirmed on a page of its own (GET); its POST, like every POST, has its CSRF
token checked by ``CSRFProtect`` before the view runs.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.extensions import db
from app.formatting import plural
from app.models import UserSession
from app.services import confirmations
from app.services.session_display import device_label
from app.services.session_queries import OWN_SESSIONS_LIMIT, describe_live_sessions
from app.sessions import revoke_session, revoke_sessions_for_user
from app.sessions.web import current_session
from app.views.confirm import Confirmation, render_confirmation

bp = Blueprint("me", __name__, url_prefix="/me")

#: Why a session ended when its owner signed it out from another one.
SIGNED_OUT_BY_OWNER = "signed_out_by_owner"


@bp.get("/sessions")
@login_required
def sessions() -> str:
    """This user's live sessions, web and apps, the current one marked."""
    return render_template(
        "me/sessions.html",
        sessions=describe_live_sessions(current_user.id),
        current=current_session(),
        limit=OWN_SESSIONS_LIMIT,
    )


@bp.route("/sessions/<id:session_id>/revoke", methods=["GET", "POST"])
@login_required
def revoke(session_id: int) -> Response | tuple[str, int]:
    """Confirm, then sign out one other session of this user (another user's session answers 404)."""
    target = db.session.get(UserSession, session_id)
    if target is None or target.user_id != current_user.id:
        return render_template(
            "errors/http.html",
            status=404,
            code="SESSION_NOT_FOUND",
            title="No such session",
            message="This session does not exist or is not yours. Nothing was changed.",
        ), 404
    this = current_session()
    if request.method == "GET" and not (this is not None and target.id == this.id):
        said = confirmations.sign_out_one(target, "Your")
        return render_confirmation(
            Confirmation(
                title=f"Sign out of {device_label(target.user_agent, target.app)}?",
                consequence=said.sentence,
                details=(*said.details, "Signing out here does not sign you out of your company's identity provider."),
                action=url_for("me.revoke", session_id=target.id),
                button="Sign out this session",
                cancel=url_for("me.sessions"),
                testid="confirm-sign-out-session",
                breadcrumb=(("Your sessions", url_for("me.sessions")),),
            )
        )
    if this is not None and target.id == this.id:
        flash("This is the session you are using: use Sign out at the top of the page to end it.", "info")
    elif revoke_session(target, SIGNED_OUT_BY_OWNER):
        db.session.commit()
        flash(f"Signed out the {target.app} session.", "success")
    else:
        flash("That session had already ended.", "info")
    return redirect(url_for("me.sessions"))


@bp.route("/sessions/revoke-others", methods=["GET", "POST"])
@login_required
def revoke_others() -> Response | tuple[str, int]:
    """Confirm, then sign out every session of this user except the one in use (web and apps)."""
    this = current_session()
    if request.method == "GET":
        said = confirmations.sign_out_others(current_user, this.id if this else None)
        return render_confirmation(
            Confirmation(
                title="Sign out all other sessions?",
                consequence=said.sentence,
                details=("Signing out here does not sign you out of your company's identity provider.",),
                action=url_for("me.revoke_others"),
                button="Sign out other sessions",
                cancel=url_for("me.sessions"),
                testid="confirm-sign-out-others",
                breadcrumb=(("Your sessions", url_for("me.sessions")),),
            )
        )
    revoked = revoke_sessions_for_user(current_user, SIGNED_OUT_BY_OWNER, keep_session_id=this.id if this else None)
    db.session.commit()
    flash(f"Signed out {plural(revoked, 'other session')}." if revoked else "There were no other sessions.", "success")
    return redirect(url_for("me.sessions"))
