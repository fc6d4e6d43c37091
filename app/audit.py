"""Writing audit events. The caller commits, so an event lands with the change it describes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import Table, select

from app.extensions import db
from app.models import AuditEvent
from app.observability import metrics
from app.timeutil import utcnow

log = logging.getLogger(__name__)

#: How many of a minute's newest events a repeated refusal is looked for among.
FOLD_SEARCH_LIMIT = 2000


def _request_actor() -> tuple[int | None, str | None, str | None]:
    if not has_request_context():
        return None, "cli", None
    user = current_user if current_user and current_user.is_authenticated else None
    ip = request.remote_addr
    if user is None:
        return None, "anonymous", ip
    return user.id, user.email, ip


def _storable(value: Any) -> Any:
    """``value`` with NUL characters replaced (U+FFFD), in strings nested in dicts and lists too.

    Refusals quote what a stranger sent; PostgreSQL cannot store NUL in text or JSON, and the
    record of a refusal must never fail because of what was refused.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def record(
    action: str,
    *,
    outcome: str = "success",
    error_code: str | None = None,
    account_id: int | None = None,
    subject_email: str | None = None,
    connection_id: int | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction and return it."""
    actor_id, actor_name, ip = _request_actor()
    subject_email, details = _storable(subject_email), _storable(details or {})
    event = AuditEvent(
        action=action,
        outcome=outcome,
        error_code=error_code,
        account_id=account_id,
        actor_user_id=actor_id,
        actor=actor or actor_name,
        subject_email=subject_email,
        connection_id=connection_id,
        ip=ip,
        details=details,
    )
    db.session.add(event)
    metrics.audit_recorded(action, outcome, error_code, connection_id, db.session())
    log.info("audit %s %s %s %s", action, outcome, error_code or "", subject_email or "")
    return event


def fold_repeat(
    action: str,
    *,
    error_code: str,
    subject_email: str | None,
    account_id: int | None,
    connection_id: int | None,
    since: datetime,
    count: int,
    reason: str,
) -> bool:
    """Count a repeat of an anonymous refusal in the first identical event since ``since``
    (identical down to the reason an admin reads, so that folding never hides a different one).

    Returns False when there is none yet (its request has not committed), and the caller writes
    an event of its own. ``count`` comes from an atomic counter, so two workers folding at once
    keep the larger figure. The search walks the ``(created_at, id)`` index from ``since`` only:
    a minute of events, however many years of history there are.
    """
    _actor_id, _actor_name, ip = _request_actor()
    # The newest events first, through the (created_at, id) index, in a LIMITed subquery that the
    # planner cannot merge: with statistics, SQLite and PostgreSQL would otherwise prefer an index
    # on the email or the code and walk years of refusals. Past the bound, a new row is written.
    recent = (
        select(AuditEvent.id)
        .where(AuditEvent.created_at >= since)
        .order_by(AuditEvent.created_at, AuditEvent.id)
        .limit(FOLD_SEARCH_LIMIT)
    )
    candidates = db.session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.id.in_(recent.scalar_subquery()),
            AuditEvent.action == action,
            AuditEvent.outcome == "failure",
            AuditEvent.error_code == error_code,
            AuditEvent.actor == "anonymous",
            AuditEvent.ip == ip,
            AuditEvent.subject_email == subject_email,
            AuditEvent.account_id == account_id,
            AuditEvent.connection_id == connection_id,
        )
        .order_by(AuditEvent.created_at, AuditEvent.id)
        .limit(FOLD_SEARCH_LIMIT)
        .with_for_update()
    )
    event = next((found for found in candidates if (found.details or {}).get("reason") == reason), None)
    if event is None:
        return False
    details = dict(event.details or {})
    details["count"] = max(int(details.get("count", 1)), count)
    details["last_at"] = utcnow().isoformat(timespec="seconds")
    event.details = details
    return True


def record_many(
    action: str,
    subjects: Iterable[tuple[str, dict[str, Any]]],
    *,
    account_id: int | None,
    actor: str | None = None,
) -> int:
    """Add one successful event per ``(subject_email, details)`` in one bulk INSERT; returns how many.

    For imports, which change thousands of users at once: one ORM object per event would cost
    more than the change itself, so this is a Core executemany.
    """
    actor_id, actor_name, ip = _request_actor()
    now = utcnow()
    rows = [
        {
            "created_at": now,
            "action": action,
            "outcome": "success",
            "error_code": None,
            "account_id": account_id,
            "actor_user_id": actor_id,
            "actor": actor or actor_name,
            "subject_email": email,
            "connection_id": None,
            "ip": ip,
            "details": details,
        }
        for email, details in subjects
    ]
    if rows:
        # Core executemany: one ORM object per event would cost more than the change itself.
        db.session.execute(cast(Table, AuditEvent.__table__).insert(), rows)
        log.info("audit %s x%d", action, len(rows))
    return len(rows)
