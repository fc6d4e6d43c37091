"""JSON API for apps and scripts.

Exempt from CSRF tokens on purpose: state-changing calls authenticate with a bearer token in the
Authorization header, which a browser never adds by itself; cookies are read only by GET /me.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import login_required
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from app.extensions import csrf, db, login_manager
from app.models import UserSession
from app.services.native_apps import TokenError, exchange_code, record_token_refusal, revoke_app_session
from app.sessions.web import current_app_session, current_live_session

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@bp.get("/me")
@login_required
def me() -> Response:
    """Who this session belongs to: 200 for a live session (an app's bearer token, or the
    portal's cookie), else 401."""
    live = current_live_session()
    if live is None:  # login_required let it through: a session it cannot see is a bug
        raise RuntimeError("GET /me without a live session")
    person = live.user
    return jsonify(
        email=person.email,
        name=person.name,
        account=person.account_slug,
        roles=person.role_list,
        app=live.app,
        expires_at=live.expires_at.isoformat() + "Z",
    )


#: Largest token request read: a real one is a few hundred bytes.
TOKEN_REQUEST_MAX_BYTES = 16 * 1024


@bp.post("/token")
def token() -> Response:
    """Exchange an app's one-time code and PKCE verifier for a bearer token (RFC 6749 4.1.3).

    No client secret: a native app cannot keep one. PKCE binds the code to the app instance
    that started the sign-in. Cookies are never read here.
    """
    request.max_content_length = TOKEN_REQUEST_MAX_BYTES
    try:
        if request.mimetype != "application/x-www-form-urlencoded":
            raise TokenError("TOKEN_REQUEST_INVALID", f"content type {request.mimetype[:100]!r}")
        try:
            form = request.form
        except RequestEntityTooLarge:
            raise TokenError("TOKEN_REQUEST_INVALID", f"body over {TOKEN_REQUEST_MAX_BYTES} bytes") from None
        grant = exchange_code(form, ip=request.remote_addr, user_agent=request.user_agent.string)
    except TokenError as err:
        record_token_refusal(err)
        db.session.commit()
        response = jsonify(err.as_json())
        response.status_code = 400
        return response
    db.session.commit()
    return jsonify(grant.as_json())


@bp.post("/logout")
def logout() -> Response:
    """Revoke this app's bearer token only (other devices, and the IdP, stay signed in).

    Only a bearer token counts: this blueprint takes no CSRF token, so a browser cookie must
    never be able to sign anyone out here.
    """
    app_session = current_app_session()
    session = db.session.get(UserSession, app_session.id) if app_session is not None else None
    if session is None:
        return login_manager.unauthorized()
    revoke_app_session(session)
    db.session.commit()
    return Response(status=204)
