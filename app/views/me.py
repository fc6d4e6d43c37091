"""Your sessions: every signed-in user sees where they are signed in and can sign out the others."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.extensions import db
from app.models import UserSession
from app.services.session_queries import OWN_SESSIONS_LIMIT, live_sessions_of
from app.sessions import revoke_session, revoke_sessions_for_user
from app.sessions.web import current_session
from app.views.forms import Form

bp = Blueprint("me", __name__, url_prefix="/me")

#: Why a session ended when its owner signed it out from another one.
SIGNED_OUT_BY_OWNER = "signed_out_by_owner"


class SignOutForm(Form):
    """A sign-out button for one or all other sessions. Its CSRF token is checked for every POST
    by ``CSRFProtect`` before the view runs."""


@bp.get("/sessions")
@login_required
def sessions() -> str:
    """This user's live sessions, web and apps, the current one marked."""
    return render_template(
        "me/sessions.html",
        sessions=live_sessions_of(current_user.id),
        current=current_session(),
        form=SignOutForm(),
        limit=OWN_SESSIONS_LIMIT,
    )


@bp.post("/sessions/<id:session_id>/revoke")
@login_required
def revoke(session_id: int) -> Response | tuple[str, int]:
    """Sign out one other session of this user (another user's session answers 404)."""
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
    if this is not None and target.id == this.id:
        flash("This is the session you are using: use Sign out at the top of the page to end it.", "info")
    elif revoke_session(target, SIGNED_OUT_BY_OWNER):
        db.session.commit()
        flash(f"Signed out the {target.app} session.", "success")
    else:
        flash("That session had already ended.", "info")
    return redirect(url_for("me.sessions"))


@bp.post("/sessions/revoke-others")
@login_required
def revoke_others() -> Response:
    """Sign out every session of this user except the one in use (web and apps)."""
    this = current_session()
    revoked = revoke_sessions_for_user(current_user, SIGNED_OUT_BY_OWNER, keep_session_id=this.id if this else None)
    db.session.commit()
    flash(
        f"Signed out {revoked} other session{'s' if revoked != 1 else ''}."
        if revoked
        else "There were no other sessions.",
        "success",
    )
    return redirect(url_for("me.sessions"))
