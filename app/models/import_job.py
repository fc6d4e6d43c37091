"""A CSV import kept between its preview and its apply, and its progress as a job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.account import Account
from app.models.user import User
from app.timeutil import utcnow

#: The file is being read and every row checked (nothing is written).
CHECKING = "checking"
#: Checked without a refused row: the preview waits for the admin's "Apply".
READY = "ready"
#: Applying, in one transaction: all rows or none.
WRITING = "writing"
DONE = "done"
#: Refused rows, a bad file, a stale preview, or a worker that stopped: nothing was written.
FAILED = "failed"
#: The admin cancelled before the write started.
CANCELLED = "cancelled"
STATES = (CHECKING, READY, WRITING, DONE, FAILED, CANCELLED)
#: A worker thread is working on the job: its heartbeat must stay fresh.
RUNNING = (CHECKING, WRITING)
#: Nothing will change the job any more.
FINISHED = (DONE, FAILED, CANCELLED)


class ImportJob(Model):
    """One uploaded CSV file of one admin of one account, from its preview to its outcome.

    The upload is kept in the database (not in a worker's memory or a local file), so that any
    gunicorn worker can apply what another one previewed, and "Apply" needs no second upload. It
    is found by its id and checked against the admin, the account and the SHA-256 the preview
    showed. The bytes are dropped once the job is finished or ``expires_at`` has passed.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_account_id_user_id_sha256", "account_id", "user_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    #: The admin who uploaded the file: only they can apply or cancel it.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: SHA-256 (hex) of the uploaded bytes: the apply must be of the file the preview showed.
    sha256: Mapped[str] = mapped_column(String(64))
    #: The name the browser gave (shown only).
    filename: Mapped[str] = mapped_column(String(200), default="users.csv")
    deactivate_missing: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The uploaded bytes, until the job is finished or expires (then NULL).
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    #: One of ``STATES``.
    state: Mapped[str] = mapped_column(String(20), default=CHECKING)
    #: Data rows in the file: the line count until the check has counted them exactly.
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_checked: Mapped[int] = mapped_column(Integer, default=0)
    #: Rows the apply has gone through (written, or found unchanged) in its transaction.
    rows_written: Mapped[int] = mapped_column(Integer, default=0)
    #: Why the job failed: a stable code (``IMPORT_REFUSED``, ``CSV_HEADER``, ``IMPORT_WORKER_LOST`` ...).
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The preview, then the outcome: ``ImportReport.as_dict()`` (counts, bounded samples, refusals).
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: Last sign of life of the thread working on it; a running job whose heartbeat is too old
    #: belongs to a worker that died, and is shown as failed.
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: The preview cannot be applied after this (and its bytes are dropped).
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)

    account: Mapped[Account] = relationship()
    user: Mapped[User] = relationship()
