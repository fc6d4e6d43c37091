"""What every command shares: ``--json``, printing the answer, turning refusals into exit code 1,
finding the object an argument names, and the JSON shapes scripts rely on (DESIGN.md)."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from app.errors import CodedError
from app.extensions import db
from app.models import MAX_ID, Account, IdpConnection, User, UserSession
from app.saml import active_encryption_keys, resolve_options, sp_values
from app.services.accounts import find_account
from app.services.users import find_user_by_email

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")

#: The level of the ``app`` logger while one of our commands runs, unless LOG_LEVEL says otherwise:
#: a command prints its answer, not the audit trail it writes (that is in the database).
COMMAND_LOG_LEVEL = logging.WARNING


class CommandError(CodedError):
    """A refusal found by the command itself (bad arguments, nothing by that name)."""


@with_appcontext
def _quiet_logs() -> None:
    """Run by every group before its command: lower the ``app`` logger for this command only."""
    if current_app.config["LOG_LEVEL"]:
        return
    logger = logging.getLogger(current_app.import_name)
    before = logger.level
    logger.setLevel(COMMAND_LOG_LEVEL)
    click.get_current_context().call_on_close(lambda: logger.setLevel(before))


def command_group(name: str, help: str) -> AppGroup:
    """A ``flask NAME`` group whose commands log warnings only (LOG_LEVEL=INFO shows more)."""
    return AppGroup(name, help=help, callback=_quiet_logs)


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    """Print the answer: one JSON object under ``--json``, else ``text`` for people."""
    click.echo(json.dumps(data, default=str, sort_keys=True) if as_json else text)


def command_errors(func: Callable) -> Callable:
    """Turn refusals into exit code 1 with a message (JSON under --json); nothing half-written.

    Only coded refusals are caught: anything else is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CodedError as exc:
            db.session.rollback()
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": exc.code, "message": exc.message}))
                sys.exit(1)
            raise click.ClickException(f"{exc.message} [{exc.code}]") from None

    return wrapper


def get_account(slug: str) -> Account:
    account = find_account(slug)
    if account is None:
        raise CommandError("ACCOUNT_NOT_FOUND", f"no account {slug!r}")
    return account


def get_user(email: str) -> User:
    user = find_user_by_email(email)
    if user is None:
        raise CommandError("USER_NOT_FOUND", f"no user {email!r}")
    return user


def get_connection(connection_id: int) -> IdpConnection:
    connection = db.session.get(IdpConnection, connection_id) if 0 < connection_id <= MAX_ID else None
    if connection is None:
        raise CommandError("CONNECTION_NOT_FOUND", f"no IdP connection {connection_id}")
    return connection


def account_json(account: Account) -> dict[str, Any]:
    return {"id": account.id, "slug": account.slug, "name": account.name, "sso_required": account.sso_required}


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "account": user.account.slug,
        "roles": user.role_list,
        "status": user.status,
    }


def connection_json(connection: IdpConnection) -> dict[str, Any]:
    values = sp_values(connection)
    options = resolve_options(connection)
    return {
        "id": connection.id,
        "account": connection.account.slug,
        "provider": connection.plugin_key,
        "status": connection.status,
        "idp_entity_id": connection.idp_entity_id,
        "idp_sso_url": connection.idp_sso_url,
        "allow_idp_initiated": connection.allow_idp_initiated,
        "idp_slo_url": connection.idp_slo_url,
        "options": {
            "single_logout": options.single_logout,
            "encrypt_assertions": options.encrypt_assertions,
            "sign_requests": options.sign_requests,
            "signed_element": options.signed_element,
            "idp_initiated": connection.allow_idp_initiated,
        },
        "certificates": [
            {"fingerprint_sha256": cert.fingerprint_sha256, "not_after": cert.not_after.isoformat()}
            for cert in connection.certificates
        ],
        "encryption_certificates": [
            {
                "id": key.id,
                "fingerprint_sha256": key.fingerprint_sha256,
                "not_after": key.not_after.isoformat(),
                "certificate": key.certificate,
            }
            for key in active_encryption_keys(connection)
        ],
        **values.as_dict(),
    }


def session_json(session: UserSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "user": session.user.email if session.user else None,
        "app": session.app,
        "created_at": session.created_at,
        "last_used_at": session.last_used_at,
        "expires_at": session.expires_at,
        "ip": session.ip,
        "revoked_at": session.revoked_at,
        "revoked_reason": session.revoked_reason,
        "live": session.is_live(),
    }
