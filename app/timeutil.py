"""Time helpers: every timestamp in the database is naive UTC, on SQLite and PostgreSQL alike."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as naive UTC (what the ``DateTime`` columns store)."""
    return datetime.now(UTC).replace(tzinfo=None)
