"""The ``flask`` commands. Every command takes ``--json`` and then prints one JSON object."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.models import Account, IdpConnection, User, UserSession
from app.roles import parse_roles
from app.saml.core import MAX_ID, sp_metadata_xml
from app.saml.metadata import fetch_metadata, parse_idp_metadata
from app.saml.urls import sp_values
from app.services.connections import (
    create_connection,
    enable_connection,
    manual_metadata,
    refresh_from_metadata_url,
)
from app.services.imports import ImportReport, import_users, record_refused_import
from app.services.users import create_user, deactivate_user, delete_user, find_user_by_email, reactivate_user
from app.sessions import revoke_session, revoke_sessions_for_user
from app.sessions.purge import TARGETS as PURGE_TARGETS
from app.sessions.purge import PurgePolicy, purge_batch
from app.timeutil import utcnow

accounts_cli = AppGroup("accounts", help="Customer accounts.")
users_cli = AppGroup("users", help="Users of an account.")
idp_cli = AppGroup("idp", help="IdP connections.")
sessions_cli = AppGroup("sessions", help="Server-side sessions.")
demo_cli = AppGroup("demo", help="The development demo IdP.")

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


class CommandError(click.ClickException):
    """A refusal with a stable code; printed as JSON under --json."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, default=str, sort_keys=True) if as_json else text)


