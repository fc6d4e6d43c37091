"""Rate limits: counters in fixed windows, shared by every worker through the database.

A counter is one row per (key, window), incremented with a single atomic upsert in a transaction
of its own: two workers counting at once both land, the count survives the refusal's rollback,
and a check reads one row by primary key, however much history there is. Rows of past windows
are deleted by ``flask sessions purge``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import cast

from flask import current_app
from sqlalchemy import Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from app.errors import SignInError
from app.extensions import db
from app.models import RateLimitCounter
from app.timeutil import utcnow

_EPOCH = dt.datetime(2000, 1, 1)


def _window_start(now: dt.datetime, seconds: int) -> dt.datetime:
    """The start of the fixed window of ``seconds`` that ``now`` falls in."""
    elapsed = int((now - _EPOCH).total_seconds())
    return _EPOCH + dt.timedelta(seconds=elapsed - elapsed % seconds)


def counter_key(kind: str, subject: str) -> str:
    """A counter's key: what is counted, and a hash of whom (no email or address stored as such)."""
    return f"{kind}:{hashlib.sha256(subject.encode()).hexdigest()}"


def _upsert(key: str, window_start: dt.datetime, expires_at: dt.datetime) -> Insert:
    dialect = db.engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, RateLimitCounter.__table__)
    statement = insert(table).values(key=key, window_start=window_start, count=1, expires_at=expires_at)
    return statement.on_conflict_do_update(
        index_elements=[table.c.key, table.c.window_start], set_={"count": table.c.count + 1}
    )


def hit(keys: list[str], window_seconds: int) -> None:
    """Count one event for each of ``keys`` in the current window (its own short transaction)."""
    window_start = _window_start(utcnow(), window_seconds)
    expires_at = window_start + dt.timedelta(seconds=window_seconds)
    with db.engine.begin() as connection:
        for key in keys:
            connection.execute(_upsert(key, window_start, expires_at))


def counts(keys: list[str], window_seconds: int) -> dict[str, int]:
    """The current window's count for each of ``keys`` (0 when none): one indexed read."""
    window_start = _window_start(utcnow(), window_seconds)
    rows = db.session.execute(
        select(RateLimitCounter.key, RateLimitCounter.count).where(
            RateLimitCounter.key.in_(keys), RateLimitCounter.window_start == window_start
        )
    )
    found = dict(rows.tuples().all())
    return {key: found.get(key, 0) for key in keys}


def _password_keys(email: str, ip: str | None) -> tuple[str, str | None]:
    return counter_key("password:email", email), counter_key("password:ip", ip) if ip else None


def check_password_attempts(email: str, ip: str | None) -> None:
    """Refuse a password attempt when the email, or the address, failed too often lately.

    ``PASSWORD_MAX_FAILURES`` per email and five times that per address, per
    ``PASSWORD_FAILURE_WINDOW_SECONDS``.
    """
    limit = current_app.config["PASSWORD_MAX_FAILURES"]
    window = current_app.config["PASSWORD_FAILURE_WINDOW_SECONDS"]
    email_key, ip_key = _password_keys(email, ip)
    found = counts([key for key in (email_key, ip_key) if key], window)
    by_email, by_ip = found[email_key], found.get(ip_key or "", 0)
    if by_email >= limit or by_ip >= limit * 5:
        raise SignInError(
            "LOGIN_RATE_LIMITED", f"{by_email} failures for the email, {by_ip} for the address", email=email
        )


def record_password_failure(email: str, ip: str | None) -> None:
    """Count a failed password attempt for the email and for the address."""
    email_key, ip_key = _password_keys(email, ip)
    hit([key for key in (email_key, ip_key) if key], current_app.config["PASSWORD_FAILURE_WINDOW_SECONDS"])
