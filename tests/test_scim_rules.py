"""The product's rules through SCIM, the protocol's refusals, and garbage that must never 500."""

from __future__ import annotations

import json

import pytest

from app.extensions import db
from app.models import AuditEvent, UserSession
from app.services.scim_tokens import create_token, revoke_token
from app.services.users import find_user_by_email
from tests.scim_helpers import (
    SCIM_JSON,
    Idp,
    desktop_status,
    new_token,
    open_sessions,
    portal_status,
    user_body,
)

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def idp(client, make_account) -> Idp:
    return Idp(client, new_token(make_account(), name="Okta prod"))


def assert_error(response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == SCIM_JSON
    assert response.json["schemas"] == [ERROR_SCHEMA]
    assert response.json["status"] == str(status)
    assert response.json.get("scimType") == scim_type


# --- tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer " + "a" * 500, "Bearer \u00e9t\u00e9"],
)
def test_missing_or_wrong_token_is_401_with_a_scim_body(client, make_account, header):
    make_account()
    headers = {"Authorization": header} if header else {}
    response = client.get("/scim/v2/Users", headers=headers)
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="scim"'


def test_wrong_tokens_are_audited_and_rate_limited(app, client, make_account):
    make_account()
    limit = app.config["PASSWORD_MAX_FAILURES"] * 5
    for _ in range(limit):
        assert client.get("/scim/v2/Users", headers={"Authorization": "Bearer guess"}).status_code == 401
    limited = client.get("/scim/v2/Users", headers={"Authorization": "Bearer guess"})
    assert_error(limited, 429)
    assert limited.headers["Retry-After"] == str(app.config["PASSWORD_FAILURE_WINDOW_SECONDS"])
    events = db.session.query(AuditEvent).filter_by(action="scim.auth").all()
    assert len(events) == limit and {e.error_code for e in events} == {"SCIM_TOKEN_INVALID"}
    assert "guess" not in json.dumps([e.details for e in events])


def test_revoked_token_is_401(client, make_account):
    account = make_account()
    created = create_token(account, name="old")
    db.session.commit()
    revoke_token(created.row, actor="test")
    db.session.commit()
    assert_error(Idp(client, created.token).get("/Users"), 401)


def test_a_token_sees_and_changes_only_its_own_account(client, make_account, make_user):
    other = make_account("globex", "Globex")
    make_user(other, "boss@globex.example", "admin")
    mine = Idp(client, new_token(make_account()))
    theirs = Idp(client, new_token(other, name="Globex IdP"))
    their_id = theirs.get("/Users").json["Resources"][0]["id"]

    assert mine.get("/Users").json["totalResults"] == 0
    assert mine.get("/Users", filter='userName eq "boss@globex.example"').json["totalResults"] == 0
    assert_error(mine.get(f"/Users/{their_id}"), 404)
    assert_error(mine.patch(f"/Users/{their_id}", [{"op": "replace", "value": {"active": False}}]), 404)
    assert_error(mine.delete(f"/Users/{their_id}"), 404)
    assert find_user_by_email("boss@globex.example").is_active


def test_an_email_held_by_another_account_is_a_neutral_uniqueness_refusal(client, make_account, make_user):
    other = make_account("globex", "Globex")
    make_user(other, "boss@globex.example", "admin")
    idp = Idp(client, new_token(make_account()))
    elsewhere = idp.post("/Users", user_body("Boss@Globex.example"))
    assert_error(elsewhere, 409, "uniqueness")
    idp.post("/Users", user_body("mine@acme.example"))
    here = idp.post("/Users", user_body("MINE@acme.example"))
    assert_error(here, 409, "uniqueness")
    # The same words either way: nothing tells the IdP that another company has the address.
    assert elsewhere.json["detail"] == here.json["detail"] == "this userName is not available"
    assert find_user_by_email("boss@globex.example").account.slug == "globex"


# --- the product's rules ------------------------------------------------------------------------


