"""JSON API for apps and scripts.

Exempt from CSRF tokens on purpose: state-changing calls authenticate with a bearer token in the
Authorization header, which a browser never adds by itself; cookies are read only by GET /me.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask_login import current_user, login_required

from app.extensions import csrf
from app.sessions.web import current_session

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@bp.get("/me")
@login_required
def me() -> Response:
    """Who this session belongs to: 200 for a live session, else 401."""
    session = current_session()
    return jsonify(
        email=current_user.email,
        name=current_user.name,
        account=current_user.account.slug,
        roles=current_user.role_list,
        app=session.app,
        expires_at=session.expires_at.isoformat() + "Z",
    )
