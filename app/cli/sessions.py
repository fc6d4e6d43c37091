"""``flask sessions``: list, revoke, purge server-side sessions."""

from __future__ import annotations

import click
from flask import current_app
from sqlalchemy import select

from app import audit
from app.cli._common import (
    CommandError,
    command_errors,
    command_group,
    emit,
    get_account,
    get_user,
    json_option,
    session_json,
)
from app.extensions import db
from app.formatting import plural
from app.models import MAX_ID, UserSession
from app.services.import_jobs import drop_stale_uploads
from app.sessions import revoke_session, revoke_sessions_for_user
from app.sessions.purge import TARGETS as PURGE_TARGETS
from app.sessions.purge import PurgePolicy, purge_batch
from app.timeutil import utcnow

sessions_cli = command_group("sessions", help="Server-side sessions.")


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
        query = query.where(UserSession.account_id == get_account(slug).id)
    if email:
        query = query.where(UserSession.user_id == get_user(email).id)
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
    if email:
        revoked = revoke_sessions_for_user(get_user(email), "revoked_by_operator")
    else:
        session = db.session.get(UserSession, session_id) if session_id and 0 < session_id <= MAX_ID else None
        if session is None:
            raise CommandError("SESSION_NOT_FOUND", f"no session {session_id}")
        revoked = int(revoke_session(session, "revoked_by_operator"))
    db.session.commit()
    emit(as_json, {"revoked": revoked, "at": utcnow()}, f"Revoked {plural(revoked, 'session')}.")


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
    "--audit-days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep audit events younger than this [default: AUDIT_RETENTION_DAYS, 365].",
)
@click.option(
    "--refusal-days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep anonymous refused sign-ins younger than this [default: REFUSAL_RETENTION_DAYS, 30].",
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
def sessions_purge(
    retention_days: int, audit_days: int | None, refusal_days: int | None, batch_size: int, as_json: bool
) -> None:
    """Delete long-ended sessions, spent replay-cache entries, expired pending requests,
    unfinished sign-in results and rate-limit counters, audit events past their retention, and
    the stored files of CSV import previews that expired or whose job stopped.

    Safe while the portal serves traffic: short transactions of --batch-size rows each.
    """
    audit_days = audit_days or current_app.config["AUDIT_RETENTION_DAYS"]
    refusal_days = refusal_days or current_app.config["REFUSAL_RETENTION_DAYS"]
    policy = PurgePolicy.now(retention_days, audit_days, refusal_days)
    deleted = dict.fromkeys(PURGE_TARGETS, 0)
    for target in PURGE_TARGETS:
        while True:
            count = purge_batch(target, policy, batch_size)
            db.session.commit()
            deleted[target] += count
            if count < batch_size:
                break
    # Stored CSV uploads whose preview expired or whose worker died (their rows stay, as history).
    deleted["import_uploads"] = 0
    while True:
        count = drop_stale_uploads(limit=batch_size)
        db.session.commit()
        deleted["import_uploads"] += count
        if count < batch_size:
            break
    retention = {
        "retention_days": retention_days,
        "audit_retention_days": audit_days,
        "refusal_retention_days": refusal_days,
    }
    audit.record("sessions.purge", details={**retention, **deleted})
    db.session.commit()
    emit(
        as_json,
        {"deleted": deleted, **retention},
        # Every target is named by a regular plural ("pending_requests"): its singular drops the s.
        "Deleted " + ", ".join(plural(count, target.replace("_", " ")[:-1]) for target, count in deleted.items()) + ".",
    )
