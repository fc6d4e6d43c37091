"""``flask users``: create, deactivate, reactivate, delete, import from CSV."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from app.cli._common import (
    CommandError,
    command_errors,
    command_group,
    emit,
    get_account,
    get_user,
    json_option,
    user_json,
)
from app.extensions import db
from app.formatting import plural, thousands
from app.models import User
from app.roles import parse_roles
from app.services.imports import ImportReport, import_users, record_refused_import
from app.services.users import create_user, deactivate_user, delete_user, reactivate_user

users_cli = command_group("users", help="Users of an account.")

#: Files at least this large show a progress bar (on stderr, without --json).
IMPORT_PROGRESS_BYTES = 1024 * 1024
#: The shortest password ``--password-stdin`` accepts.
MIN_PASSWORD_LENGTH = 12


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
    account = get_account(slug)
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise CommandError(
                "PASSWORD_TOO_SHORT", f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
            )
    user = create_user(
        account, email, roles=parse_roles(roles, allow_staff=True), name=name, password=password, actor="cli"
    )
    db.session.commit()
    emit(
        as_json, user_json(user), f"Created user {user.email} in {account.slug} with roles {','.join(user.role_list)}."
    )


def _status_command(name: str, action: Callable[[User], int | None], done: str) -> None:
    """Register ``flask users NAME EMAIL``: one user hook, its revoked sessions counted."""

    @users_cli.command(name)
    @click.argument("email")
    @json_option
    @command_errors
    def command(email: str, as_json: bool) -> None:
        user = get_user(email)
        data = user_json(user)
        revoked = action(user)
        db.session.commit()
        data.update(status=user.status if name != "delete" else "deleted", sessions_revoked=revoked or 0)
        emit(as_json, data, f"{done} {data['email']} ({plural(revoked or 0, 'session')} revoked).")

    command.__doc__ = f"{done} a user; their sessions end at once."


_status_command("deactivate", lambda user: deactivate_user(user, actor="cli"), "Deactivated")
_status_command("reactivate", lambda user: reactivate_user(user, actor="cli"), "Reactivated")
_status_command("delete", lambda user: delete_user(user, actor="cli"), "Deleted")


def _import_text(report: ImportReport) -> str:
    """The import report for people: counts, then every refusal with its line and code."""
    verb = "Dry run" if report.dry_run else ("Imported" if report.applied else "Nothing imported")
    lines = [
        f"{verb} for {report.account_slug}: {plural(report.rows, 'row')}; create {thousands(report.count('create'))}, "
        f"update {thousands(report.count('update'))}, unchanged {thousands(report.count('unchanged'))}, "
        f"refused {thousands(report.refused)}"
        + (f"; deactivate {plural(report.count('deactivate'), 'missing user')}" if report.deactivate_missing else "")
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
    account = get_account(slug)
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
                    progress=lambda done, _rows: bar.update(done - bar.pos),
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
