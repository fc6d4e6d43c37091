"""``flask scim``: tokens (shown once, hashed, two live at most, revoked) and the group-to-role mapping."""

from __future__ import annotations

import hashlib
import json

from app.extensions import db
from app.models import ScimToken
from tests.scim_helpers import Idp, user_body


def run_json(runner, *args: str) -> tuple[int, dict]:
    result = runner.invoke(args=[*args, "--json"])
    return result.exit_code, json.loads(result.output)


def test_token_create_prints_the_secret_once_and_keeps_only_its_hash(runner, client, make_account):
    make_account()
    code, created = run_json(runner, "scim", "token", "create", "--account", "acme", "--name", "Okta")
    assert code == 0
    assert set(created) == {"token", "base_url", "id"}
    assert created["base_url"] == "https://sso.test/scim/v2"
    row = db.session.get(ScimToken, created["id"])
    assert row.token_hash == hashlib.sha256(created["token"].encode()).hexdigest()
    assert created["token"] not in json.dumps(run_json(runner, "scim", "token", "list", "--account", "acme")[1])

    assert Idp(client, created["token"]).get("/Users").status_code == 200
    code, listed = run_json(runner, "scim", "token", "list", "--account", "acme")
    assert listed["tokens"][0]["last_used_at"] is not None


def test_two_live_tokens_at_most_then_revoke_one(runner, client, make_account):
    make_account()
    first = run_json(runner, "scim", "token", "create", "--account", "acme")[1]
    run_json(runner, "scim", "token", "create", "--account", "acme")
    code, refused = run_json(runner, "scim", "token", "create", "--account", "acme")
    assert code == 1 and refused["error"] == "SCIM_TOKEN_LIMIT"

    code, revoked = run_json(runner, "scim", "token", "revoke", str(first["id"]))
    assert code == 0 and revoked == {"id": first["id"], "revoked": True}
    response = Idp(client, first["token"]).get("/Users")
    assert response.status_code == 401
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert run_json(runner, "scim", "token", "create", "--account", "acme")[0] == 0


def test_unknown_account_and_token_are_refused_with_codes(runner):
    assert run_json(runner, "scim", "token", "create", "--account", "nope")[1]["error"] == "ACCOUNT_NOT_FOUND"
    assert run_json(runner, "scim", "token", "revoke", "999")[1]["error"] == "SCIM_TOKEN_NOT_FOUND"
    result = runner.invoke(args=["scim", "groups", "map", "--account", "acme", "--group", "x", "--role", "support"])
    assert result.exit_code == 2  # click refuses a role outside admin|agent


def test_groups_map_gives_members_the_role_and_unmap_takes_it_back(runner, client, make_account):
    make_account()
    token = run_json(runner, "scim", "token", "create", "--account", "acme")[1]["token"]
    idp = Idp(client, token)
    user_id = idp.post("/Users", user_body("ada@acme.example")).json["id"]
    idp.post("/Groups", {"displayName": "Support Agents", "members": [{"value": user_id}]})
    assert idp.get(f"/Users/{user_id}").json.get("roles") is None

    code, mapped = run_json(
        runner, "scim", "groups", "map", "--account", "acme", "--group", "support agents", "--role", "agent"
    )
    assert code == 0 and mapped == {"group": "support agents", "role": "agent"}
    from app.services.users import find_user_by_email

    assert find_user_by_email("ada@acme.example").role_list == ["agent"]
    assert run_json(runner, "scim", "groups", "list", "--account", "acme")[1]["mappings"] == [
        {"group": "support agents", "role": "agent"}
    ]
    code, unmapped = run_json(runner, "scim", "groups", "unmap", "--account", "acme", "--group", "Support Agents")
    assert unmapped["removed"] is True
    db.session.expire_all()
    assert find_user_by_email("ada@acme.example").role_list == []
