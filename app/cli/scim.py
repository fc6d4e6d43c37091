"""``flask scim``: SCIM tokens and the group-to-role mapping, for operators.

The same services as the account's SCIM page; every command takes ``--json`` and then prints one
JSON object.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.cli._common import CommandError, command_errors, command_group, emit, json_option
from app.extensions import db
from app.models import Account, ScimToken
from app.roles import CUSTOMER_ROLES
from app.services import provisioning
from app.services.scim_tokens import create_token, list_tokens, revoke_token, scim_base_url

scim_cli = command_group("scim", help="SCIM provisioning: tokens and group-to-role mapping.")
token_cli = AppGroup("token", help="The bearer tokens an account's IdP provisions with.")
groups_cli = AppGroup("groups", help="Which IdP groups give which role.")
scim_cli.add_command(token_cli)
scim_cli.add_command(groups_cli)


def _account(slug: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.slug == slug.strip().lower()))
    if account is None:
        raise CommandError("ACCOUNT_NOT_FOUND", f"no account {slug!r}")
    return account


def token_json(token: ScimToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "created_by": token.created_by,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


@token_cli.command("create")
@click.option("--account", "slug", required=True)
@click.option("--name", default="", help="What the token is for (shown as the actor of its changes).")
@json_option
@command_errors
def token_create(slug: str, name: str, as_json: bool) -> None:
    """Create a token; it is printed once and never again."""
    created = create_token(_account(slug), name=name, actor="cli")
    db.session.commit()
    emit(
        as_json,
        {"token": created.token, "base_url": scim_base_url(), "id": created.row.id},
        f"SCIM base URL: {scim_base_url()}\nToken {created.row.id} ({created.row.name}), shown only now:\n"
        f"{created.token}",
    )


@token_cli.command("list")
@click.option("--account", "slug", required=True)
@json_option
@command_errors
def token_list(slug: str, as_json: bool) -> None:
    """The account's tokens (never the secrets): when each was last used, which are revoked."""
    tokens = list_tokens(_account(slug).id)
    lines = [
        f"{token.id}\t{token.name}\t{token.prefix}…\tlast used {token.last_used_at or 'never'}"
        + (f"\trevoked {token.revoked_at}" if token.revoked_at else "")
        for token in tokens
    ]
    emit(as_json, {"tokens": [token_json(token) for token in tokens]}, "\n".join(lines) or "No SCIM tokens.")


@token_cli.command("revoke")
@click.argument("token_id", type=int)
@json_option
@command_errors
def token_revoke(token_id: int, as_json: bool) -> None:
    """Revoke a token: the IdP's next request with it gets 401."""
    token = db.session.get(ScimToken, token_id)
    if token is None:
        raise CommandError("SCIM_TOKEN_NOT_FOUND", f"no SCIM token {token_id}")
    revoked = revoke_token(token, actor="cli")
    db.session.commit()
    emit(as_json, {"id": token.id, "revoked": revoked}, f"Token {token.id} revoked." if revoked else "Already revoked.")


@groups_cli.command("map")
@click.option("--account", "slug", required=True)
@click.option("--group", "group", required=True, help="The group's name as the IdP pushes it.")
@click.option("--role", type=click.Choice(sorted(CUSTOMER_ROLES)), required=True)
@json_option
@command_errors
def groups_map(slug: str, group: str, role: str, as_json: bool) -> None:
    """Members of GROUP get ROLE (members already pushed get it at once)."""
    mapping = provisioning.map_group(_account(slug), group, role, actor="cli")
    db.session.commit()
    emit(as_json, {"group": mapping.group_name, "role": mapping.role}, f"Members of {group!r} get the role {role}.")


@groups_cli.command("unmap")
@click.option("--account", "slug", required=True)
@click.option("--group", "group", required=True)
@json_option
@command_errors
def groups_unmap(slug: str, group: str, as_json: bool) -> None:
    """Stop giving a role to GROUP's members (they lose it, and the sessions of its apps)."""
    removed = provisioning.unmap_group(_account(slug), group, actor="cli")
    db.session.commit()
    emit(as_json, {"group": group, "removed": removed}, "Mapping removed." if removed else "No such mapping.")


@groups_cli.command("list")
@click.option("--account", "slug", required=True)
@json_option
@command_errors
def groups_list(slug: str, as_json: bool) -> None:
    """The account's group-to-role mapping."""
    mappings = provisioning.list_group_roles(_account(slug).id)
    emit(
        as_json,
        {"mappings": [{"group": m.group_name, "role": m.role} for m in mappings]},
        "\n".join(f"{m.group_name}\t{m.role}" for m in mappings) or "No group is mapped to a role.",
    )
