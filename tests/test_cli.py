"""The `flask` commands of DESIGN.md, each with --json printing one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.extensions import db
from app.models import Account, AuditEvent, IdpConnection, User, UserSession
from app.saml.metadata import MAX_METADATA_BYTES
from app.sessions import create_session, find_live_session
from config import BASE_DIR
from tests.helpers.audit import audit_events
from tests.helpers.metadata import idp_metadata


def run(runner, *args: str, input: str | None = None, ok: bool = True) -> dict:
    result = runner.invoke(args=[*args, "--json"], input=input)
    assert (result.exit_code == 0) == ok, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_accounts_and_users(runner):
    account = run(runner, "accounts", "create", "Acme", "--name", "Acme Inc", "--sso-required")
    assert account == {"id": account["id"], "slug": "acme", "name": "Acme Inc", "sso_required": True}
    user = run(
        runner, "users", "create", "Boss@Acme.example", "--account", "acme", "--roles", "admin,agent", "--name", "Boss"
    )
    assert user["email"] == "boss@acme.example" and user["roles"] == ["admin", "agent"] and user["status"] == "active"
    duplicate = run(runner, "users", "create", "boss@acme.example", "--account", "acme", "--roles", "admin", ok=False)
    assert duplicate["error"] == "USER_EXISTS"
    assert (
        run(runner, "users", "create", "x@acme.example", "--account", "acme", "--roles", "root", ok=False)["error"]
        == "ROLE_UNKNOWN"
    )
    assert (
        run(runner, "users", "create", "x@acme.example", "--account", "nope", "--roles", "admin", ok=False)["error"]
        == "ACCOUNT_NOT_FOUND"
    )
    off = run(runner, "accounts", "sso-required", "acme", "--off")
    assert off["sso_required"] is False


def test_first_admin_gets_a_password_from_stdin(runner, client, csrf_token):
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    run(
        runner,
        "users",
        "create",
        "first@acme.example",
        "--account",
        "acme",
        "--roles",
        "admin",
        "--password-stdin",
        input="a long enough password\n",
    )
    assert db.session.query(User).one().password_hash.startswith("scrypt:")
    short = run(
        runner,
        "users",
        "create",
        "second@acme.example",
        "--account",
        "acme",
        "--roles",
        "admin",
        "--password-stdin",
        input="short\n",
        ok=False,
    )
    assert short["error"] == "PASSWORD_TOO_SHORT"
    assert db.session.query(User).count() == 1
    response = client.post(
        "/login/password",
        data={"email": "first@acme.example", "password": "a long enough password", "csrf_token": csrf_token()},
    )
    assert response.status_code == 302


def test_deactivate_reactivate_delete_revoke_sessions(runner, acme):
    token = create_session(acme["admin"], app_name="portal", ip=None, user_agent=None).token
    db.session.commit()
    out = run(runner, "users", "deactivate", "admin@acme.example")
    assert out["status"] == "deactivated" and out["sessions_revoked"] == 1
    assert find_live_session(token) is None
    assert run(runner, "users", "reactivate", "admin@acme.example")["status"] == "active"
    assert find_live_session(token) is None  # reactivation does not bring old sessions back
    assert run(runner, "users", "delete", "ADMIN@acme.example")["status"] == "deleted"
    assert db.session.query(User).filter_by(email="admin@acme.example").count() == 0
    assert run(runner, "users", "delete", "admin@acme.example", ok=False)["error"] == "USER_NOT_FOUND"
    actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert {"user.deactivate", "user.reactivate", "user.delete"} <= set(actions)


def test_idp_add_from_metadata_file_prints_the_sp_values(runner, tmp_path, idp):
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    path = tmp_path / "idp.xml"
    path.write_bytes(idp_metadata(idp.cert_pem))
    out = run(runner, "idp", "add", "--account", "acme", "--provider", "okta", "--metadata-file", str(path))
    assert set(out) >= {"id", "sp_entity_id", "acs_url", "metadata_url", "sls_url", "status"}
    assert out["status"] == "draft"
    assert out["acs_url"] == f"https://sso.test/saml/{out['id']}/acs"
    assert out["sp_entity_id"] == out["metadata_url"] == f"https://sso.test/saml/{out['id']}/metadata"
    shown = run(runner, "idp", "show", str(out["id"]))
    assert shown["idp_entity_id"] == "https://idp.example.test/saml/metadata" and len(shown["certificates"]) == 1
    assert run(runner, "idp", "enable", str(out["id"]))["status"] == "enabled"
    xml = run(runner, "idp", "sp-metadata", str(out["id"]))["metadata"]
    assert "AssertionConsumerService" in xml and out["acs_url"] in xml and "X509Certificate" in xml


def test_idp_add_by_hand_and_enable_at_once(runner, tmp_path, idp):
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    cert = tmp_path / "idp.pem"
    cert.write_text(idp.cert_pem)
    out = run(
        runner,
        "idp",
        "add",
        "--account",
        "acme",
        "--provider",
        "generic",
        "--entity-id",
        "https://idp.example/",
        "--sso-url",
        "https://idp.example/sso",
        "--cert-file",
        str(cert),
        "--enable",
    )
    assert out["status"] == "enabled"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--metadata-url", "http://idp.example/metadata"], "METADATA_URL_NOT_HTTPS"),
        (["--metadata-url", "https://127.0.0.1:9/metadata"], "METADATA_URL_PRIVATE"),
        (["--metadata-url", "https://user:pw@idp.example/metadata"], "METADATA_URL_INVALID"),
        (["--entity-id", "https://idp.example/"], "IDP_SOURCE"),
        ([], "IDP_SOURCE"),
    ],
)
def test_idp_add_refuses_bad_sources_and_saves_nothing(runner, args, code):
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    out = run(runner, "idp", "add", "--account", "acme", "--provider", "okta", *args, ok=False)
    assert out["error"] == code
    assert db.session.query(IdpConnection).count() == 0


def test_idp_add_with_bad_metadata_file_saves_nothing(runner, tmp_path):
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    path = tmp_path / "bad.xml"
    path.write_text("<html>not metadata</html>")
    out = run(runner, "idp", "add", "--account", "acme", "--provider", "okta", "--metadata-file", str(path), ok=False)
    assert out["error"] == "METADATA_NOT_SAML"
    assert db.session.query(IdpConnection).count() == 0


def test_unknown_provider_is_refused(runner, tmp_path, idp):
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    path = tmp_path / "idp.xml"
    path.write_bytes(idp_metadata(idp.cert_pem))
    out = run(
        runner, "idp", "add", "--account", "acme", "--provider", "myspace", "--metadata-file", str(path), ok=False
    )
    assert out["error"] == "PROVIDER_UNKNOWN"


def test_sessions_list_and_revoke(runner, acme):
    first = create_session(acme["admin"], app_name="portal", ip="10.0.0.1", user_agent="UA")
    create_session(acme["admin"], app_name="desktop", ip=None, user_agent=None)
    db.session.commit()
    listed = run(runner, "sessions", "list", "--user", "admin@acme.example")["sessions"]
    assert len(listed) == 2 and {s["app"] for s in listed} == {"portal", "desktop"}
    assert run(runner, "sessions", "revoke", "--id", str(first.session.id))["revoked"] == 1
    assert run(runner, "sessions", "revoke", "--user", "admin@acme.example")["revoked"] == 1
    assert db.session.query(UserSession).filter(UserSession.revoked_at.is_(None)).count() == 0
    assert run(runner, "sessions", "revoke", "--id", "99999", ok=False)["error"] == "SESSION_NOT_FOUND"
    assert run(runner, "sessions", "list", "--account", "acme")["sessions"][0]["live"] is False


def test_demo_setup_is_refused_outside_development(runner):
    assert run(runner, "demo", "setup", ok=False)["error"] == "DEMO_DISABLED"
    assert db.session.query(Account).count() == 0


def test_sso_required_on_needs_a_connection_proven_by_a_test_sign_in_like_the_page(runner, tmp_path, idp):
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    assert run(runner, "accounts", "sso-required", "acme", "--on", ok=False)["error"] == "SSO_NOT_READY"
    # Enabled from the command line without a test sign-in: still not proven.
    cert = tmp_path / "idp.pem"
    cert.write_text(idp.cert_pem)
    manual = ["--entity-id", "https://idp.example/", "--sso-url", "https://idp.example/sso", "--cert-file", str(cert)]
    run(runner, "idp", "add", "--account", "acme", "--provider", "generic", *manual, "--enable")
    assert run(runner, "accounts", "sso-required", "acme", "--on", ok=False)["error"] == "SSO_NOT_READY"
    db.session.expire_all()
    assert db.session.query(Account).one().sso_required is False
    assert audit_events("account.sso_required") == []


def test_sso_required_off_always_works(runner):
    run(runner, "accounts", "create", "acme", "--name", "Acme", "--sso-required")
    assert run(runner, "accounts", "sso-required", "acme", "--off")["sso_required"] is False
    [event] = audit_events("account.sso_required")
    assert event.details == {"sso_required": False} and event.actor == "cli"
    # Already off: nothing to change, nothing to audit.
    assert run(runner, "accounts", "sso-required", "ACME", "--off")["sso_required"] is False
    assert len(audit_events("account.sso_required")) == 1


@pytest.mark.parametrize(("slug", "code"), [("acme corp", "ACCOUNT_INVALID"), ("a" * 65, "ACCOUNT_INVALID")])
def test_account_slug_is_checked(runner, slug, code):
    assert run(runner, "accounts", "create", slug, "--name", "Acme", ok=False)["error"] == code
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    assert run(runner, "accounts", "create", " ACME ", "--name", "Acme", ok=False)["error"] == "ACCOUNT_EXISTS"
    assert db.session.query(Account).count() == 1


def test_idp_add_imports_like_the_wizard(runner, tmp_path, idp):
    """The same reader as the setup wizard: its size cap, and its import audit event."""
    run(runner, "accounts", "create", "acme", "--name", "Acme")
    huge = tmp_path / "federation.xml"
    huge.write_bytes(idp_metadata(idp.cert_pem).ljust(MAX_METADATA_BYTES + 10, b" "))
    out = run(runner, "idp", "add", "--account", "acme", "--provider", "okta", "--metadata-file", str(huge), ok=False)
    assert out["error"] == "METADATA_TOO_LARGE"
    assert db.session.query(IdpConnection).count() == 0
    path = tmp_path / "idp.xml"
    path.write_bytes(idp_metadata(idp.cert_pem))
    out = run(runner, "idp", "add", "--account", "acme", "--provider", "okta", "--metadata-file", str(path))
    [event] = audit_events("connection.import")
    assert event.connection_id == out["id"] and event.actor == "cli"
    assert event.details["method"] == "file" and event.details["certificates_added"] == 1


def _flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_real_command_prints_only_its_answer(tmp_path):
    """A real `flask` process: no alembic chatter, no audit log lines, one JSON object on stdout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("LOG_LEVEL", "DATABASE_URL", "TEST_DATABASE_URL", "FLASK_DEBUG")
    }
    env.update(APP_ENV="development", INSTANCE_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path}/portal.db")
    upgrade = _flask(env, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout == upgrade.stderr == ""
    created = _flask(env, "accounts", "create", "acme", "--name", "Acme", "--json")
    assert created.returncode == 0, created.stderr
    assert created.stderr == ""
    assert created.stdout.endswith("\n") and created.stdout.count("\n") == 1
    assert json.loads(created.stdout) == {"id": 1, "slug": "acme", "name": "Acme", "sso_required": False}
    # LOG_LEVEL=INFO brings the audit line (stderr) and the migration steps back.
    refused = _flask({**env, "LOG_LEVEL": "INFO"}, "accounts", "create", "b", "--name", "B", "--json")
    assert json.loads(refused.stdout)["slug"] == "b" and "audit account.create success" in refused.stderr
