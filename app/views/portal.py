"""The Account Portal's home: where a signed-in admin lands."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from app.services.certificate_alerts import certificate_alerts
from app.sessions.web import current_session
from app.views.access import app_access_required
from app.views.forms import LogoutForm

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("/")
@app_access_required("portal")
def home() -> str:
    alerts = certificate_alerts(current_user.account) if "admin" in current_user.role_list else []
    return render_template(
        "portal/home.html", user=current_user, session=current_session(), logout_form=LogoutForm(), cert_alerts=alerts
    )
