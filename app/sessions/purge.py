"""Clean-up of rows that can never be used again: ended sessions, spent replay-cache entries,
abandoned AuthnRequests, verified web sign-ins nobody came back to finish, app authorization
requests, expired one-time codes, rate-limit
counters of past windows (and lock-outs that ended); and of audit events past their retention:
anonymous refusals after ``REFUSAL_RETENTION_DAYS``, every event after ``AUDIT_RETENTION_DAYS``.

Safe while the portal serves traffic: each batch is a short DELETE of rows chosen by primary key,
and only rows past every point where a request could still use them (a session revoked or
expired ``retention`` ago cannot come back to life; an assertion past NotOnOrAfter plus the clock
skew is refused by its time check anyway). Ended sessions are kept for ``retention`` so that
support can still see why someone was signed out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, or_, select, tuple_

from app.extensions import db
from app.models import (
    AppAuthorizationCode,
    AppAuthorizationRequest,
    AuditEvent,
    PendingRequest,
    RateLimitCounter,
    SignInResult,
    UsedAssertion,
    UserSession,
)
from app.timeutil import utcnow

#: Short-lived rows with one primary key, dead once expired: AuthnRequests, verified web sign-ins
#: nobody came back to finish (two minutes), and the app sign-in's authorization requests and
#: one-time codes (a code lives 60 seconds).
_EXPIRING = {
    "pending_requests": (PendingRequest.id, PendingRequest.expires_at),
    "signin_results": (SignInResult.token_hash, SignInResult.expires_at),
    "app_authorization_requests": (AppAuthorizationRequest.id, AppAuthorizationRequest.expires_at),
    "app_authorization_codes": (AppAuthorizationCode.id, AppAuthorizationCode.expires_at),
}

#: Rows keyed by two columns, dead once expired: the replay cache (an assertion past NotOnOrAfter
#: is refused by its time check anyway) and rate-limit counters of past windows.
_EXPIRING_BY_PAIR = {
    "used_assertions": ((UsedAssertion.connection_id, UsedAssertion.assertion_id), UsedAssertion.expires_at),
    "rate_limit_counters": ((RateLimitCounter.key, RateLimitCounter.window_start), RateLimitCounter.expires_at),
}

#: Audit events past their retention. Refused sign-ins (anonymous failures: what a flood writes)
#: go sooner; both searches walk an index on ``created_at``.
_AUDIT = ("refused_signins", "audit_events")

#: What ``purge_batch`` can clean, in the order the command cleans them.
TARGETS = ("sessions", *_EXPIRING_BY_PAIR, *_EXPIRING, *_AUDIT)


@dataclass(frozen=True)
class PurgePolicy:
    """The moment before which each kind of row is dead."""

    #: Sessions revoked or expired before this are deleted.
    sessions_before: dt.datetime
    #: The session lifetime: a revoked session expires at most this long after its revocation.
    lifetime: dt.timedelta
    #: Replay-cache entries and pending requests that expired before this are deleted.
    saml_before: dt.datetime
    #: Audit events written before this are deleted.
    audit_before: dt.datetime
    #: Anonymous refusals written before this are deleted.
    refusals_before: dt.datetime

    @classmethod
    def now(cls, retention_days: int, audit_days: int | None = None, refusal_days: int | None = None) -> PurgePolicy:
        """Cut-offs from now; audit retentions default to AUDIT_/REFUSAL_RETENTION_DAYS."""
        now = utcnow()
        config = current_app.config
        skew = dt.timedelta(seconds=config["SAML_CLOCK_SKEW_SECONDS"])
        return cls(
            sessions_before=now - dt.timedelta(days=retention_days),
            lifetime=dt.timedelta(days=config["SESSION_LIFETIME_DAYS"]),
            saml_before=now - skew,
            audit_before=now - dt.timedelta(days=audit_days or config["AUDIT_RETENTION_DAYS"]),
            refusals_before=now - dt.timedelta(days=refusal_days or config["REFUSAL_RETENTION_DAYS"]),
        )


def purge_batch(target: str, policy: PurgePolicy, batch_size: int) -> int:
    """Delete up to ``batch_size`` dead rows of ``target``; returns how many. The caller commits."""
    if target == "sessions":
        # Every dead session has expires_at < cutoff + lifetime (it cannot slide once revoked),
        # so the expires_at index bounds the search even for revoked ones.
        cutoff = policy.sessions_before
        ids = list(
            db.session.scalars(
                select(UserSession.id)
                .where(
                    UserSession.expires_at < cutoff + policy.lifetime,
                    or_(UserSession.expires_at < cutoff, UserSession.revoked_at < cutoff),
                )
                .limit(batch_size)
            )
        )
        if ids:
            db.session.execute(delete(UserSession).where(UserSession.id.in_(ids)))
        return len(ids)
    if target in _EXPIRING_BY_PAIR:
        key_columns, expires_at = _EXPIRING_BY_PAIR[target]
        keys = db.session.execute(select(*key_columns).where(expires_at < policy.saml_before).limit(batch_size)).all()
        if keys:
            db.session.execute(
                delete(key_columns[0].class_).where(tuple_(*key_columns).in_([tuple(key) for key in keys]))
            )
        return len(keys)
    if target in _EXPIRING:
        primary_key, expires_at = _EXPIRING[target]
        ids = list(db.session.scalars(select(primary_key).where(expires_at < policy.saml_before).limit(batch_size)))
        if ids:
            db.session.execute(delete(primary_key.class_).where(primary_key.in_(ids)))
        return len(ids)
    if target in _AUDIT:
        query = select(AuditEvent.id).where(AuditEvent.created_at < policy.audit_before)
        if target == "refused_signins":
            query = select(AuditEvent.id).where(
                AuditEvent.actor == "anonymous",
                AuditEvent.outcome == "failure",
                AuditEvent.created_at < policy.refusals_before,
            )
        ids = list(db.session.scalars(query.limit(batch_size)))
        if ids:
            db.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids)))
        return len(ids)
    raise ValueError(f"unknown purge target {target!r} (choose from {', '.join(TARGETS)})")
