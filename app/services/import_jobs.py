"""CSV imports in one pass: the previewed upload kept in the database, and large files as jobs.

An admin uploads a file once. It is stored (``ImportJob``) with its SHA-256, for that admin of
that account, for ``IMPORT_PREVIEW_SECONDS``; the check (a dry run) fills in the preview, and
"Apply" writes exactly that file with no second upload. Production runs several gunicorn workers,
so nothing lives in a worker's memory or on its disk: any worker can show, apply or cancel a job.

A file of up to ``IMPORT_INLINE_MAX_ROWS`` lines is checked (and later applied) within the request.
A larger one runs in a thread of the worker that got the request, with its own app context and
database session. The thread writes its progress (rows checked, then rows written) and a heartbeat
to the job row about twice a second, on a connection of its own, so that every worker's status page
sees it; a running job whose heartbeat is older than ``IMPORT_JOB_HEARTBEAT_SECONDS`` belonged to a
worker that died, and is shown as failed ("try again"). The write stays one transaction (all rows
or none, as ``import_users`` promises): a worker that dies mid-write leaves nothing behind.

On SQLite (development only) a writing transaction locks the whole file, so the rows written are
not reported until the end; the check reports its progress as on PostgreSQL.

States: checking -> ready -> writing -> done, or failed, or cancelled (before the write starts).
Every transition is one conditional UPDATE (``WHERE state = ...``), so that a double click, two
workers or a cancel racing an apply cannot apply a file twice.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import IO, Any

from flask import current_app
from sqlalchemy import CursorResult, select, update

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.formatting import plural
from app.models import Account, ImportJob
from app.models.import_job import CANCELLED, CHECKING, DONE, FAILED, FINISHED, READY, RUNNING, WRITING
from app.roles import Actor
from app.services.imports import CREATE, DEACTIVATE, UNCHANGED, UPDATE, ImportReport, Issue, import_users
from app.services.imports import record_refused_import as _record_refused_import
from app.timeutil import utcnow

log = logging.getLogger(__name__)

#: The worker stopped (restart, deploy, crash) while the job ran: nothing was written.
WORKER_LOST = "IMPORT_WORKER_LOST"
#: The preview waited longer than ``IMPORT_PREVIEW_SECONDS``.
EXPIRED = "IMPORT_EXPIRED"
#: The account's users changed between the preview and the apply.
STALE = "IMPORT_STALE"
#: A bug on our side; the traceback is in the log, not on the page.
INTERNAL = "IMPORT_INTERNAL"

#: How often a job's thread writes its progress (and heartbeat): the page polls about as often.
PROGRESS_INTERVAL_SECONDS = 0.5

#: What the admin reads for a job that failed without a refused row or file problem of its own.
FAILURE_TEXT = {
    WORKER_LOST: "The import stopped before it finished, because the server handling it restarted. "
    "Nothing was changed. Try again: choose the file again and preview it.",
    EXPIRED: "This preview expired: previews are kept for {minutes} minutes. Nothing was changed. "
    "Choose the file again to preview it.",
    INTERNAL: "Something went wrong on our side and the import stopped. Nothing was changed. "
    "Try again; if it happens again, contact support.",
}


class ImportJobError(CodedError):
    """An apply or cancel that cannot happen: a stable code, a sentence, and the HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(code, message)
        self.status = status


class NotYourImport(ImportJobError):
    """Another admin of the same account uploaded this file: only they can apply or cancel it."""

    def __init__(self) -> None:
        super().__init__(
            "IMPORT_NOT_YOURS",
            "Another admin of your account uploaded this file, so only they can apply or cancel it. "
            "To import it yourself, choose the file and preview it.",
            403,
        )


class _Stopped(Exception):
    """The job's row left the state the thread works in (cancelled, or marked as lost): stop."""


# --- storing and finding --------------------------------------------------------------------


def _config_seconds(name: str) -> timedelta:
    return timedelta(seconds=current_app.config[name])


def line_count(content: bytes) -> int:
    """The data lines of a file (its header not counted): the row total until the check counts exactly."""
    lines = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    return max(lines - 1, 0)


