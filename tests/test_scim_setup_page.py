"""The account's SCIM page: tokens (shown once), last use, revoke, the group-to-role mapping,
each IdP's provisioning steps with this account's base URL; admins change it, staff only read it."""

from __future__ import annotations

import hashlib
import re

import pytest

from app.extensions import db
from app.models import ScimToken
from app.services.users import find_user_by_email
from tests.helpers.web import log_in
from tests.scim_helpers import Idp, user_body

PAGE = "/setup/accounts/acme/scim/"


@pytest.fixture
def people(make_account, make_user) -> dict:
    acme = make_account("acme", "Acme Corp")
    globex = make_account("globex", "Globex")
    staff = make_account("staff", "Phone Company Staff")
    return {
        "admin": make_user(acme, "admin@acme.example", "admin"),
        "agent": make_user(acme, "agent@acme.example", "agent"),
        "other_admin": make_user(globex, "admin@globex.example", "admin"),
        "staff": make_user(staff, "helper@phone.example", "support"),
    }


def _shown_token(html: str) -> str:
    match = re.search(r'id="scim-new-token" type="text" readonly value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_admin_creates_a_token_shown_once_then_sees_its_use_and_revokes_it(client, people, csrf_token):
    log_in(client, people["admin"])
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'value="https://sso.test/scim/v2"' in html and "No SCIM token yet." in html

    created = client.post(f"{PAGE}tokens", data={"csrf_token": csrf_token(), "name": "Okta"})
    assert created.status_code == 200
    token = _shown_token(created.get_data(as_text=True))
    row = db.session.query(ScimToken).one()
    assert (row.name, row.created_by, row.token_hash) == (
        "Okta",
        "admin@acme.example",
        hashlib.sha256(token.encode()).hexdigest(),
    )
    again = client.get(PAGE).get_data(as_text=True)
    assert token not in again and row.prefix in again and "Never" in again

    assert Idp(client, token).post("/Users", user_body("new@acme.example")).status_code == 201
    assert "Never" not in client.get(PAGE).get_data(as_text=True)

    revoked = client.post(f"{PAGE}tokens/revoke", data={"csrf_token": csrf_token(), "token_id": str(row.id)})
    assert revoked.status_code == 302
    assert Idp(client, token).get("/Users").status_code == 401


def test_two_live_tokens_at_most_on_the_page(client, people, csrf_token):
    log_in(client, people["admin"])
    for name in ("Okta", "Okta next"):
        assert client.post(f"{PAGE}tokens", data={"csrf_token": csrf_token(), "name": name}).status_code == 200
    html = client.get(PAGE).get_data(as_text=True)
    assert 'data-testid="new-token-form"' not in html and "2 live tokens is the most" in html
    refused = client.post(f"{PAGE}tokens", data={"csrf_token": csrf_token(), "name": "third"})
    assert refused.status_code == 422 and db.session.query(ScimToken).count() == 2


def test_the_form_needs_its_csrf_token(client, people):
    log_in(client, people["admin"])
    assert client.post(f"{PAGE}tokens", data={"name": "x"}).status_code == 400
    assert db.session.query(ScimToken).count() == 0


def test_group_mapping_form(client, people, csrf_token):
    log_in(client, people["admin"])
    response = client.post(f"{PAGE}groups", data={"csrf_token": csrf_token(), "group": "Phone Admins", "role": "admin"})
    assert response.status_code == 302
    html = client.get(PAGE).get_data(as_text=True)
    assert "Phone Admins" in html
    bad = client.post(f"{PAGE}groups", data={"csrf_token": csrf_token(), "group": "X", "role": "support"})
    assert bad.status_code == 422
    removed = client.post(f"{PAGE}groups/remove", data={"csrf_token": csrf_token(), "group": "Phone Admins"})
    assert removed.status_code == 302
    assert "No group gives a role yet." in client.get(PAGE).get_data(as_text=True)


def test_walkthroughs_show_this_accounts_base_url_and_say_where_scim_is_not_available(client, people):
    log_in(client, people["admin"])
    html = client.get(PAGE).get_data(as_text=True)
    for label in (
        "SCIM connector base URL",
        "Unique identifier field for users",
        "HTTP Header",
        "Tenant URL",
        "Secret Token",
        "Test Connection",
        "SCIM Base URL",
        "SCIM Bearer Token",
    ):
        assert label in html, label
    assert html.count('value="https://sso.test/scim/v2"') >= 5  # the page's own field + one per provider
    google = html[html.index('data-testid="provisioning-google"') :]
    assert "Not available." in google[:800] and "CSV import" in google[:800]
    salesforce = html[html.index('data-testid="provisioning-salesforce"') :]
    assert "Not available." in salesforce[:800]


def test_staff_read_the_page_but_change_nothing(client, people, csrf_token):
    log_in(client, people["staff"])
    html = client.get(PAGE).get_data(as_text=True)
    assert 'data-testid="read-only"' in html and 'data-testid="new-token-form"' not in html
    assert client.post(f"{PAGE}tokens", data={"csrf_token": csrf_token(), "name": "x"}).status_code == 403
    assert (
        client.post(f"{PAGE}groups", data={"csrf_token": csrf_token(), "group": "G", "role": "admin"}).status_code
        == 403
    )
    assert db.session.query(ScimToken).count() == 0


def test_other_accounts_and_agents_do_not_get_in(client, people):
    log_in(client, people["other_admin"])
    assert client.get(PAGE).status_code == 404
    assert client.get("/setup/accounts/nope/scim/").status_code == 404
    client.delete_cookie("__Host-portal_session")
    log_in(client, people["agent"])
    assert client.get(PAGE).status_code in (302, 403)


def test_users_pages_show_the_source(client, people, csrf_token):
    log_in(client, people["admin"])
    created = client.post(f"{PAGE}tokens", data={"csrf_token": csrf_token(), "name": "Entra"})
    Idp(client, _shown_token(created.get_data(as_text=True))).post("/Users", user_body("scim@acme.example"))
    listing = client.get("/admin/users").get_data(as_text=True)
    assert "SCIM (IdP)" in listing and "Admin" in listing
    user = find_user_by_email("scim@acme.example")
    detail = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert "Provisioned by your IdP over SCIM" in detail and "overwritten" in detail


def test_csv_import_marks_the_users_it_creates(people):
    import io

    from app.models import Account
    from app.services.imports import import_users

    acme = db.session.query(Account).filter_by(slug="acme").one()
    report = import_users(acme, io.BytesIO(b"email,name,roles\ncsv@acme.example,Csv,agent\n"), apply=True)
    db.session.commit()
    assert report.applied
    assert find_user_by_email("csv@acme.example").source == "csv"
    assert find_user_by_email("admin@acme.example").source == "admin"


@pytest.mark.parametrize("key", ["google", "entra", "okta", "onelogin", "salesforce", "generic"])
def test_every_plugin_says_how_to_provision_or_that_it_cannot(key):
    from app.idp_plugins import get_plugin
    from app.idp_plugins.render import render_provisioning

    plugin = get_plugin(key)
    assert bool(plugin.provisioning_steps) != bool(plugin.provisioning_unavailable)
    steps = render_provisioning(plugin, {"scim_base_url": "https://sso.test/scim/v2", "account_name": "Acme"})
    if steps:
        shown = [value.value for step in steps for value in step.values]
        assert "https://sso.test/scim/v2" in shown
    else:
        assert "CSV import" in plugin.provisioning_unavailable


def test_a_plugin_cannot_both_provision_and_say_it_cannot():
    from app.idp_plugins import PluginRegistryError, check_registry
    from app.idp_plugins.base import IdpPlugin, SetupStep
    from app.idp_plugins.generic import GenericPlugin

    plugin = type(
        "Both",
        (IdpPlugin,),
        {
            # Otherwise complete: the option texts of the generic plugin.
            "single_logout_help": GenericPlugin.single_logout_help,
            "encryption_help": GenericPlugin.encryption_help,
            "signed_requests_help": GenericPlugin.signed_requests_help,
            "supports_slo": GenericPlugin.supports_slo,
            "key": "both",
            "display_name": "Both",
            "setup_steps": (SetupStep("Do it", "Paste {acs_url}."),),
            "provisioning_steps": (SetupStep("SCIM", "Go."),),
            "provisioning_unavailable": "No.",
        },
    )
    with pytest.raises(PluginRegistryError, match="unavailable"):
        check_registry((plugin,))


def test_csv_import_leaves_scim_users_alone_unless_asked(client, people, csrf_token):
    import io

    from app.models import Account
    from app.services.imports import import_users

    log_in(client, people["admin"])
    created = client.post(f"{PAGE}tokens", data={"csrf_token": csrf_token(), "name": "Okta"})
    Idp(client, _shown_token(created.get_data(as_text=True))).post(
        "/Users", user_body("kept@acme.example", roles=[{"value": "agent"}])
    )
    acme = db.session.query(Account).filter_by(slug="acme").one()
    content = b"email,name,roles\nadmin@acme.example,,admin\nkept@acme.example,Renamed,admin\n"

    report = import_users(acme, io.BytesIO(content), apply=True, deactivate_missing=True)
    db.session.commit()
    kept = find_user_by_email("kept@acme.example")
    assert (kept.name, kept.role_list, kept.is_active) == ("Ada Lovelace", ["agent"], True)
    assert report.count("unchanged") == 2
    assert [row.email for row in report.samples["deactivate"]] == ["agent@acme.example"]

    import_users(acme, io.BytesIO(content), apply=True, include_scim=True)
    db.session.commit()
    db.session.expire_all()
    assert find_user_by_email("kept@acme.example").role_list == ["admin"]
