"""``flask accounts``: create an account, switch "SSO required"."""

from __future__ import annotations

import click

from app.cli._common import account_json, command_errors, command_group, emit, get_account, json_option
from app.extensions import db
from app.services.accounts import create_account, set_sso_required

accounts_cli = command_group("accounts", help="Customer accounts.")


@accounts_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--sso-required", is_flag=True, help="Users of this account cannot use a password.")
@json_option
@command_errors
def accounts_create(slug: str, name: str, sso_required: bool, as_json: bool) -> None:
    """Create an account."""
    account = create_account(slug, name, sso_required=sso_required, actor="cli")
    db.session.commit()
    emit(as_json, account_json(account), f"Created account {account.slug} ({account.id}).")


@accounts_cli.command("sso-required")
@click.argument("slug")
@click.option("--on/--off", "required", required=True, help="Require SSO, or allow passwords again.")
@json_option
@command_errors
def accounts_sso_required(slug: str, required: bool, as_json: bool) -> None:
    """Switch "SSO required" on (only with an enabled connection whose test sign-in fully succeeded,
    as on the setup page) or off (always: the operator's way back if an IdP breaks)."""
    account = get_account(slug)
    set_sso_required(account, required, actor="cli")
    db.session.commit()
    emit(as_json, account_json(account), f"SSO required for {account.slug}: {'on' if required else 'off'}.")