def store_upload(
    account: Account, admin: Actor, stream: IO[bytes], *, filename: str, deactivate_missing: bool
) -> tuple[ImportJob, bool]:
    """Keep an uploaded file for its preview and apply; the caller commits, then runs the check
    when the job is new (the second value).

    The same file (same SHA-256, same option) uploaded again by the same admin while its preview
    is still open gives that preview (or check) back instead of a second copy. Expired previews and
    jobs of dead workers of the account lose their bytes here (and in ``flask sessions purge``,
    for accounts nobody uploads to again).
    """
    content = stream.read()
    digest = hashlib.sha256(content).hexdigest()
    now = utcnow()
    drop_stale_uploads(now, account_id=account.id)
    existing = db.session.scalar(
        select(ImportJob)
        .where(
            ImportJob.account_id == account.id,
            ImportJob.user_id == admin.id,
            ImportJob.sha256 == digest,
            ImportJob.deactivate_missing == deactivate_missing,
            ImportJob.state.in_((CHECKING, READY)),
            ImportJob.expires_at > now,
        )
        .order_by(ImportJob.id.desc())
        .limit(1)
    )
    if existing is not None and not _is_lost(existing, now):
        existing.expires_at = now + _config_seconds("IMPORT_PREVIEW_SECONDS")
        return existing, False
    job = ImportJob(
        account_id=account.id,
        user_id=admin.id,
        sha256=digest,
        filename=filename[:200] or "users.csv",
        deactivate_missing=deactivate_missing,
        content=content,
        size_bytes=len(content),
        state=CHECKING,
        rows_total=line_count(content),
        created_at=now,
        updated_at=now,
        heartbeat_at=now,
        expires_at=now + _config_seconds("IMPORT_PREVIEW_SECONDS"),
    )
    db.session.add(job)
    db.session.flush()
    return job, True


def drop_stale_uploads(now: datetime | None = None, *, account_id: int | None = None, limit: int | None = None) -> int:
    """Fail the expired previews and the jobs of dead workers, dropping their stored bytes;
    return how many. The caller commits.

    Called on each upload for that account, and by ``flask sessions purge`` for every account in
    batches of ``limit``: a preview nobody applies, of an account that never uploads again, must
    not keep its file in the database. Each UPDATE repeats the state condition, so a job that a
    live thread moved on in the meantime is left alone; finished jobs hold no bytes already.
    """
    now = now or utcnow()
    stale_rules = (
        (EXPIRED, (ImportJob.state == READY, ImportJob.expires_at <= now)),
        (
            WORKER_LOST,
            (
                ImportJob.state.in_(RUNNING),
                ImportJob.heartbeat_at < now - _config_seconds("IMPORT_JOB_HEARTBEAT_SECONDS"),
            ),
        ),
    )
    dropped = 0
    for code, stale in stale_rules:
        where = [*stale] if account_id is None else [*stale, ImportJob.account_id == account_id]
        if limit is not None:
            if dropped >= limit:
                break
            ids = list(db.session.scalars(select(ImportJob.id).where(*where).limit(limit - dropped)))
            if not ids:
                continue
            where.append(ImportJob.id.in_(ids))
        result = db.session.execute(
            update(ImportJob).where(*where).values(state=FAILED, error_code=code, content=None, updated_at=now)
        )
        dropped += _rowcount(result)
    return dropped


def runs_inline(job: ImportJob) -> bool:
    """Small files are checked and applied within the request; larger ones as a job in a thread."""
    return job.rows_total <= current_app.config["IMPORT_INLINE_MAX_ROWS"]


def job_for(admin: Actor, job_id: int) -> ImportJob | None:
    """The job, if it belongs to ``admin``'s account (None otherwise: the view answers 404, so
    that another account's jobs are not even known to exist). Another admin's job of the same
    account raises ``NotYourImport``. A job whose worker died, or whose preview expired, is
    marked so first (the caller commits)."""
    job = db.session.scalar(select(ImportJob).where(ImportJob.id == job_id, ImportJob.account_id == admin.account_id))
    if job is None:
        return None
    if job.user_id != admin.id:
        raise NotYourImport()
    refresh(job)
    return job


def recent_jobs(admin: Actor, limit: int = 5) -> list[ImportJob]:
    """The admin's latest imports, newest first (the import page links back to a running one)."""
    jobs = list(
        db.session.scalars(
            select(ImportJob)
            .where(ImportJob.account_id == admin.account_id, ImportJob.user_id == admin.id)
            .order_by(ImportJob.id.desc())
            .limit(limit)
        )
    )
    for job in jobs:
        refresh(job)
    return jobs


def _is_lost(job: ImportJob, now: datetime) -> bool:
    return job.state in RUNNING and job.heartbeat_at < now - _config_seconds("IMPORT_JOB_HEARTBEAT_SECONDS")