def test_username_must_be_an_email_and_roles_must_be_known(idp):
    assert_error(idp.post("/Users", user_body("not an email")), 400, "invalidValue")
    assert_error(idp.post("/Users", user_body("a@acme.example", roles=[{"value": "root"}])), 400, "invalidValue")
    assert_error(idp.post("/Users", user_body("a@acme.example", roles=[{"value": "support"}])), 400, "invalidValue")
    assert_error(idp.post("/Users", {"schemas": [user_body("x@y.z")["schemas"][0]]}), 400, "invalidValue")


def test_a_user_without_a_role_exists_but_opens_no_app(idp, client):
    idp.post("/Users", user_body("norole@acme.example"))
    user = find_user_by_email("norole@acme.example")
    assert user.role_list == [] and user.apps == frozenset()
    _web, desktop = open_sessions(user)
    assert desktop_status(client, desktop) == 401


def test_a_role_removed_by_scim_ends_the_sessions_of_the_apps_it_opened(idp, client):
    user_id = idp.post("/Users", user_body("ops@acme.example", roles=[{"value": "admin"}])).json["id"]
    web, desktop = open_sessions(find_user_by_email("ops@acme.example"))
    response = idp.patch(f"/Users/{user_id}", [{"op": "replace", "path": "roles", "value": [{"value": "agent"}]}])
    assert response.status_code == 200, response.json
    assert portal_status(client, web) == 302
    assert desktop_status(client, desktop) == 200
    revoked = db.session.query(UserSession).filter(UserSession.revoked_at.is_not(None)).one()
    assert (revoked.app, revoked.revoked_reason) == ("portal", "role_removed")
    events = {e.action: e for e in db.session.query(AuditEvent).filter(AuditEvent.actor == "scim:Okta prod")}
    assert events["user.update"].details["after"]["roles"] == ["agent"]
    assert events["session.revoke_all"].details == {"revoked": 1, "reason": "role_removed", "apps": ["portal"]}


def test_put_deactivates_and_reactivates_through_the_hooks(idp, client):
    created = idp.post("/Users", user_body("put@acme.example", roles=[{"value": "agent"}])).json
    _web, desktop = open_sessions(find_user_by_email("put@acme.example"))
    off = idp.put(f"/Users/{created['id']}", created | {"active": False})
    assert off.status_code == 200 and off.json["active"] is False
    assert desktop_status(client, desktop) == 401
    on = idp.put(f"/Users/{created['id']}", created | {"active": True})
    assert on.json["active"] is True and find_user_by_email("put@acme.example").is_active
    assert desktop_status(client, desktop) == 401  # reactivation brings no session back


def test_scim_leaves_roles_alone_when_it_does_not_change_them(idp, make_user):
    """An admin-made user the IdP takes over keeps their roles until the IdP sends roles."""
    from app.models import Account

    acme = db.session.query(Account).filter_by(slug="acme").one()
    make_user(acme, "kept@acme.example", "admin")
    found = idp.get("/Users", filter='userName eq "kept@acme.example"').json["Resources"][0]
    assert found["roles"] == [{"value": "admin"}]
    idp.patch(f"/Users/{found['id']}", [{"op": "replace", "path": "displayName", "value": "Kept"}])
    user = find_user_by_email("kept@acme.example")
    assert (user.role_list, user.source, user.name) == (["admin"], "scim", "Kept")


# --- the protocol -------------------------------------------------------------------------------