def command_errors(func: Callable) -> Callable:
    """Turn refusals into exit code 1 with a message (JSON under --json); nothing half-written."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (CommandError, CodedError) as exc:
            db.session.rollback()
            code, message = exc.code, exc.message
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": code, "message": message}))
                sys.exit(1)
            raise click.ClickException(f"{message} [{code}]") from None

    return wrapper


def _account(slug: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.slug == slug.strip().lower()))
    if account is None:
        raise CommandError("ACCOUNT_NOT_FOUND", f"no account {slug!r}")
    return account


def _user(email: str) -> User:
    user = find_user_by_email(email)
    if user is None:
        raise CommandError("USER_NOT_FOUND", f"no user {email!r}")
    return user


def _connection(connection_id: int) -> IdpConnection:
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
    return {
        "id": connection.id,
        "account": connection.account.slug,
        "provider": connection.plugin_key,
        "status": connection.status,
        "idp_entity_id": connection.idp_entity_id,
        "idp_sso_url": connection.idp_sso_url,
        "allow_idp_initiated": connection.allow_idp_initiated,
        "certificates": [
            {"fingerprint_sha256": cert.fingerprint_sha256, "not_after": cert.not_after.isoformat()}
            for cert in connection.certificates
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


# --- accounts -------------------------------------------------------------------------------


@accounts_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--sso-required", is_flag=True, help="Users of this account cannot use a password.")
@json_option
@command_errors
def accounts_create(slug: str, name: str, sso_required: bool, as_json: bool) -> None:
    """Create an account."""
    slug = slug.strip().lower()
    if not slug.replace("-", "").isalnum() or len(slug) > 64:
        raise CommandError("ACCOUNT_INVALID", "the slug may contain letters, digits and dashes (64 at most)")
    if db.session.scalar(select(Account).where(Account.slug == slug)):
        raise CommandError("ACCOUNT_EXISTS", f"an account {slug!r} already exists")
    account = Account(slug=slug, name=name.strip(), sso_required=sso_required)
    db.session.add(account)
    db.session.flush()
    audit.record("account.create", account_id=account.id, details={"slug": slug, "sso_required": sso_required})
    db.session.commit()
    emit(as_json, account_json(account), f"Created account {slug} ({account.id}).")


@accounts_cli.command("sso-required")
@click.argument("slug")
@click.option("--on/--off", "required", required=True, help="Require SSO, or allow passwords again.")
@json_option
@command_errors
def accounts_sso_required(slug: str, required: bool, as_json: bool) -> None:
    """Switch "SSO required" on or off (the operator's way back if an IdP breaks)."""
    account = _account(slug)
    account.sso_required = required
    audit.record("account.sso_required", account_id=account.id, details={"sso_required": required})
    db.session.commit()
    emit(as_json, account_json(account), f"SSO required for {slug}: {'on' if required else 'off'}.")


# --- users ----------------------------------------------------------------------------------


@users_cli.command("create")
@click.argument("email")
@click.option("--account", "slug", required=True)
@click.option("--roles", required=True, help="Comma-separated: admin, agent (support for staff).")
@click.option("--name", default="")
@click.option("--password-stdin", is_flag=True, help="Read a password from standard input.")
@json_option
@command_errors
def users_create(email: str, slug: str, roles: str, name: str, password_stdin: bool, as_json: bool) -> None:
    """Create a user (the first admin gets a password this way, to set SSO up)."""
    account = _account(slug)
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < 12:
            raise CommandError("PASSWORD_TOO_SHORT", "the password must have at least 12 characters")
    user = create_user(
        account, email, roles=parse_roles(roles, allow_staff=True), name=name, password=password, actor="cli"
    )
    db.session.commit()
    emit(
        as_json, user_json(user), f"Created user {user.email} in {account.slug} with roles {','.join(user.role_list)}."
    )


def _status_command(name: str, action: Callable[[User], int | None], done: str) -> None:
    @users_cli.command(name)
    @click.argument("email")
    @json_option
    @command_errors
    def command(email: str, as_json: bool) -> None:
        user = _user(email)
        data = user_json(user)
        revoked = action(user)
        db.session.commit()
        data.update(status=user.status if name != "delete" else "deleted", sessions_revoked=revoked or 0)
        emit(as_json, data, f"{done} {data['email']} ({revoked or 0} sessions revoked).")

    command.__doc__ = f"{done} a user; their sessions end at once."


_status_command("deactivate", lambda user: deactivate_user(user, actor="cli"), "Deactivated")
_status_command("reactivate", lambda user: reactivate_user(user, actor="cli"), "Reactivated")
_status_command("delete", lambda user: delete_user(user, actor="cli"), "Deleted")


#: Files at least this large show a progress bar (on stderr, without --json).
IMPORT_PROGRESS_BYTES = 1024 * 1024


def _import_text(report: ImportReport) -> str:
    """The import report for people: counts, then every refusal with its line and code."""
    verb = "Dry run" if report.dry_run else ("Imported" if report.applied else "Nothing imported")
    lines = [
        f"{verb} for {report.account_slug}: {report.rows} row(s); create {report.count('create')}, "
        f"update {report.count('update')}, unchanged {report.count('unchanged')}, refused {report.refused}"
        + (f"; deactivate {report.count('deactivate')} missing user(s)" if report.deactivate_missing else "")
        + "."
    ]
    if report.file_error:
        lines.append(f"{report.file_error.code}: {report.file_error.message}")
    lines += [f"line {issue.line}: {issue.code}: {issue.message}" for issue in report.issues]
    if report.stopped_early:
        lines.append(f"Stopped after {report.refused} refused rows: fix these first.")
    if report.deactivate_missing and report.samples["deactivate"]:
        lines.append(
            "Missing from the file (deactivated when applied): "
            + ", ".join(row.email for row in report.samples["deactivate"])
        )
    return "\n".join(lines)


@users_cli.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", "slug", required=True)
@click.option("--dry-run", is_flag=True, help="Check the file and show what would change; change nothing.")
@click.option(
    "--deactivate-missing", is_flag=True, help="Deactivate (and sign out) the account's users missing from the file."
)
@json_option
@command_errors
def users_import(csv_file: Path, slug: str, dry_run: bool, deactivate_missing: bool, as_json: bool) -> None:
    """Import users from a CSV file (email,name,roles; roles joined by ';'). All rows or none."""
    account = _account(slug)
    size = csv_file.stat().st_size
    with csv_file.open("rb") as stream:
        if as_json or size < IMPORT_PROGRESS_BYTES:
            report = import_users(
                account, stream, apply=not dry_run, deactivate_missing=deactivate_missing, actor="cli"
            )
        else:
            label = "Checking" if dry_run else "Importing"
            with click.progressbar(length=size, label=label, file=sys.stderr) as bar:
                report = import_users(
                    account,
                    stream,
                    apply=not dry_run,
                    deactivate_missing=deactivate_missing,
                    actor="cli",
                    progress=lambda done: bar.update(done - bar.pos),
                )
    if report.applied:
        db.session.commit()
    else:
        db.session.rollback()
        if not dry_run:
            record_refused_import(account, report, actor="cli")
            db.session.commit()
    data = report.as_dict()
    if not report.ok:
        data["error"] = report.file_error.code if report.file_error else "IMPORT_REFUSED"
    emit(as_json, data, _import_text(report))
    if not report.ok:
        sys.exit(1)


# --- idp ------------------------------------------------------------------------------------


@idp_cli.command("add")
@click.option("--account", "slug", required=True)
@click.option("--provider", required=True, help="google, entra, okta, onelogin, salesforce or generic.")
@click.option("--metadata-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--metadata-url")
@click.option("--entity-id")
@click.option("--sso-url")
@click.option("--cert-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--enable", is_flag=True, help="Enable at once (skips the wizard's test sign-in).")
@json_option
@command_errors
def idp_add(
    slug: str,
    provider: str,
    metadata_file: Path | None,
    metadata_url: str | None,
    entity_id: str | None,
    sso_url: str | None,
    cert_file: Path | None,
    enable: bool,
    as_json: bool,
) -> None:
    """Connect an account to its IdP and print the SP values to paste into the IdP."""
    from flask import current_app

    account = _account(slug)
    sources = [bool(metadata_file), bool(metadata_url), bool(entity_id or sso_url or cert_file)]
    if sum(sources) != 1:
        raise CommandError(
            "IDP_SOURCE", "give exactly one of --metadata-file, --metadata-url, or --entity-id/--sso-url/--cert-file"
        )
    if metadata_file:
        idp = parse_idp_metadata(metadata_file.read_bytes())
    elif metadata_url:
        idp = parse_idp_metadata(
            fetch_metadata(metadata_url, allow_insecure=current_app.config["METADATA_FETCH_ALLOW_INSECURE"])
        )
    else:
        if not (entity_id and sso_url and cert_file):
            raise CommandError("IDP_SOURCE", "manual entry needs --entity-id, --sso-url and --cert-file")
        idp = manual_metadata(entity_id, sso_url, [cert_file.read_text(errors="replace")])
    connection = create_connection(account, provider, idp, metadata_url=metadata_url, actor="cli")
    if enable:
        enable_connection(connection, actor="cli")
    db.session.commit()
    values = sp_values(connection)
    data = {"id": connection.id, "status": connection.status, "warnings": idp.warnings, **values.as_dict()}
    text = "\n".join(
        [
            f"Created IdP connection {connection.id} ({provider}, {connection.status}). Paste into your IdP:",
            f"  Entity ID / Audience: {values.sp_entity_id}",
            f"  ACS URL:              {values.acs_url}",
            f"  SP metadata URL:      {values.metadata_url}",
            *[f"Warning: {w}" for w in idp.warnings],
        ]
    )
    emit(as_json, data, text)


@idp_cli.command("show")
@click.argument("connection_id", type=int)
@json_option
@command_errors
def idp_show(connection_id: int, as_json: bool) -> None:
    """Show a connection: IdP side, SP values, certificates, status."""
    data = connection_json(_connection(connection_id))
    emit(as_json, data, "\n".join(f"{key}: {value}" for key, value in data.items()))


@idp_cli.command("enable")
@click.argument("connection_id", type=int)
@json_option
@command_errors
def idp_enable(connection_id: int, as_json: bool) -> None:
    """Enable sign-in through a connection."""
    connection = _connection(connection_id)
    enable_connection(connection, actor="cli")
    db.session.commit()
    emit(as_json, connection_json(connection), f"Enabled IdP connection {connection.id}.")


@idp_cli.command("sp-metadata")
@click.argument("connection_id", type=int)
@json_option
@command_errors
def idp_sp_metadata(connection_id: int, as_json: bool) -> None:
    """Print the SP metadata XML of a connection."""
    xml = sp_metadata_xml(_connection(connection_id))
    emit(as_json, {"id": connection_id, "metadata": xml}, xml)


@idp_cli.command("refresh")
@click.argument("connection_id", type=int)
@json_option
@command_errors
def idp_refresh(connection_id: int, as_json: bool) -> None:
    """Re-import a connection's metadata URL: new certificates are added, old ones kept."""
    connection = _connection(connection_id)
    added = refresh_from_metadata_url(connection, actor="cli")
    db.session.commit()
    emit(as_json, {**connection_json(connection), "certificates_added": added}, f"{added} new certificate(s).")


# --- sessions -------------------------------------------------------------------------------


@sessions_cli.command("list")
@click.option("--account", "slug")
@click.option("--user", "email")
@click.option("--limit", default=100, show_default=True)
@json_option
@command_errors
def sessions_list(slug: str | None, email: str | None, limit: int, as_json: bool) -> None:
    """List sessions, newest first."""
    query = select(UserSession).order_by(UserSession.created_at.desc(), UserSession.id.desc()).limit(limit)
    if slug:
        query = query.where(UserSession.account_id == _account(slug).id)
    if email:
        query = query.where(UserSession.user_id == _user(email).id)
    sessions = [session_json(s) for s in db.session.scalars(query)]
    lines = [
        f"{s['id']:>6} {s['user'] or '(deleted)':<32} {s['app']:<8} {'live' if s['live'] else 'ended':<6} last used {s['last_used_at']:%Y-%m-%d %H:%M}"
        for s in sessions
    ]
    emit(as_json, {"sessions": sessions}, "\n".join(lines) or "No sessions.")


@sessions_cli.command("revoke")
@click.option("--id", "session_id", type=int)
@click.option("--user", "email")
@json_option
@command_errors
def sessions_revoke(session_id: int | None, email: str | None, as_json: bool) -> None:
    """Revoke one session, or every session of a user."""
    if bool(session_id) == bool(email):
        raise CommandError("REVOKE_TARGET", "give exactly one of --id or --user")
    if session_id:
        session = db.session.get(UserSession, session_id) if 0 < session_id <= MAX_ID else None
        if session is None:
            raise CommandError("SESSION_NOT_FOUND", f"no session {session_id}")
        revoked = int(revoke_session(session, "revoked_by_operator"))
        audit.record("session.revoke", account_id=session.account_id, details={"session_id": session_id})
    else:
        user = _user(email)
        revoked = revoke_sessions_for_user(user.id, "revoked_by_operator")
        audit.record(
            "session.revoke_all", account_id=user.account_id, subject_email=user.email, details={"revoked": revoked}
        )
    db.session.commit()
    emit(as_json, {"revoked": revoked, "at": utcnow()}, f"Revoked {revoked} session(s).")


@sessions_cli.command("purge")
@click.option(
    "--older-than-days",
    "retention_days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Keep sessions that ended more recently than this, for support to see.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=100_000),
    default=1000,
    show_default=True,
    help="Rows deleted per transaction.",
)
@json_option
@command_errors
def sessions_purge(retention_days: int, batch_size: int, as_json: bool) -> None:
    """Delete long-ended sessions, spent replay-cache entries and expired pending requests.

    Safe while the portal serves traffic: short transactions of --batch-size rows each.
    """
    policy = PurgePolicy.now(retention_days)
    deleted = dict.fromkeys(PURGE_TARGETS, 0)
    for target in PURGE_TARGETS:
        while True:
            count = purge_batch(target, policy, batch_size)
            db.session.commit()
            deleted[target] += count
            if count < batch_size:
                break
    audit.record("sessions.purge", details={"retention_days": retention_days, **deleted})
    db.session.commit()
    emit(
        as_json,
        {"deleted": deleted, "retention_days": retention_days},
        "Deleted " + ", ".join(f"{count} {target.replace('_', ' ')}" for target, count in deleted.items()) + ".",
    )


# --- demo -----------------------------------------------------------------------------------


@demo_cli.command("setup")
@json_option
@command_errors
def demo_setup(as_json: bool) -> None:
    """Create the demo account, users and demo IdP connection (development settings only)."""
    from flask import current_app

    from app.demo_idp.setup import ensure_demo

    if not current_app.config["DEMO_IDP"]:
        raise CommandError("DEMO_DISABLED", "the demo IdP exists only with APP_ENV=development")
    connection = ensure_demo()
    db.session.commit()
    emit(
        as_json,
        connection_json(connection),
        f"Demo ready: sign in at {current_app.config['BASE_URL']}/login as alice@demo.example.",
    )


def init_app(app: Flask) -> None:
    from app.cli.scim import scim_cli

    for group in (accounts_cli, users_cli, idp_cli, sessions_cli, demo_cli, scim_cli):
        app.cli.add_command(group)