def refresh(job: ImportJob) -> None:
    """Fail a running job whose worker stopped, and an expired preview; drop their bytes.

    Conditional on the state (and heartbeat) read, so that a thread that is alive after all
    keeps its job: its next progress write finds its own state and goes on.
    """
    now = utcnow()
    if _is_lost(job, now):
        code, where = WORKER_LOST, ImportJob.heartbeat_at == job.heartbeat_at
    elif job.state == READY and job.expires_at <= now:
        code, where = EXPIRED, ImportJob.expires_at == job.expires_at
    else:
        return
    result = db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.state == job.state, where)
        .values(state=FAILED, error_code=code, content=None, updated_at=now)
    )
    db.session.refresh(job)
    if _rowcount(result):
        log.warning("import job %s of account %s failed: %s", job.id, job.account_id, code)


def _rowcount(result: Any) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


# --- what the page and the status endpoint show ---------------------------------------------


def preview(job: ImportJob) -> ImportReport | None:
    """The preview (state ready) or the outcome (done, failed) as a report, once there is one."""
    return ImportReport.from_dict(job.report) if job.report else None


def failure_message(job: ImportJob) -> str:
    """Why a failed job failed, in the admin's words, with what to do next."""
    if job.error_code in FAILURE_TEXT:
        return FAILURE_TEXT[job.error_code].format(minutes=current_app.config["IMPORT_PREVIEW_SECONDS"] // 60)
    report = preview(job)
    if report is not None and report.file_error is not None:
        return report.file_error.message
    if report is not None and report.issues:
        refused = report.refused
        return (
            f"{refused:,} {'row was' if refused == 1 else 'rows were'} refused, so nothing was imported. "
            "Fix the lines listed below in the file, then choose it again."
        )
    return FAILURE_TEXT[INTERNAL]


def changes(report: ImportReport) -> int:
    """The users an apply creates, updates or deactivates."""
    return report.count(CREATE) + report.count(UPDATE) + report.count(DEACTIVATE)


def progress_text(job: ImportJob) -> str:
    """One sentence for the progress bar's label, counts formatted."""
    if job.state == CHECKING:
        return f"Checked {job.rows_checked:,} of {plural(job.rows_total, 'row')}"
    if job.state == WRITING:
        if job.rows_written:
            return f"Applied {job.rows_written:,} of {plural(job.rows_total, 'row')}"
        return f"Applying {plural(job.rows_total, 'row')}"
    if job.state == READY:
        return f"Checked {plural(job.rows_total, 'row')}: ready to apply"
    if job.state == DONE:
        return f"Done: {plural(job.rows_written, 'row')} applied"
    if job.state == CANCELLED:
        return "Cancelled: nothing was changed"
    return "Stopped: nothing was changed"


def status(job: ImportJob) -> dict[str, Any]:
    """What the page's poller reads: the state, the counts, and the sentence to show."""
    total = max(job.rows_total, 1)
    done = job.rows_written if job.state in (WRITING, DONE) else job.rows_checked
    return {
        "id": job.id,
        "state": job.state,
        "rows_total": job.rows_total,
        "rows_checked": job.rows_checked,
        "rows_written": job.rows_written,
        "percent": min(100, round(100 * done / total)) if job.state != DONE else 100,
        "error_code": job.error_code,
        "text": progress_text(job),
        "message": failure_message(job) if job.state == FAILED else None,
        "finished": job.state in FINISHED,
        "running": job.state in RUNNING,
    }


# --- apply and cancel -------------------------------------------------------------------------


def request_apply(job: ImportJob, sha256: str) -> None:
    """Move a ready job to writing, once: a second press, another worker or an expired preview
    finds it in another state and is refused with a code. The caller commits, then runs the write."""
    if job.state == FAILED and job.error_code == EXPIRED:
        raise ImportJobError(EXPIRED, failure_message(job), 410)
    if job.state in (WRITING, DONE):
        raise ImportJobError(
            "IMPORT_ALREADY_APPLIED", "These changes were already applied; pressing Apply again changes nothing.", 409
        )
    if job.state == CANCELLED:
        raise ImportJobError("IMPORT_CANCELLED", "This import was cancelled. Choose the file again to preview it.", 409)
    if job.state != READY:
        raise ImportJobError(
            "IMPORT_NOT_READY", "This file cannot be applied: only a preview without refused rows can.", 409
        )
    if sha256 != job.sha256:
        raise ImportJobError(
            "IMPORT_FILE_CHANGED",
            "This is not the file you previewed. Nothing was changed: preview the file, then apply it.",
            409,
        )
    now = utcnow()
    result = db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.state == READY, ImportJob.expires_at > now)
        .values(state=WRITING, rows_written=0, heartbeat_at=now, updated_at=now)
    )
    if not _rowcount(result):  # another request moved it first, or it expired just now
        db.session.refresh(job)
        refresh(job)
        if job.state == READY:
            raise ImportJobError("IMPORT_NOT_READY", "This file cannot be applied right now. Try again.", 409)
        return request_apply(job, sha256)  # says why, from the state the other request left
    report = preview(job)
    audit.record(
        "user.import.apply",
        account_id=job.account_id,
        details={
            "job": job.id,
            "sha256": job.sha256,
            "filename": job.filename,
            "rows": job.rows_total,
            "created": report.count(CREATE) if report else 0,
            "updated": report.count(UPDATE) if report else 0,
            "deactivated": report.count(DEACTIVATE) if report else 0,
        },
    )
    db.session.refresh(job)