def test_filters_pagination_and_attributes(idp):
    for n in range(5):
        idp.post("/Users", user_body(f"user{n}@acme.example", externalId=f"ext-{n}", displayName=f"User {n}"))
    idp.post("/Users", user_body("other@globex-partner.example", active=False))

    def ids(**query):
        response = idp.get("/Users", **query)
        assert response.status_code == 200, response.json
        return response.json

    assert ids(filter='userName sw "user"')["totalResults"] == 5
    assert ids(filter='userName co "globex"')["totalResults"] == 1
    assert ids(filter='userName ew "acme.example"')["totalResults"] == 5
    assert ids(filter="externalId pr")["totalResults"] == 5
    assert ids(filter='externalId eq "ext-3"')["Resources"][0]["userName"] == "user3@acme.example"
    assert ids(filter='emails.value eq "USER2@acme.example"')["totalResults"] == 1
    assert ids(filter='emails[type eq "work" and value eq "user4@acme.example"]')["totalResults"] == 1
    assert ids(filter="active eq false")["totalResults"] == 1
    assert ids(filter='userName eq "user1@acme.example" or userName eq "user2@acme.example"')["totalResults"] == 2
    assert ids(filter='userName sw "user" and not (externalId eq "ext-0")')["totalResults"] == 4
    assert ids(filter='displayName eq "User 2"')["totalResults"] == 1

    page = ids(startIndex=2, count=2)
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (6, 2, 2)
    assert [r["userName"] for r in page["Resources"]] == ["user1@acme.example", "user2@acme.example"]
    assert ids(startIndex=99)["Resources"] == []
    assert ids(count=0)["Resources"] == [] and ids(count=0)["totalResults"] == 6
    assert ids(startIndex=-5, count=1)["startIndex"] == 1

    only = ids(attributes="userName", count=1)["Resources"][0]
    assert set(only) == {"schemas", "id", "userName"}
    without = ids(excludedAttributes="emails,name", count=1)["Resources"][0]
    assert "emails" not in without and "name" not in without and "userName" in without


def test_group_filters(idp):
    for name in ("Sales", "Sales Admins", "Support"):
        idp.post("/Groups", {"displayName": name, "externalId": name.lower()})
    assert idp.get("/Groups", filter='displayName sw "Sales"').json["totalResults"] == 2
    assert idp.get("/Groups", filter='displayName eq "Support"').json["Resources"][0]["externalId"] == "support"
    assert idp.get("/Groups", filter='displayName co "Admin"').json["totalResults"] == 1


@pytest.mark.parametrize(
    "operations, scim_type",
    [
        ([{"op": "replace", "path": "groups", "value": []}], "mutability"),
        ([{"op": "replace", "path": "id", "value": "7"}], "mutability"),
        (
            [{"op": "replace", "path": 'emails[value co "nobody"].type', "value": "home"}],
            "noTarget",
        ),
        ([{"op": "replace", "path": "emails[", "value": "x"}], "invalidPath"),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "copy", "path": "displayName", "value": "x"}], "invalidValue"),
        ([{"op": "add", "path": "active", "value": "maybe"}], "invalidValue"),
        ([{"op": "replace", "path": "userName", "value": "not-an-email"}], "invalidValue"),
        ([], "invalidValue"),
    ],
)
def test_patch_refusals_have_the_right_scim_type(idp, operations, scim_type):
    user_id = idp.post("/Users", user_body("p@acme.example")).json["id"]
    response = idp.patch(f"/Users/{user_id}", operations)
    assert 400 <= response.status_code < 500, response.json
    assert response.json["schemas"] == [ERROR_SCHEMA]
    if scim_type:
        assert response.json["scimType"] == scim_type
    assert find_user_by_email("p@acme.example").is_active


def test_protocol_refusals(idp):
    assert_error(idp.get("/Users", filter="userName eq"), 400, "invalidFilter")
    assert_error(idp.get("/Users", filter='password eq "x"'), 400, "invalidFilter")
    assert_error(idp.get("/Users", filter='name.givenName eq "x"'), 400, "invalidFilter")
    assert_error(idp.get("/Users", sortBy="userName"), 400, "invalidValue")
    assert_error(idp.get("/Users", count="ten"), 400, "invalidValue")
    assert_error(idp.send("POST", "/Users", raw=b"{not json"), 400, "invalidSyntax")
    assert_error(idp.send("POST", "/Users", raw=b""), 400, "invalidSyntax")
    assert_error(idp.send("POST", "/Users", [1, 2]), 400, "invalidSyntax")
    assert_error(idp.get("/Users/123456"), 404)
    assert_error(idp.get("/Users/abc"), 404)
    assert_error(idp.get("/Groups/123"), 404)
    assert_error(idp.get("/Nothing/here"), 404)
    assert_error(idp.send("DELETE", "/Users"), 405)
    assert_error(idp.post("/Bulk", {"Operations": []}), 501)
    assert_error(idp.send("POST", "/Users", raw=b"{" * 2_000_000), 413)


