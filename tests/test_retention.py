"""Retention (issue 9, item 7): audit events and refused sign-ins are purged after their
configured retention, in batches; a flood of identical anonymous refusals writes a few rows,
each counting its repeats."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent
from app.services import rate_limits
from app.timeutil import utcnow
from tests.helpers.signin import post_acs
from tests.helpers.web import another_browser, log_in

NOW = utcnow()


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The fold's one-minute window, frozen so that a test never straddles two."""
    monkeypatch.setattr(rate_limits, "utcnow", lambda: NOW)


def _event(days_ago: float, *, actor: str = "anonymous", outcome: str = "failure", action: str = "signin.sso"):
    return AuditEvent(
        created_at=NOW - dt.timedelta(days=days_ago),
        action=action,
        outcome=outcome,
        error_code="SAML_MALFORMED" if outcome == "failure" else None,
        actor=actor,
        details={},
    )


def _purge(runner, *options: str) -> dict:
    result = runner.invoke(args=["sessions", "purge", "--json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_refusals_and_audit_events_are_purged_after_their_retention(runner):
    kept = [
        _event(29),  # a recent refusal
        _event(200, actor="admin@acme.example", outcome="success", action="user.create"),
        _event(200, actor="admin@acme.example"),  # a signed-in person's failure: the longer retention
    ]
    gone = [_event(31), _event(400, actor="admin@acme.example", outcome="success", action="user.create")]
    db.session.add_all(kept + gone)
    db.session.commit()
    kept_ids = {event.id for event in kept}

    report = _purge(runner)
    assert report["deleted"]["refused_signins"] == 1 and report["deleted"]["audit_events"] == 1
    assert report["audit_retention_days"] == 365 and report["refusal_retention_days"] == 30
    left = set(db.session.scalars(select(AuditEvent.id).where(AuditEvent.action != "sessions.purge")))
    assert left == kept_ids

    shorter = _purge(runner, "--refusal-days", "7", "--audit-days", "100")
    assert shorter["deleted"]["refused_signins"] == 1 and shorter["deleted"]["audit_events"] == 2


def test_retention_comes_from_the_settings(app, runner, monkeypatch):
    monkeypatch.setitem(app.config, "REFUSAL_RETENTION_DAYS", 3)
    db.session.add_all([_event(2), _event(4)])
    db.session.commit()
    report = _purge(runner)
    assert report["refusal_retention_days"] == 3 and report["deleted"]["refused_signins"] == 1


def test_audit_purge_runs_in_batches(runner):
    db.session.add_all(_event(40) for _ in range(250))
    db.session.commit()
    assert _purge(runner, "--batch-size", "100")["deleted"]["refused_signins"] == 250


def test_a_flood_of_identical_acs_refusals_writes_a_handful_of_rows(app, client, acme):
    connection = acme["connection"]
    for _ in range(500):
        assert post_acs(client, connection, "not a SAML response").status_code in (400, 429)
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "signin.sso")).all()
    assert len(events) <= 4, [(event.error_code, event.details) for event in events]
    assert sum(event.details.get("count", 1) for event in events) == 500
    assert {event.error_code for event in events} == {"SAML_MALFORMED", "RATE_LIMITED"}


def test_different_refusals_are_kept_apart(client, acme):
    connection = acme["connection"]
    for _ in range(3):
        post_acs(client, connection, "not a SAML response")
        client.get(f"/saml/{connection.id}/acs")
    other = another_browser(client.application)
    other.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    post_acs(other, connection, "not a SAML response")
    rows = db.session.execute(
        select(AuditEvent.error_code, AuditEvent.ip, AuditEvent.details).where(AuditEvent.action == "signin.sso")
    ).all()
    counts = sorted((code, ip, details.get("count", 1)) for code, ip, details in rows)
    assert counts == [
        ("ACS_METHOD_NOT_ALLOWED", "127.0.0.1", 3),
        ("SAML_MALFORMED", "127.0.0.1", 3),
        ("SAML_MALFORMED", "198.51.100.9", 1),
    ]


def test_refusals_of_a_signed_in_person_are_not_folded(client, acme):
    log_in(client, acme["admin"])
    for _ in range(3):
        post_acs(client, acme["connection"], "not a SAML response")
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "signin.sso")) == 3
