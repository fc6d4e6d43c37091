"""Rate-limit counters: how often one key (an email, an address) did something in one window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model


class RateLimitCounter(Model):
    """Events of one kind for one key in one fixed time window (e.g. password failures of an
    email in the current 15 minutes). A counter is one row incremented atomically, so every
    worker sees the same count and the check never scans history; expired rows are purged."""

    __tablename__ = "rate_limit_counters"

    #: What is counted and for whom, e.g. ``password:email:<sha256 of the email>``.
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: Start of the fixed window this row counts.
    window_start: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    #: After this the row counts for nothing (end of its window): the purge deletes it.
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
