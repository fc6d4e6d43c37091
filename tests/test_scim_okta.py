"""Okta's SCIM 2.0 provisioning, request by request, as Okta's SCIM documentation shows it.

Okta looks a user up by ``userName eq`` before creating it, creates with POST, updates the
profile with PUT (the whole user), deactivates with a PATCH replace that carries no path, and
pushes groups with PATCH of ``members``.
"""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import AuditEvent, User
from app.services.users import find_user_by_email
from tests.scim_helpers import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    Idp,
    desktop_status,
    new_token,
    open_sessions,
    portal_status,
)

OKTA_CREATE = {
    "schemas": [USER_SCHEMA],
    "userName": "Test.User@Acme.example",
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": "test.user@acme.example", "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
    "roles": [{"value": "admin"}],
}


@pytest.fixture
def okta(client, make_account) -> Idp:
    return Idp(client, new_token(make_account(), name="Okta"))


def test_okta_lifecycle(okta, client):
    # 1. Does the user exist? (Okta's exact query string.)
    found = okta.get("/Users", filter='userName eq "test.user@acme.example"', startIndex=1, count=100)
    assert found.status_code == 200
    assert found.content_type == "application/scim+json"
    assert found.json == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }

    # 2. Create: the password and locale are not kept; userName is normalised like a sign-in.
    created = okta.post("/Users", OKTA_CREATE)
    assert created.status_code == 201, created.json
    user_id = created.json["id"]
    assert created.headers["Location"] == f"https://sso.test/scim/v2/Users/{user_id}"
    assert created.json["userName"] == "test.user@acme.example"
    assert created.json["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert created.json["active"] is True
    assert "password" not in created.json
    user = find_user_by_email("test.user@acme.example")
    assert (user.name, user.role_list, user.source, user.password_hash) == ("Test User", ["admin"], "scim", None)

    # Okta asks again before its next change, with a mixed-case address.
    again = okta.get("/Users", filter='userName eq "TEST.USER@acme.example"', startIndex=1, count=100)
    assert again.json["totalResults"] == 1 and again.json["Resources"][0]["id"] == user_id

    # 3. Profile update: PUT of the whole user.
    put_body = created.json | {"name": {"givenName": "Another", "familyName": "User"}, "displayName": "Another User"}
    replaced = okta.put(f"/Users/{user_id}", put_body)
    assert replaced.status_code == 200, replaced.json
    assert replaced.json["name"] == {"givenName": "Another", "familyName": "User"}
    db.session.expire_all()
    assert find_user_by_email("test.user@acme.example").name == "Another User"

    # 4. Deactivate: the user's browser and desktop app are out on their very next request.
    web, desktop = open_sessions(find_user_by_email("test.user@acme.example"))
    assert portal_status(client, web) == 200 and desktop_status(client, desktop) == 200
    deactivated = okta.send(
        "PATCH",
        f"/Users/{user_id}",
        {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert deactivated.status_code == 200, deactivated.json
    assert deactivated.json["active"] is False
    assert portal_status(client, web) == 302
    assert desktop_status(client, desktop) == 401

    # Reactivation lets them sign in again, but no session comes back.
    okta.patch(f"/Users/{user_id}", [{"op": "replace", "value": {"active": True}}])
    assert portal_status(client, web) == 302 and desktop_status(client, desktop) == 401
    assert find_user_by_email("test.user@acme.example").is_active

    actions = [e.action for e in db.session.query(AuditEvent).filter(AuditEvent.actor == "scim:Okta")]
    assert {"scim.user.create", "scim.user.replace", "scim.user.patch", "user.deactivate", "user.reactivate"} <= set(
        actions
    )


def test_okta_group_push(okta, runner):
    runner.invoke(args=["scim", "groups", "map", "--account", "acme", "--group", "Phone Agents", "--role", "agent"])
    ids = [
        okta.post("/Users", OKTA_CREATE | {"userName": f"{n}@acme.example", "roles": []}).json["id"]
        for n in ("ann", "bob")
    ]
    # Okta looks the group up, creates it empty, then pushes members with PATCH.
    assert (
        okta.get("/Groups", filter='displayName eq "Phone Agents"', startIndex=1, count=100).json["totalResults"] == 0
    )
    group = okta.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Phone Agents", "members": []})
    assert group.status_code == 201, group.json
    group_id = group.json["id"]

    pushed = okta.patch(
        f"/Groups/{group_id}",
        [
            {
                "op": "add",
                "path": "members",
                "value": [
                    {"value": ids[0], "display": "ann@acme.example"},
                    {"value": ids[1], "display": "bob@acme.example"},
                ],
            }
        ],
    )
    assert pushed.status_code == 200, pushed.json
    assert sorted(m["value"] for m in pushed.json["members"]) == sorted(ids)
    assert find_user_by_email("ann@acme.example").role_list == ["agent"]

    # Okta renames with a replace carrying id and displayName, and removes a member by filter.
    renamed = okta.patch(
        f"/Groups/{group_id}", [{"op": "replace", "value": {"id": group_id, "displayName": "Phone Agents"}}]
    )
    assert renamed.status_code == 200, renamed.json
    removed = okta.patch(f"/Groups/{group_id}", [{"op": "remove", "path": f'members[value eq "{ids[1]}"]'}])
    assert removed.status_code == 200, removed.json
    assert [m["value"] for m in removed.json["members"]] == [ids[0]]
    db.session.expire_all()
    assert find_user_by_email("bob@acme.example").role_list == []
    assert find_user_by_email("ann@acme.example").role_list == ["agent"]

    # A user's groups are read-only on the user and show the pushed group.
    ann = okta.get(f"/Users/{ids[0]}").json
    assert ann["groups"] == [
        {"value": group_id, "$ref": f"https://sso.test/scim/v2/Groups/{group_id}", "display": "Phone Agents"}
    ]
    assert okta.delete(f"/Groups/{group_id}").status_code == 204
    db.session.expire_all()
    assert find_user_by_email("ann@acme.example").role_list == []
    assert db.session.query(User).count() == 2
