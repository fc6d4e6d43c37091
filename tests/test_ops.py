"""Operations: a database outage answers 503 (never 500), health probes, the request id, metrics.

The outage tests point an app at a PostgreSQL port where nothing listens, so the driver really
fails to connect (SQLite or PostgreSQL runs alike). The two-worker outage under load is in
tests/test_outage_gunicorn.py.
"""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask
from sqlalchemy import text

from app import create_app
from app.extensions import db
from app.models import AuditEvent
from app.sessions import create_session
from app.views.health import migrations
from config import ConfigError, TestingConfig, database_url
from tests.helpers.signin import post_acs, start_sso

UNREACHABLE = database_url("postgresql://postgres@127.0.0.1:1/x")


@pytest.fixture(scope="module")
def down_app() -> Flask:
    """The app with its database unreachable (connection refused at every checkout)."""
    settings = type("DatabaseDown", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": UNREACHABLE})
    return create_app(settings)


def _assert_outage_answer(response, caplog) -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_data(as_text=True)
    assert "DATABASE_UNAVAILABLE" in body
    assert "Traceback" not in body and "psycopg" not in body and "127.0.0.1:1" not in body
    outage_lines = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(outage_lines) == 1
    assert outage_lines[0].exc_info is None
    assert "\n" not in outage_lines[0].getMessage()


def test_a_page_answers_503_with_a_page_when_the_database_is_down(down_app, caplog):
    client = down_app.test_client()
    # A session cookie makes the sign-in page look the session up, i.e. reach the database.
    client.set_cookie("__Host-portal_session", "a" * 43, domain="localhost")
    with caplog.at_level(logging.WARNING):
        response = client.get("/login", base_url="https://localhost")
    _assert_outage_answer(response, caplog)
    assert response.mimetype == "text/html"
    assert 'data-testid="error-code">DATABASE_UNAVAILABLE<' in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/logout"])
def test_the_api_answers_503_json_when_the_database_is_down(down_app, caplog, path):
    client = down_app.test_client()
    method = client.get if path.endswith("/me") else client.post
    with caplog.at_level(logging.WARNING):
        response = method(path, headers={"Authorization": "Bearer " + "b" * 43})
    _assert_outage_answer(response, caplog)
    assert response.get_json()["error"] == "DATABASE_UNAVAILABLE"


def test_a_sign_in_attempt_answers_503_when_the_database_is_down(down_app, caplog):
    with caplog.at_level(logging.WARNING):
        response = down_app.test_client().post("/saml/1/acs", data={"SAMLResponse": "x"})
    _assert_outage_answer(response, caplog)


def test_health_and_readiness_when_the_database_is_down(down_app):
    client = down_app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["Retry-After"] == "5"
    assert ready.get_json()["code"] == "DATABASE_UNAVAILABLE"


def test_ready_when_the_database_is_at_the_migrations_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ready"


@pytest.fixture
def set_database_revision():
    """Point alembic_version elsewhere for one test (and put it back: it is not a model table)."""
    with db.engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()

    def change(revision: str) -> None:
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :rev"), {"rev": revision})

    yield change
    change(head)


def test_not_ready_while_migrations_are_pending(client, set_database_revision):
    first = sorted(migrations()[1] - migrations()[0])[0]  # a revision this release knows, not its head
    set_database_revision(first)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {
        "status": "migrating",
        "code": "MIGRATIONS_PENDING",
        "database": [first],
        "expected": sorted(migrations()[0]),
    }


def test_ready_when_a_newer_release_already_migrated_the_database(client, set_database_revision):
    set_database_revision("f00dfeedbeef")  # unknown to this release: a rolling deploy ran ahead
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["note"] == "the database is ahead of this release"


def test_the_request_id_is_kept_when_sane_and_replaced_otherwise(client, caplog):
    assert client.get("/healthz", headers={"X-Request-ID": "lb-1234.abc"}).headers["X-Request-ID"] == "lb-1234.abc"
    for garbage in ("two words", "x" * 200, "<script>", "id\tforged=1"):
        echoed = client.get("/healthz", headers={"X-Request-ID": garbage}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    with caplog.at_level(logging.INFO):
        client.get("/saml/999999/metadata", headers={"X-Request-ID": "trace-7"})
    assert any(getattr(record, "request_id", None) == "trace-7" for record in caplog.records)


def _metrics(client, **headers: str):
    return client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": "198.51.100.9"})


def test_metrics_are_closed_unless_configured(app, client, monkeypatch):
    assert _metrics(client).status_code == 404
    monkeypatch.setitem(app.config, "METRICS_ENABLED", True)
    assert _metrics(client).status_code == 404  # enabled, but no token and no network: no one
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-secret")
    assert _metrics(client).status_code == 404
    assert _metrics(client, Authorization="Bearer wrong").status_code == 404
    assert _metrics(client, Authorization="Bearer scrape-secret").status_code == 200
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)
    monkeypatch.setitem(app.config, "METRICS_ALLOW_NETWORKS", ("10.0.0.0/8",))
    assert _metrics(client).status_code == 404
    monkeypatch.setitem(app.config, "METRICS_ALLOW_NETWORKS", ("10.0.0.0/8", "198.51.100.0/24"))
    assert _metrics(client).status_code == 200


def test_a_bad_metrics_network_stops_the_app():
    settings = type("BadNetworks", (TestingConfig,), {"METRICS_ALLOW_NETWORKS": ("10.0.0.300/8",)})
    with pytest.raises(ConfigError, match="METRICS_ALLOW_NETWORKS"):
        create_app(settings)


def _sample(text_body: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition text (0 when absent)."""
    for line in text_body.splitlines():
        if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_sign_ins_refusals_session_checks_and_latency(app, client, monkeypatch, acme, sign_in, idp):
    monkeypatch.setitem(app.config, "METRICS_ENABLED", True)
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-secret")
    scrape = {"Authorization": "Bearer scrape-secret"}
    connection = acme["connection"]
    before = _metrics(client, **scrape).get_data(as_text=True)

    assert sign_in(connection, "admin@acme.example").status_code == 302
    client.delete_cookie("__Host-portal_session", domain="sso.test")
    request_id = start_sso(client, "agent@acme.example")
    stranger = idp.response(acme["sp"], email="nobody@acme.example", request_id=request_id)
    assert post_acs(client, connection, stranger).status_code == 403
    token = create_session(acme["agent"], app_name="desktop", ip=None, user_agent=None).token
    db.session.commit()
    app_client = client.application.test_client()
    assert app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert app_client.get("/api/v1/me", headers={"Authorization": "Bearer " + "z" * 43}).status_code == 401

    after = _metrics(client, **scrape).get_data(as_text=True)
    conn = str(connection.id)

    def grew(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert grew("sso_signins_total", action="signin.sso", outcome="success", code="", connection=conn) == 1
    assert (
        grew("sso_signins_total", action="signin.sso", outcome="failure", code="USER_NOT_FOUND", connection=conn) == 1
    )
    # Every sign-in event the database holds was counted, and nothing more.
    assert db.session.query(AuditEvent).filter(AuditEvent.action == "signin.sso").count() == 2
    assert grew("sso_session_checks_total", credential="bearer", result="live") == 1
    assert grew("sso_session_checks_total", credential="bearer", result="refused") == 1
    assert grew("sso_http_request_duration_seconds_count", endpoint="api.me", method="GET") == 2
    assert grew("sso_http_requests_total", endpoint="saml.acs", method="POST", status="303") == 1


def test_a_rolled_back_sign_in_event_is_not_counted(app):
    from app import audit
    from app.observability.metrics import SIGNINS

    counter = SIGNINS.labels("signin.sso", "success", "", "")
    before = counter._value.get()
    audit.record("signin.sso", subject_email="ghost@acme.example")
    db.session.rollback()
    db.session.commit()
    assert counter._value.get() == before
    audit.record("signin.sso", subject_email="real@acme.example")
    db.session.commit()
    assert counter._value.get() == before + 1


def _cut_the_connection_when(kind: type) -> object:
    """A ``before_commit`` hook that terminates the request's database connection when the
    transaction is about to store a new ``kind`` row, added as an ORM object or already written
    by a Core INSERT (the commit then fails mid-way)."""
    import psycopg
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from tests.conftest import TEST_DATABASE_URL

    table = kind.__table__.name  # type: ignore[attr-defined]
    inserted: list[bool] = []

    def saw(_conn, _cursor, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "):
            inserted.append(True)

    event.listen(Engine, "before_cursor_execute", saw)

    def cut(session: object) -> None:
        if inserted or any(isinstance(obj, kind) for obj in session.new):  # type: ignore[attr-defined]
            inserted.clear()
            if event.contains(Engine, "before_cursor_execute", saw):
                event.remove(Engine, "before_cursor_execute", saw)
            pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()  # type: ignore[attr-defined]
            url = TEST_DATABASE_URL.replace("postgresql+psycopg://", "postgresql://", 1)
            with psycopg.connect(url, autocommit=True) as killer:
                assert killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]

    return cut


@pytest.mark.postgres
def test_a_sign_in_cut_at_the_acs_commit_leaves_nothing_half_done(client, acme, idp):
    """The connection dies as the ACS commits (replay entry + consumed pending request + the
    stored result, one transaction): a 503, and nothing of it stays, so the sign-in can be
    started again."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from app.models import PendingRequest, SignInResult, UsedAssertion, UserSession

    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    cut = _cut_the_connection_when(SignInResult)
    event.listen(Session, "before_commit", cut)
    try:
        response = post_acs(client, acme["connection"], saml, finish=False)
    finally:
        event.remove(Session, "before_commit", cut)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert db.session.get(PendingRequest, request_id) is not None
    assert db.session.query(UsedAssertion).count() == 0
    assert db.session.query(SignInResult).count() == 0
    assert db.session.query(UserSession).count() == 0


@pytest.mark.postgres
def test_a_sign_in_cut_at_the_finish_commit_can_be_finished_again(client, acme, idp):
    """The connection dies as /sso/finish commits (the new session + the claimed result): a 503,
    no session, and the stored result is still there, so reloading the finishing page signs in."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from app.models import SignInResult, UserSession

    request_id = start_sso(client, "admin@acme.example")
    saml = idp.response(acme["sp"], email="admin@acme.example", request_id=request_id)
    accepted = post_acs(client, acme["connection"], saml, finish=False)
    assert accepted.status_code == 303
    cut = _cut_the_connection_when(UserSession)
    event.listen(Session, "before_commit", cut)
    try:
        response = client.get(accepted.location)
    finally:
        event.remove(Session, "before_commit", cut)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert db.session.query(UserSession).count() == 0
    assert db.session.query(AuditEvent).filter(AuditEvent.action == "signin.sso").count() == 0
    assert db.session.query(SignInResult).count() == 1
    assert client.get(accepted.location).status_code == 302
    assert db.session.query(UserSession).count() == 1


def _terminate_session_connection() -> None:
    """Open a transaction on the request's session, then terminate its backend from outside."""
    import psycopg

    from tests.conftest import TEST_DATABASE_URL

    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    url = TEST_DATABASE_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as killer:
        assert killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]


@pytest.mark.postgres
def test_a_connection_lost_after_the_response_does_not_turn_it_into_a_500(app):
    """Closing the session at teardown rolls back; on a dead connection that raises, and the WSGI
    server would answer 500 in place of the response already built."""
    from sqlalchemy.exc import OperationalError

    from app.views.errors import close_session_quietly

    _terminate_session_connection()
    with pytest.raises(OperationalError):
        db.session.remove()  # what Flask-SQLAlchemy's teardown does
    db.session.registry.clear()

    _terminate_session_connection()
    close_session_quietly(None)
    assert db.session.execute(text("SELECT 1")).scalar_one() == 1  # the next request gets a fresh connection


def test_gunicorn_settings_fit_the_app(monkeypatch, tmp_path):
    import multiprocessing
    import runpy

    from config import BASE_DIR, Config

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_TIMEOUT", raising=False)
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")
    settings = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    assert settings["workers"] == 2 * multiprocessing.cpu_count() + 1
    # The slowest request (a metadata fetch, bounded by its deadline) ends before the worker is killed.
    assert settings["timeout"] > 2 * Config.METADATA_FETCH_DEADLINE_SECONDS
    assert "%({x-request-id}o)s" in settings["access_log_format"]
    assert "%({x-forwarded-for}i)s" in settings["access_log_format"]
    assert settings["forwarded_allow_ips"] == ""  # the app's ProxyFix alone trusts TRUSTED_PROXY_COUNT hops
    assert "%(request_id)s" in settings["logconfig_dict"]["formatters"]["app"]["format"]
    record = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "m", (), None)
    assert record.request_id == "-"
