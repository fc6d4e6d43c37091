"""The Account Portal's home: where a signed-in admin (or staff member) lands, and what to do next."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from app.services.certificate_alerts import certificate_alerts
from app.services.onboarding import EXPIRY_WARNING_DAYS, admin_checklist, demo_idp_metadata_url, person_summary
from app.sessions.web import current_session
from app.views.access import app_access_required
from app.views.forms import LogoutForm

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("/")
@app_access_required("portal")
def home() -> str:
    """An admin's setup checklist for their account; everyone's apps and sessions."""
    is_admin = "admin" in current_user.role_list
    return render_template(
        "portal/home.html",
        user=current_user,
        session=current_session(),
        logout_form=LogoutForm(),
        cert_alerts=certificate_alerts(current_user.account) if is_admin else [],
        checklist=admin_checklist(current_user.account) if is_admin else None,
        person=person_summary(current_user),
        demo_metadata_url=demo_idp_metadata_url() if is_admin else None,
        expiry_warning_days=EXPIRY_WARNING_DAYS,
    )