GARBAGE_BODIES = [
    b"null",
    b"true",
    b'"a string"',
    b"1e999",
    b'{"userName": 12}',
    b'{"userName": ["a@b.c"]}',
    b'{"userName": "a@b.c", "emails": "x"}',
    b'{"userName": "a@b.c", "emails": [1, null]}',
    b'{"userName": "a@b.c", "name": "Ada"}',
    b'{"userName": "a@b.c", "roles": "admin"}',
    b'{"userName": "a@b.c", "roles": [{"value": 7}]}',
    b'{"userName": "a@b.c", "active": "sometimes"}',
    b'{"userName": "a@b.c", "displayName": "' + b"x" * 5000 + b'"}',
    b'{"userName": "a@b.c", "displayName": "nul\\u0000"}',
    b'{"userName": "a@b.c\\u0000"}',
    b'{"userName": "' + b"a" * 400 + b'@b.c"}',
    b'{"schemas": "nope", "userName": "a@b.c"}',
    b'{"schemas": ["urn:x"], "userName": "a@b.c"}',
    b'{"Operations": "x"}',
    b'{"Operations": [null]}',
    b'{"Operations": [{"op": "replace", "path": 5}]}',
    b'{"Operations": [{"op": "replace", "path": "members[value eq \\"1\\"]", "value": 1}]}',
    b'{"Operations": [{"op": "add", "path": "members", "value": [{"value": "999999"}]}]}',
    b'{"Operations": [{"op": "add", "path": "members", "value": [{"value": "g1", "type": "Group"}]}]}',
    b'{"Operations": [{"op": "remove", "path": "members", "value": [{}]}]}',
    b'{"displayName": null}',
    b'{"displayName": "x", "members": [{"value": "abc"}]}',
    b"[" * 5000 + b"]" * 5000,
    '{"userName": "\u00e9@\u00e9.fr"}'.encode(),
    b"\xff\xfe\x00garbage",
]

GARBAGE_FILTERS = [
    "",
    "(",
    ")",
    'userName eq "a" and',
    'userName eq "a" or or userName eq "b"',
    "userName gt 5",
    "active gt true",
    'meta.created gt "yesterday"',
    'meta.lastModified gt "2011-05-13T04:42:34Z"',
    'emails[type eq "work"',
    'emails[value eq "a"].value eq "b"',
    "not not",
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a@b.c"',
    'urn:evil:x eq "a"',
    'userName eq "\u0000"',
    "x" * 3000,
    'userName eq "' + "(" * 500 + '"',
    "(" * 300 + 'userName eq "a"' + ")" * 300,
    'members[value eq "1"]',
    'id eq "g1"',
    "userName pr",
    'emails[type co "w"]',
    'emails[type gt "a"]',
    'emails[primary eq true and value sw "t"]',
    'active co "x"',
    "active gt true",
    "active pr",
    'groups[value eq "1"]',
    'name[givenName eq "x"]',
    'meta.created gt "2011-05-13T04:42:34+02:00"',
    "id eq 5",
]

GARBAGE_PATHS = [
    "/Users/%00",
    "/Users/1%2F..%2F2",
    "/Users/" + "9" * 40,
    "/Groups/g" + "9" * 40,
    "/Groups/gx",
    "/Schemas/urn:x",
    "/ResourceTypes/Nope",
    "/Users/1/extra",
]


