"""Issue 9, item 1: staff (role ``support``) read a customer's SSO setup but never change who signs
in to it: every state-changing route of the setup and admin pages answers 403 ``STAFF_READ_ONLY``,
audited as ``access.refused``, and nothing in the database changes. A staff member who is an admin of
their own account keeps that account's admin rights."""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask, url_for
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, IdpConnection, User
from app.saml.certs import certificate_info
from app.services.connections import add_certificates
from tests.helpers.audit import audit_events
from tests.helpers.metadata import idp_metadata, make_cert
from tests.helpers.web import another_browser, app_session, csrf_from, log_in

SWEPT_BLUEPRINTS = ("setup", "admin")


def _post_routes(app: Flask) -> list[tuple[str, frozenset[str]]]:
    """Every POST route of the swept blueprints: a new route is swept without editing this test."""
    return sorted(
        (rule.endpoint, frozenset(rule.arguments))
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ()) and rule.endpoint.split(".")[0] in SWEPT_BLUEPRINTS
    )


def _snapshot() -> dict[str, list[str]]:
    """Every row of every table but the audit trail (which the refusals write to)."""
    db.session.expire_all()
    return {
        table.name: sorted(repr(tuple(row)) for row in db.session.execute(select(table)))
        for table in db.metadata.sorted_tables
        if table.name != "audit_events"
    }


@pytest.fixture
def setup_world(app, acme, make_account, make_user):
    """Acme (SSO required, an enabled connection with two certificates) and a staff member of
    another account, plus a review token that acme's admin obtained (so that a confirm would work)."""
    account, connection = acme["account"], acme["connection"]
    account.sso_required = True
    add_certificates(connection, [certificate_info(make_cert(days=365))])
    db.session.commit()
    admin = another_browser(app)
    log_in(admin, acme["admin"])
    review = admin.post(
        f"/setup/connections/{connection.id}/import/paste",
        data={
            "csrf_token": csrf_from(admin, f"/setup/connections/{connection.id}/import"),
            "metadata_xml": idp_metadata(make_cert(days=400), entity_id=connection.idp_entity_id).decode(),
        },
    ).get_data(as_text=True)
    review_token = html.unescape(re.search(r'name="review_token" type="hidden" value="([^"]+)"', review).group(1))
    staff_account = make_account("phoneco", "Phone Co staff")
    staff = make_user(staff_account, "helpdesk@phoneco.example", "support")
    return {**acme, "staff": staff, "staff_account": staff_account, "review_token": review_token}


def _form(world: dict, csrf: str) -> dict[str, object]:
    """One form that every route would accept as a real change, were it allowed."""
    return {
        "csrf_token": csrf,
        "confirm": "y",
        "required": "off",
        "provider": "generic",
        "name": "Changed by staff",
        "email_attributes": "mail",
        "signed_element": "",
        "nameid_format": "",
        "allow_idp_initiated": "y",
        "metadata_xml": idp_metadata(make_cert(days=500)).decode(),
        "review_token": world["review_token"],
        "email": "planted@acme.example",
        "roles": ["admin"],
        "mode": "preview",
    }


def _url_values(world: dict, user_id: int) -> dict[str, object]:
    connection: IdpConnection = world["connection"]
    return {
        "slug": world["account"].slug,
        "connection_id": connection.id,
        "certificate_id": connection.certificates[0].id,
        "method": "paste",
        "user_id": user_id,
        "job_id": 1,
    }


