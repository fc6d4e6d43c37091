"""`flask idp set` and `flask idp show --json`: every option from the command line, same checks."""

from __future__ import annotations

from app.extensions import db
from app.saml import resolve_options
from tests.helpers.audit import audit_events
from tests.test_cli import run


def test_set_single_logout_and_idp_initiated_then_show(runner, make_account, make_connection):
    connection = make_connection(make_account(), "okta")
    out = run(runner, "idp", "set", str(connection.id), "--single-logout", "on", "--idp-initiated", "on")
    assert sorted(out["changed"]) == ["allow_idp_initiated", "single_logout"]
    assert out["warnings"]  # the IdP's SLO URL is not known yet
    db.session.expire_all()
    assert resolve_options(connection).single_logout and connection.allow_idp_initiated
    shown = run(runner, "idp", "show", str(connection.id))
    assert shown["options"] == {
        "single_logout": True,
        "encrypt_assertions": "off",
        "sign_requests": False,
        "signed_element": "any",  # every plugin's default: a signature on the assertion or the Response
        "idp_initiated": True,
    }
    assert shown["sls_url"] == f"https://sso.test/saml/{connection.id}/sls"
    [event] = audit_events("connection.update", connection)
    assert event.actor == "cli" and event.details["changed"]["single_logout"] == {"from": False, "to": True}
    again = run(runner, "idp", "set", str(connection.id), "--single-logout", "on")
    assert again["changed"] == [] and len(audit_events("connection.update", connection)) == 1
    assert run(runner, "idp", "set", str(connection.id), "--single-logout", "off")["options"]["single_logout"] is False


def test_set_signed_element_is_checked_by_the_service(runner, make_account, make_connection):
    connection = make_connection(make_account())
    out = run(runner, "idp", "set", str(connection.id), "--signed-element", "both")
    assert out["options"]["signed_element"] == "both"
    result = runner.invoke(args=["idp", "set", str(connection.id), "--signed-element", "nothing", "--json"])
    assert result.exit_code == 2  # not one of the choices: click refuses it before any change


def test_refusals_change_nothing(runner, make_account, make_connection):
    google = make_connection(make_account(), "google")
    refused = run(runner, "idp", "set", str(google.id), "--single-logout", "on", ok=False)
    assert refused["error"] == "OPTION_UNSUPPORTED" and "Single Logout" in refused["message"]
    assert run(runner, "idp", "set", "999999", "--single-logout", "on", ok=False)["error"] == "CONNECTION_NOT_FOUND"
    db.session.expire_all()
    assert resolve_options(google).single_logout is False
    assert audit_events("connection.update", google) == []


def test_sign_requests_from_the_command_line(runner, make_account, make_connection):
    connection = make_connection(make_account())
    out = run(runner, "idp", "set", str(connection.id), "--sign-requests", "on")
    assert out["changed"] == ["sign_requests"] and out["options"]["sign_requests"] is True
    xml = run(runner, "idp", "sp-metadata", str(connection.id))["metadata"]
    assert 'AuthnRequestsSigned="true"' in xml


def test_encryption_from_the_command_line_with_a_key_rollover(runner, make_account, make_connection):
    connection = make_connection(make_account())
    out = run(runner, "idp", "set", str(connection.id), "--encrypt-assertions", "require")
    assert out["options"]["encrypt_assertions"] == "require"
    [first] = out["encryption_certificates"]
    assert first["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    added = run(runner, "idp", "encryption-key", str(connection.id), "--add")
    assert [key["id"] for key in added["encryption_certificates"]] == [added["key_id"], first["id"]]
    retired = run(runner, "idp", "encryption-key", str(connection.id), "--retire", str(first["id"]))
    assert [key["id"] for key in retired["encryption_certificates"]] == [added["key_id"]]
    last = run(runner, "idp", "encryption-key", str(connection.id), "--retire", str(added["key_id"]), ok=False)
    assert last["error"] == "KEY_LAST"
    result = runner.invoke(args=["idp", "set", str(connection.id), "--encrypt-assertions", "sometimes", "--json"])
    assert result.exit_code == 2  # not a choice
