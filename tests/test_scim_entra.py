"""Microsoft Entra ID's SCIM provisioning, request by request, as Microsoft's SCIM documentation
("Develop and plan provisioning for a SCIM endpoint") shows it.

Entra probes with a filter on a random userName, sends the enterprise extension, capitalises
PATCH ops ("Replace", "Add", "Remove"), targets ``emails[type eq "work"].value``, has sent
``active`` as the string "False", maps the object ID to ``externalId``, and changes group
membership with PATCH ``members`` add / remove (remove with a value).
"""

from __future__ import annotations

import uuid

import pytest

from app.extensions import db
from app.models import AuditEvent
from app.services.users import find_user_by_email
from tests.scim_helpers import GROUP_SCHEMA, USER_SCHEMA, Idp, desktop_status, new_token, open_sessions, portal_status

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
OBJECT_ID = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"


def entra_user(upn: str, object_id: str = OBJECT_ID) -> dict:
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": object_id,
        "userName": upn,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": upn}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
        "roles": [],
        ENTERPRISE: {"department": "Engineering", "employeeNumber": "42"},
    }


@pytest.fixture
def entra(client, make_account) -> Idp:
    return Idp(client, new_token(make_account(), name="Entra ID"))


def test_entra_validation_probe_is_an_empty_list(entra):
    probe = entra.get("/Users", filter=f'userName eq "{uuid.uuid4()}"')
    assert probe.status_code == 200
    assert probe.json["totalResults"] == 0 and probe.json["Resources"] == []
    groups = entra.get("/Groups", filter=f'displayName eq "{uuid.uuid4()}"', excludedAttributes="members")
    assert groups.status_code == 200 and groups.json["totalResults"] == 0


def test_entra_user_lifecycle(entra, client):
    created = entra.post("/Users", entra_user("Grace.Hopper@acme.example"))
    assert created.status_code == 201, created.json
    user_id = created.json["id"]
    assert created.json["externalId"] == OBJECT_ID
    assert created.json["userName"] == "grace.hopper@acme.example"
    assert ENTERPRISE not in created.json  # not kept: the product has no use for it
    assert find_user_by_email("grace.hopper@acme.example").external_id == OBJECT_ID

    # Entra finds users by its object ID too.
    by_object_id = entra.get("/Users", filter=f'externalId eq "{OBJECT_ID}"')
    assert [r["id"] for r in by_object_id.json["Resources"]] == [user_id]

    # Capitalised ops, a value-path filter, a sub-attribute, an extension attribute.
    updated = entra.patch(
        f"/Users/{user_id}",
        [
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "grace@acme.example"},
            {"op": "Replace", "path": "name.familyName", "value": "Hopper-Murray"},
            {"op": "Add", "path": "displayName", "value": "Grace Hopper-Murray"},
            {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Navy"},
            {
                "op": "Add",
                "path": "roles",
                "value": [{"primary": True, "type": "WindowsAzureActiveDirectoryRole", "value": "agent"}],
            },
        ],
    )
    assert updated.status_code == 200, updated.json
    assert updated.json["emails"] == [{"value": "grace@acme.example", "type": "work", "primary": True}]
    assert updated.json["name"]["familyName"] == "Hopper-Murray"
    user = find_user_by_email("grace.hopper@acme.example")
    assert (user.name, user.role_list) == ("Grace Hopper-Murray", ["agent"])

    # userName changes with the user's UPN: the email follows.
    renamed = entra.patch(f"/Users/{user_id}", [{"op": "Replace", "path": "userName", "value": "GHopper@acme.example"}])
    assert renamed.json["userName"] == "ghopper@acme.example"


def test_entra_deactivation_with_the_string_false_signs_out_everywhere(entra, client):
    user_id = entra.post("/Users", entra_user("ada@acme.example") | {"roles": [{"value": "admin"}]}).json["id"]
    web, desktop = open_sessions(find_user_by_email("ada@acme.example"))
    assert portal_status(client, web) == 200 and desktop_status(client, desktop) == 200

    response = entra.patch(f"/Users/{user_id}", [{"op": "Replace", "path": "active", "value": "False"}])
    assert response.status_code == 200, response.json
    assert response.json["active"] is False
    assert portal_status(client, web) == 302
    assert desktop_status(client, desktop) == 401
    event = db.session.query(AuditEvent).filter_by(action="user.deactivate").one()
    assert (event.actor, event.details["sessions_revoked"]) == ("scim:Entra ID", 2)


def test_entra_group_membership_add_and_remove(entra, client, runner):
    runner.invoke(args=["scim", "groups", "map", "--account", "acme", "--group", "Portal Admins", "--role", "admin"])
    user_id = entra.post("/Users", entra_user("lin@acme.example") | {"roles": [{"value": "agent"}]}).json["id"]
    group = entra.post(
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Portal Admins",
            "meta": {"resourceType": "Group"},
        },
    )
    assert group.status_code == 201, group.json
    group_id = group.json["id"]
    assert group.json["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"

    added = entra.patch(
        f"/Groups/{group_id}", [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]}]
    )
    assert added.status_code == 200, added.json
    assert find_user_by_email("lin@acme.example").role_list == ["admin", "agent"]

    # The portal session that the group's role opened ends when Entra removes the member.
    web, desktop = open_sessions(find_user_by_email("lin@acme.example"))
    assert portal_status(client, web) == 200
    removed = entra.patch(
        f"/Groups/{group_id}", [{"op": "Remove", "path": "members", "value": [{"$ref": None, "value": user_id}]}]
    )
    assert removed.status_code == 200, removed.json
    assert removed.json.get("members") is None
    db.session.expire_all()
    assert find_user_by_email("lin@acme.example").role_list == ["agent"]
    assert portal_status(client, web) == 302
    assert desktop_status(client, desktop) == 200  # the agent role still opens the desktop app
    from app.models import UserSession

    reasons = {s.app: s.revoked_reason for s in db.session.query(UserSession)}
    assert reasons == {"portal": "role_removed", "desktop": None}

    # Entra's group filter, with members left out.
    listed = entra.get("/Groups", filter='displayName eq "Portal Admins"', excludedAttributes="members")
    assert listed.json["totalResults"] == 1 and "members" not in listed.json["Resources"][0]


def test_entra_delete_ends_the_user(entra, client):
    user_id = entra.post("/Users", entra_user("gone@acme.example") | {"roles": [{"value": "agent"}]}).json["id"]
    _web, desktop = open_sessions(find_user_by_email("gone@acme.example"))
    assert entra.delete(f"/Users/{user_id}").status_code == 204
    assert desktop_status(client, desktop) == 401
    assert find_user_by_email("gone@acme.example") is None
    assert entra.get(f"/Users/{user_id}").status_code == 404
