"""`flask sessions purge`: long-ended sessions, spent replay-cache entries and expired pending
requests go, and so do the stored files of CSV previews nobody applied, in batches of short
transactions; everything still usable stays."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import (
    AppAuthorizationCode,
    AppAuthorizationRequest,
    ImportJob,
    PendingRequest,
    RateLimitCounter,
    SignInResult,
    UsedAssertion,
    UserSession,
)
from app.sessions import create_session, find_live_session
from app.timeutil import utcnow
from tests.helpers.audit import audit_events

NOW = utcnow()


@pytest.fixture(autouse=True)
def _fresh_now() -> None:
    """Each test's own "now": one taken at import goes stale when the suite runs long, and rows
    meant to expire in five minutes had already expired by the time a late test ran."""
    global NOW
    NOW = utcnow()


def _session(user, *, expired_days_ago: float | None = None, revoked_days_ago: float | None = None):
    new = create_session(user, app_name="desktop", ip=None, user_agent=None)
    if expired_days_ago is not None:
        new.session.expires_at = NOW - dt.timedelta(days=expired_days_ago)
        new.session.last_used_at = new.session.created_at = new.session.expires_at - dt.timedelta(days=21)
    if revoked_days_ago is not None:
        new.session.revoked_at = NOW - dt.timedelta(days=revoked_days_ago)
        new.session.revoked_reason = "logout"
        new.session.last_used_at = new.session.created_at = new.session.revoked_at
        new.session.expires_at = new.session.revoked_at + dt.timedelta(days=21)
    db.session.commit()
    return new


def _purge(runner, *options: str) -> dict:
    result = runner.invoke(args=["sessions", "purge", "--json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _left() -> set[int]:
    db.session.expire_all()
    return {session.id for session in db.session.query(UserSession)}


def test_purge_deletes_only_what_can_never_be_used_again(runner, acme):
    user, connection = acme["agent"], acme["connection"]
    live = _session(user)
    recently_expired = _session(user, expired_days_ago=5)
    long_expired = _session(user, expired_days_ago=40)
    recently_revoked = _session(user, revoked_days_ago=5)
    long_revoked = _session(user, revoked_days_ago=31)
    db.session.add_all(
        [
            UsedAssertion(connection_id=connection.id, assertion_id="_spent", expires_at=NOW - dt.timedelta(hours=1)),
            UsedAssertion(
                connection_id=connection.id, assertion_id="_still_guarding", expires_at=NOW + dt.timedelta(minutes=5)
            ),
            *(
                SignInResult(
                    token_hash=name * 16,
                    browser_binding_hash="b" * 64,
                    connection_id=connection.id,
                    user_id=user.id,
                    email=user.email,
                    app="portal",
                    next_path="/",
                    created_at=NOW - dt.timedelta(minutes=2),
                    expires_at=expires_at,
                )
                for name, expires_at in (
                    ("dead", NOW - dt.timedelta(hours=1)),
                    ("live", NOW + dt.timedelta(minutes=1)),
                )
            ),
            PendingRequest(
                id="_abandoned",
                connection_id=connection.id,
                app="portal",
                next_path="/",
                browser_binding_hash="x" * 64,
                purpose="login",
                created_at=NOW - dt.timedelta(hours=2),
                expires_at=NOW - dt.timedelta(hours=1),
            ),
            PendingRequest(
                id="_waiting",
                connection_id=connection.id,
                app="portal",
                next_path="/",
                browser_binding_hash="x" * 64,
                purpose="login",
                created_at=NOW,
                expires_at=NOW + dt.timedelta(minutes=10),
            ),
            AppAuthorizationRequest(
                id="_gone_app",
                app="desktop",
                redirect_uri="http://127.0.0.1:9/",
                code_challenge="c" * 43,
                state="s",
                expires_at=NOW - dt.timedelta(hours=1),
            ),
            AppAuthorizationRequest(
                id="_open_app",
                app="desktop",
                redirect_uri="http://127.0.0.1:9/",
                code_challenge="c" * 43,
                state="s",
                expires_at=NOW + dt.timedelta(minutes=5),
            ),
            AppAuthorizationCode(
                code_hash="a" * 64,
                user_id=user.id,
                app="desktop",
                redirect_uri="http://127.0.0.1:9/",
                code_challenge="c" * 43,
                expires_at=NOW - dt.timedelta(minutes=5),
            ),
            RateLimitCounter(
                key="password:email:old",
                window_start=NOW - dt.timedelta(hours=1),
                count=3,
                expires_at=NOW - dt.timedelta(minutes=45),
            ),
            RateLimitCounter(
                key="password:email:now", window_start=NOW, count=1, expires_at=NOW + dt.timedelta(minutes=15)
            ),
        ]
    )
    db.session.commit()

    report = _purge(runner)
    spent = {"app_authorization_requests": 1, "app_authorization_codes": 1, "rate_limit_counters": 1}
    no_audit = {"refused_signins": 0, "audit_events": 0}
    retention = {"retention_days": 30, "audit_retention_days": 365, "refusal_retention_days": 30}
    assert report == {
        "deleted": {
            "sessions": 2,
            "used_assertions": 1,
            "pending_requests": 1,
            "signin_results": 1,
            **spent,
            **no_audit,
            "import_uploads": 0,
        },
        **retention,
    }
    assert {row.id for row in db.session.query(AppAuthorizationRequest)} == {"_open_app"}
    assert db.session.query(AppAuthorizationCode).count() == 0
    assert [row.key for row in db.session.query(RateLimitCounter)] == ["password:email:now"]
    assert _left() == {live.session.id, recently_expired.session.id, recently_revoked.session.id}
    assert {row.assertion_id for row in db.session.query(UsedAssertion)} == {"_still_guarding"}
    assert {row.id for row in db.session.query(PendingRequest)} == {"_waiting"}
    # A verified sign-in nobody came back to finish (the ACS no longer sweeps them up itself).
    assert [row.token_hash for row in db.session.query(SignInResult)] == ["live" * 16]
    assert find_live_session(live.token) is not None
    assert audit_events("sessions.purge")[-1].details == {
        **retention,
        "sessions": 2,
        "used_assertions": 1,
        "pending_requests": 1,
        "signin_results": 1,
        **spent,
        **no_audit,
        "import_uploads": 0,
    }
    assert long_expired.session.id not in _left() and long_revoked.session.id not in _left()

    shorter = _purge(runner, "--older-than-days", "1")
    assert shorter["deleted"]["sessions"] == 2
    assert _left() == {live.session.id}
    assert set(_purge(runner)["deleted"].values()) == {0}


def _import_job(acme, state: str, *, expired: bool = False, heartbeat_minutes_ago: float = 0.0) -> int:
    """A stored upload (a bare CSV header) of acme's admin in ``state``."""
    content = b"email,name,roles\n"
    job = ImportJob(
        account_id=acme["account"].id,
        user_id=acme["admin"].id,
        sha256="0" * 64,
        content=content if state not in ("done", "failed", "cancelled") else None,
        size_bytes=len(content),
        state=state,
        created_at=NOW - dt.timedelta(hours=2),
        updated_at=NOW - dt.timedelta(hours=2),
        heartbeat_at=NOW - dt.timedelta(minutes=heartbeat_minutes_ago),
        expires_at=NOW + dt.timedelta(minutes=-1 if expired else 30),
    )
    db.session.add(job)
    db.session.commit()
    return job.id