def test_every_change_route_refuses_staff_and_changes_nothing(app, client, setup_world):
    log_in(client, setup_world["staff"])
    csrf = csrf_from(client, "/support/sessions")
    form = _form(setup_world, csrf)
    # Admin routes act on the signed-in person's own account: aim them at a user of it.
    own_user = User(account_id=setup_world["staff_account"].id, email="colleague@phoneco.example", roles="agent")
    db.session.add(own_user)
    db.session.commit()
    routes = _post_routes(app)
    assert {endpoint.split(".")[0] for endpoint, _args in routes} == set(SWEPT_BLUEPRINTS)
    before = _snapshot()
    for endpoint, arguments in routes:
        values = _url_values(setup_world, own_user.id if endpoint.startswith("admin.") else 0)
        with app.test_request_context():
            url = url_for(endpoint, **{name: values[name] for name in arguments})
        response = client.post(url, data=form)
        assert response.status_code == 403, (url, response.status_code)
        assert 'data-testid="error-code">STAFF_READ_ONLY<' in response.get_data(as_text=True), url
        [event] = [event for event in audit_events("access.refused") if event.details["path"] == url]
        assert event.error_code == "STAFF_READ_ONLY" and event.outcome == "failure"
        assert event.actor == "helpdesk@phoneco.example" and event.details["endpoint"] == endpoint
        expected_account = setup_world["staff_account"] if endpoint.startswith("admin.") else setup_world["account"]
        assert event.account_id == expected_account.id
    assert len(audit_events("access.refused")) == len(routes)
    assert _snapshot() == before


def test_staff_read_the_setup_without_change_controls(app, client, setup_world):
    connection = setup_world["connection"]
    pages = [f"/setup/accounts/{setup_world['account'].slug}/", f"/setup/connections/{connection.id}/"]
    pages += [f"/setup/connections/{connection.id}/walkthrough", f"/setup/connections/{connection.id}/test"]
    admin = another_browser(app)
    log_in(admin, setup_world["admin"])
    assert 'data-testid="delete-link"' in admin.get(pages[1]).get_data(as_text=True)  # the control exists
    log_in(client, setup_world["staff"])
    for path in pages:
        page = client.get(path).get_data(as_text=True)
        assert 'data-testid="read-only"' in page, path
        assert re.search(r'<form method="post" action="/setup/', page) is None, path
        for control in ("new-connection", "delete-link", "edit-settings", "disable", "to-import", "start-test"):
            assert f'data-testid="{control}"' not in page, (path, control)
    hub = client.get(pages[1]).get_data(as_text=True)
    assert 'data-testid="certificates"' in hub and 'data-testid="settings"' in hub  # still readable
    # The pages that are only a form for a change are refused like the change itself.
    for path in (
        f"/setup/accounts/{setup_world['account'].slug}/connections/new",
        f"/setup/connections/{connection.id}/import",
    ):
        assert client.get(path).status_code == 403, path
    assert [event.details["method"] for event in audit_events("access.refused")] == ["GET", "GET"]


def test_staff_who_admin_their_own_account_keep_those_rights_there_only(app, client, setup_world, make_user):
    """Staff accounts are accounts like any other: their own admins manage them, and nothing else."""
    staff_admin = make_user(setup_world["staff_account"], "lead@phoneco.example", "admin,support")
    log_in(client, staff_admin)
    csrf = csrf_from(client, "/admin/users/new")
    created = client.post(
        "/admin/users/new", data={"csrf_token": csrf, "email": "new@phoneco.example", "roles": ["agent"]}
    )
    assert created.status_code == 302
    own = client.post("/setup/accounts/phoneco/connections/new", data={"csrf_token": csrf, "provider": "okta"})
    assert own.status_code == 302
    assert db.session.scalar(select(IdpConnection).where(IdpConnection.account_id == setup_world["staff_account"].id))
    # Another account's users do not exist on the admin pages; its setup is read only.
    agent = setup_world["agent"]
    assert client.get(f"/admin/users/{agent.id}").status_code == 404
    assert client.post(f"/admin/users/{agent.id}", data={"csrf_token": csrf, "roles": ["admin"]}).status_code == 404
    refused = client.post(
        f"/setup/connections/{setup_world['connection'].id}/disable", data={"csrf_token": csrf, "confirm": "y"}
    )
    assert refused.status_code == 403
    db.session.expire_all()
    assert db.session.get(User, agent.id).role_list == ["agent"]
    assert db.session.query(AuditEvent).filter_by(action="access.refused").count() == 1


def test_staff_keep_session_revocation(client, setup_world):
    live = app_session(setup_world["agent"], "desktop")
    log_in(client, setup_world["staff"])
    response = client.post(
        f"/support/sessions/{live.session.id}/revoke", data={"csrf_token": csrf_from(client, "/support/sessions")}
    )
    assert response.status_code == 302
    assert not audit_events("access.refused")
