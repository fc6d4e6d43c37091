"""The audit trail as tests read it: the events of one action, oldest first."""

from __future__ import annotations

from app.extensions import db
from app.models import AuditEvent, IdpConnection


def audit_events(action: str, connection: IdpConnection | None = None) -> list[AuditEvent]:
    """Every ``action`` event (of ``connection`` only, when given), in the order they happened."""
    query = db.session.query(AuditEvent).filter_by(action=action)
    if connection is not None:
        query = query.filter_by(connection_id=connection.id)
    return query.order_by(AuditEvent.id).all()