def _stored(job_id: int) -> tuple[str, str | None, bool]:
    db.session.expire_all()
    job = db.session.get(ImportJob, job_id)
    return job.state, job.error_code, job.content is not None


@pytest.mark.parametrize("batch_size", ["1000", "1"])
def test_purge_drops_the_files_of_abandoned_import_previews(runner, acme, batch_size):
    """A preview nobody applied, of an account that never uploads again, does not keep its file:
    the purge fails it as expired (or lost, when its worker died) and drops the bytes. Previews
    still open and jobs whose worker is alive keep theirs."""
    expired = _import_job(acme, "ready", expired=True)
    open_preview = _import_job(acme, "ready")
    lost = _import_job(acme, "checking", heartbeat_minutes_ago=60)
    working = _import_job(acme, "checking", expired=True)  # a long check past the preview time, still alive
    done = _import_job(acme, "done", expired=True)

    report = _purge(runner, "--batch-size", batch_size)
    assert report["deleted"]["import_uploads"] == 2
    assert _stored(expired) == ("failed", "IMPORT_EXPIRED", False)
    assert _stored(lost) == ("failed", "IMPORT_WORKER_LOST", False)
    assert _stored(open_preview) == ("ready", None, True)
    assert _stored(working) == ("checking", None, True)
    assert _stored(done) == ("done", None, False)
    assert audit_events("sessions.purge")[-1].details["import_uploads"] == 2
    assert _purge(runner)["deleted"]["import_uploads"] == 0


def test_purge_text_counts_in_words(runner, acme):
    _import_job(acme, "ready", expired=True)
    result = runner.invoke(args=["sessions", "purge"])
    assert result.exit_code == 0, result.output
    assert "0 sessions, " in result.output and ", 1 import upload." in result.output


def test_purge_works_in_batches_of_short_transactions(runner, acme):
    user = acme["agent"]
    dead = [create_session(user, app_name="mobile", ip=None, user_agent=None).session for _ in range(2500)]
    for session in dead:
        session.expires_at = NOW - dt.timedelta(days=60)
    db.session.commit()
    commits: list[int] = []

    def count_commit(_session: Session) -> None:
        commits.append(1)

    event.listen(Session, "after_commit", count_commit)
    try:
        report = _purge(runner, "--batch-size", "1000")
    finally:
        event.remove(Session, "after_commit", count_commit)
    assert report["deleted"]["sessions"] == 2500
    assert len(commits) >= 5  # 1000 + 1000 + 500 sessions, the other tables, the audit event
    assert _left() == set()


def test_sessions_of_deleted_users_are_purged_too(runner, acme):
    from app.services.users import delete_user

    gone = _session(acme["agent"], revoked_days_ago=45)
    delete_user(acme["agent"])
    db.session.commit()
    assert db.session.get(UserSession, gone.session.id).user_id is None
    assert _purge(runner)["deleted"]["sessions"] == 1


@pytest.mark.parametrize("options", [("--older-than-days", "0"), ("--batch-size", "0"), ("--older-than-days", "soon")])
def test_bad_options_are_refused(runner, options):
    result = runner.invoke(args=["sessions", "purge", *options])
    assert result.exit_code == 2 and "Invalid value" in result.output