def cancel(job: ImportJob) -> None:
    """Cancel a job before its write starts (checking or ready); its upload is dropped. The
    thread of a job being checked stops at its next progress write. The caller commits."""
    now = utcnow()
    result = db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.state.in_((CHECKING, READY)))
        .values(state=CANCELLED, content=None, updated_at=now)
    )
    db.session.refresh(job)
    if not _rowcount(result):
        words = {
            WRITING: "its changes are being applied",
            DONE: "its changes were applied",
            FAILED: "it stopped, and nothing was changed",
            CANCELLED: "it was already cancelled",
        }
        raise ImportJobError(
            "IMPORT_CANNOT_CANCEL", f"This import cannot be cancelled any more: {words[job.state]}.", 409
        )
    audit.record(
        "user.import.cancel",
        account_id=job.account_id,
        details={"job": job.id, "sha256": job.sha256, "filename": job.filename, "rows_checked": job.rows_checked},
    )


def record_refused(job: ImportJob | None, action: str, error: ImportJobError, account_id: int) -> None:
    """Audit an apply or cancel that was refused (the caller commits)."""
    audit.record(
        action,
        outcome="failure",
        error_code=error.code,
        account_id=account_id,
        details={"job": job.id if job else None},
    )


# --- the work: in the request for small files, in a thread for large ones ---------------------


class _Progress:
    """``import_users``'s progress callback: the rows done and a heartbeat on the job row, after
    the first chunk and then at most every ``PROGRESS_INTERVAL_SECONDS`` (a commit per chunk of
    1,000 rows would cost an apply of 100,000 rows a tenth of its time on PostgreSQL).

    A connection and a transaction of its own, committed at once, so that the status endpoint of
    any worker sees it while the import's own transaction is still open. The UPDATE is
    conditional on the job's state: when the admin cancelled (or the job was marked lost), it
    matches nothing and the import stops.
    """

    def __init__(self, job_id: int, state: str, column: str, *, persist: bool = True) -> None:
        self.job_id = job_id
        self.state = state
        self.column = column
        self.persist = persist
        self.last_write = 0.0

    def __call__(self, _bytes_read: int, rows: int) -> None:
        if not self.persist or time.monotonic() - self.last_write < PROGRESS_INTERVAL_SECONDS:
            return
        self.last_write = time.monotonic()
        now = utcnow()
        with db.engine.begin() as connection:
            result = connection.execute(
                update(ImportJob)
                .where(ImportJob.id == self.job_id, ImportJob.state == self.state)
                .values({self.column: rows, "heartbeat_at": now, "updated_at": now})
            )
        if not _rowcount(result):
            raise _Stopped()


def _finish(job_id: int, from_state: str, /, **values: Any) -> bool:
    """Leave ``from_state`` for the outcome in ``values`` and commit, with whatever the transaction
    holds (an apply's writes); if the job left ``from_state`` meanwhile (cancelled, marked lost), roll
    it all back instead."""
    values.setdefault("updated_at", utcnow())
    result = db.session.execute(
        update(ImportJob).where(ImportJob.id == job_id, ImportJob.state == from_state).values(**values)
    )
    if _rowcount(result):
        db.session.commit()
        return True
    db.session.rollback()
    return False


def _problem_code(report: ImportReport) -> str:
    if report.file_error is not None:
        return report.file_error.code
    return "IMPORT_REFUSED"