@pytest.mark.parametrize("body", GARBAGE_BODIES)
def test_garbage_bodies_never_500(idp, body):
    user_id = idp.post("/Users", user_body("target@acme.example")).json["id"]
    group_id = idp.post("/Groups", {"displayName": "G"}).json["id"]
    for method, path in (
        ("POST", "/Users"),
        ("PUT", f"/Users/{user_id}"),
        ("PATCH", f"/Users/{user_id}"),
        ("POST", "/Groups"),
        ("PUT", f"/Groups/{group_id}"),
        ("PATCH", f"/Groups/{group_id}"),
        ("POST", "/.search"),
        ("POST", "/Users/.search"),
    ):
        response = idp.send(method, path, raw=body)
        assert response.status_code < 500, (method, path, response.get_data(as_text=True))
        assert response.content_type == SCIM_JSON
        if response.status_code >= 400:
            assert response.json["schemas"] == [ERROR_SCHEMA]


@pytest.mark.parametrize("text", GARBAGE_FILTERS)
def test_garbage_filters_never_500(idp, text):
    idp.post("/Users", user_body("target@acme.example"))
    for path in ("/Users", "/Groups"):
        response = idp.get(path, filter=text)
        assert response.status_code in (200, 400), (path, response.get_data(as_text=True))
        if response.status_code == 400:
            assert response.json["scimType"] == "invalidFilter"
    response = idp.post("/.search", {"filter": text})
    assert response.status_code in (200, 400)


@pytest.mark.parametrize("path", GARBAGE_PATHS)
def test_garbage_paths_never_500(idp, path):
    for method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
        response = idp.send(method, path, {"a": 1})
        assert response.status_code in (404, 405), (method, path, response.get_data(as_text=True))
        assert response.json["schemas"] == [ERROR_SCHEMA]


def test_garbage_attributes_never_500(idp):
    idp.post("/Users", user_body("target@acme.example"))
    for value in ("", ",", "nope", 'emails[type eq "work"]', "urn:x:y", "a" * 3000, "userName,userName"):
        for key in ("attributes", "excludedAttributes"):
            response = idp.get("/Users", **{key: value})
            assert response.status_code in (200, 400), response.get_data(as_text=True)
    both = idp.get("/Users", attributes="userName", excludedAttributes="emails")
    assert both.status_code in (200, 400)


def test_search_endpoints(idp):
    idp.post("/Users", user_body("s1@acme.example"))
    idp.post("/Groups", {"displayName": "S group"})
    found = idp.post(
        "/Users/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName eq "s1@acme.example"',
            "attributes": ["userName"],
        },
    )
    assert found.status_code == 200 and found.json["Resources"][0] == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": found.json["Resources"][0]["id"],
        "userName": "s1@acme.example",
    }
    everything = idp.post("/.search", {"count": 10})
    assert everything.json["totalResults"] == 2
    assert {r["schemas"][0].rsplit(":", 1)[1] for r in everything.json["Resources"]} == {"User", "Group"}
    by_name = idp.post("/.search", {"filter": 'displayName eq "S group"'})
    assert by_name.json["totalResults"] == 1


def test_every_change_is_audited_with_the_token_name(idp):
    user_id = idp.post("/Users", user_body("audit@acme.example")).json["id"]
    group_id = idp.post("/Groups", {"displayName": "A"}).json["id"]
    idp.patch(f"/Groups/{group_id}", [{"op": "add", "path": "members", "value": [{"value": user_id}]}])
    idp.delete(f"/Groups/{group_id}")
    idp.delete(f"/Users/{user_id}")
    actions = [
        e.action
        for e in db.session.query(AuditEvent).filter(AuditEvent.actor == "scim:Okta prod").order_by(AuditEvent.id)
    ]
    assert actions == [
        "user.create",
        "scim.user.create",
        "scim.group.create",
        "scim.group.patch",
        "scim.group.delete",
        "session.revoke_all",
        "user.delete",
        "scim.user.delete",
    ]
    assert json.dumps([e.details for e in db.session.query(AuditEvent)]).count("scim_") == 0  # no token in the trail
