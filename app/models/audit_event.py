"""The AuditEvent model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.timeutil import utcnow


class AuditEvent(Model):
    """Who did what to whom, when, with what outcome.

    Ids are kept as plain numbers, not foreign keys: the trail must outlive the rows it names.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_created_at_id", "created_at", "id"),
        Index("ix_audit_events_account_id_created_at", "account_id", "created_at"),
        Index("ix_audit_events_connection_id_created_at", "connection_id", "created_at"),
        #: Support's "done by" filter: one actor's events, newest first, paged by (created_at, id).
        Index("ix_audit_events_actor_created_at_id", "actor", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: Dotted verb: ``signin.sso``, ``signin.password``, ``user.deactivate``, ``session.revoke`` ...
    action: Mapped[str] = mapped_column(String(64), index=True)
    #: ``success`` or ``failure``.
    outcome: Mapped[str] = mapped_column(String(16))
    #: Stable error code for failures (``USER_NOT_FOUND``, ``SAML_REPLAY`` ...).
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    account_id: Mapped[int | None] = mapped_column(nullable=True)
    actor_user_id: Mapped[int | None] = mapped_column(nullable=True)
    #: The actor's email, or ``cli`` / ``anonymous``.
    actor: Mapped[str | None] = mapped_column(String(320), nullable=True)
    #: The user acted on (or who tried to sign in), by email.
    subject_email: Mapped[str | None] = mapped_column(String(320), nullable=True, index=True)
    connection_id: Mapped[int | None] = mapped_column(nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: What an admin needs to understand the event (never a token, password or raw SAML).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
