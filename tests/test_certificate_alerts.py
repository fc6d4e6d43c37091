"""Certificate alerts (home, setup, support, `flask idp check-certs`) and scheduled metadata refresh."""

from __future__ import annotations

import json

from app.extensions import db
from app.models import IdpConnection
from app.saml import certificate_info
from app.services.connections import add_certificates
from tests.helpers.audit import audit_events
from tests.helpers.metadata import idp_metadata, make_cert
from tests.helpers.web import another_browser, log_in
from tests.test_setup_import import metadata_server  # noqa: F401 - the fixture

REDIRECT_SSO = "https://idp.example.test/sso/redirect"


def _check(runner) -> tuple[int, dict]:
    result = runner.invoke(args=["idp", "check-certs", "--json"])
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


def _expiring(connection: IdpConnection, days: int = 10) -> None:
    """Leave the connection only a certificate that expires in ``days`` days."""
    connection.certificates.clear()
    add_certificates(connection, [certificate_info(make_cert(days=days))])
    db.session.commit()


def test_check_certs_exits_non_zero_on_an_expiring_idp_certificate(runner, acme):
    assert _check(runner) == (0, {"warning_days": 30, "alerts": []})
    _expiring(acme["connection"])
    code, out = _check(runner)
    assert code == 1
    [alert] = out["alerts"]
    assert alert["kind"] == "idp_signing" and alert["state"] == "expiring" and alert["account_slug"] == "acme"
    assert 8 <= alert["days_left"] <= 10


def test_a_finished_rollover_is_not_an_alert(runner, acme):
    _expiring(acme["connection"])
    add_certificates(acme["connection"], [certificate_info(make_cert(days=400))])
    db.session.commit()
    assert _check(runner)[0] == 0


def test_alerts_show_to_the_accounts_admins_and_to_support(app, acme, make_account, make_user):
    _expiring(acme["connection"])
    admin = another_browser(app)
    log_in(admin, acme["admin"])
    assert "Certificates expiring soon" in admin.get("/portal/").get_data(as_text=True)
    assert "Certificates expiring soon" in admin.get("/setup/accounts/acme/").get_data(as_text=True)
    staff_account = make_account("phoneco", "Phone Co")
    staff = another_browser(app)
    log_in(staff, make_user(staff_account, "helpdesk@phoneco.example", "support"))
    page = staff.get("/support/accounts").get_data(as_text=True)
    assert "Certificates expiring soon" in page and "acme" in page
    # Another account's admin sees nothing of Acme's.
    other = make_account("beta", "Beta")
    beta_admin = another_browser(app)
    log_in(beta_admin, make_user(other, "admin@beta.example", "admin"))
    assert "Certificates expiring soon" not in beta_admin.get("/portal/").get_data(as_text=True)


def test_refresh_all_adds_certificates_and_holds_a_changed_sso_url(runner, acme, idp, make_connection, metadata_server):  # noqa: F811
    connection = acme["connection"]
    connection.idp_sso_url = REDIRECT_SSO
    connection.idp_metadata_url = metadata_server.url + "/acme"
    moved = make_connection(acme["account"])  # its SSO URL differs from what its metadata now says
    moved.idp_metadata_url = metadata_server.url + "/moved"
    db.session.commit()
    metadata_server.routes["/acme"] = (200, {}, idp_metadata(idp.cert_pem, extra_cert=make_cert(days=700)), 0)
    metadata_server.routes["/moved"] = (200, {}, idp_metadata(idp.cert_pem), 0)

    result = runner.invoke(args=["idp", "refresh", "--all", "--json"])

    assert result.exit_code == 1
    out = json.loads(result.output.strip().splitlines()[-1])
    by_id = {entry["id"]: entry for entry in out["connections"]}
    assert by_id[connection.id]["certificates_added"] == 1
    assert by_id[moved.id]["error"] == "REFRESH_HELD"
    db.session.expire_all()
    assert len(db.session.get(IdpConnection, connection.id).certificates) == 2
    assert db.session.get(IdpConnection, moved.id).idp_sso_url != REDIRECT_SSO  # not applied
    assert audit_events("connection.import", connection)[-1].details["certificates_added"] == 1
    assert audit_events("connection.import", moved)[-1].error_code == "REFRESH_HELD"