def run_check(job_id: int) -> None:
    """Check every row of the job's file (a dry run) and keep the preview. Commits: in a thread
    this is the whole unit of work, and inline it follows the upload's own commit."""
    job = db.session.get(ImportJob, job_id)
    if job is None or job.state != CHECKING or job.content is None:
        return
    try:
        report = import_users(
            job.account,
            io.BytesIO(job.content),
            apply=False,
            deactivate_missing=job.deactivate_missing,
            actor_email=job.user.email,
            progress=_Progress(job_id, CHECKING, "rows_checked"),
        )
    except _Stopped:
        db.session.rollback()
        log.info("import job %s: the check stopped (cancelled)", job_id)
        return
    db.session.rollback()  # a dry run wrote nothing: end its read transaction
    outcome: dict[str, Any] = {
        "rows_total": report.rows,
        "rows_checked": report.rows,
        "report": report.as_dict(),
        "heartbeat_at": utcnow(),
    }
    if report.ok:
        _finish(job_id, CHECKING, state=READY, **outcome)
    else:
        _finish(job_id, CHECKING, state=FAILED, error_code=_problem_code(report), content=None, **outcome)


def _differences(before: ImportReport, after: ImportReport) -> list[str]:
    words = {CREATE: "create", UPDATE: "update", UNCHANGED: "leave unchanged", DEACTIVATE: "deactivate"}
    return [
        f"{words[key]} {after.count(key):,} (not {before.count(key):,})"
        for key in (CREATE, UPDATE, UNCHANGED, DEACTIVATE)
        if before.count(key) != after.count(key)
    ]


def run_write(job_id: int) -> None:
    """Apply the job's file in one transaction, if it still does exactly what the preview showed;
    otherwise roll everything back and fail the job with the reason. Commits (see ``run_check``)."""
    job = db.session.get(ImportJob, job_id)
    if job is None or job.state != WRITING or job.content is None or job.report is None:
        return
    previewed = ImportReport.from_dict(job.report)
    account, actor = job.account, job.user.email
    persist = db.session.get_bind().dialect.name != "sqlite"  # see the module docstring
    try:
        report = import_users(
            account,
            io.BytesIO(job.content),
            apply=True,
            deactivate_missing=job.deactivate_missing,
            actor=actor,
            actor_email=actor,
            expected_sha256=job.sha256,
            progress=_Progress(job_id, WRITING, "rows_written", persist=persist),
        )
    except _Stopped:
        db.session.rollback()
        log.warning("import job %s: the write stopped (the job was marked lost); rolled back", job_id)
        return
    differences = _differences(previewed, report) if report.applied else []
    if report.applied and not differences:
        done = _finish(
            job_id,
            WRITING,
            state=DONE,
            rows_written=report.rows,
            report=report.as_dict(),
            content=None,
            heartbeat_at=utcnow(),
        )
        if not done:
            log.warning("import job %s was marked lost while writing: its writes were rolled back", job_id)
        return
    db.session.rollback()
    if report.applied:
        report.applied = False
        report.file_error = Issue(
            0,
            STALE,
            "The users of your account changed since the preview: this file would now "
            + ", ".join(differences)
            + ". Nothing was changed. Choose the file again to see a fresh preview.",
        )
    _record_refused_import(account, report, actor=actor)
    _finish(job_id, WRITING, state=FAILED, error_code=_problem_code(report), report=report.as_dict(), content=None)


def _fail_unexpected(job_id: int) -> None:
    """A bug stopped the job: roll back, log it, and fail the job so that no page waits forever."""
    log.exception("import job %s stopped on an unexpected error", job_id)
    db.session.rollback()
    now = utcnow()
    db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.state.in_(RUNNING))
        .values(state=FAILED, error_code=INTERNAL, content=None, updated_at=now)
    )
    db.session.commit()


def run(job_id: int, work: Callable[[int], None]) -> None:
    """Run ``work`` (``run_check`` or ``run_write``) now, failing the job on an unexpected error."""
    try:
        work(job_id)
    except Exception:  # noqa: BLE001 - any bug must end the job, or its page would wait forever
        _fail_unexpected(job_id)


def start(job_id: int, work: Callable[[int], None]) -> None:
    """Run ``work`` in a thread of this worker, with its own app context and database session.

    A daemon thread: when the worker stops, the job stops with it, its transaction is rolled
    back by the database, and its heartbeat goes stale (``refresh`` then fails it).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def in_context() -> None:
        with app.app_context():
            try:
                run(job_id, work)
            finally:
                db.session.remove()

    threading.Thread(target=in_context, name=f"import-job-{job_id}", daemon=True).start()
