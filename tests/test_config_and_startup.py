"""Settings and start-up checks: what refuses to start, and what exists only in development."""

from __future__ import annotations

import logging
import stat

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet

import app.demo_idp.setup as demo_setup
from app import create_app
from app.extensions import db
from app.saml import compat
from config import (
    DEV_SECRET_KEY,
    DEV_SP_KEY_ENCRYPTION_KEY,
    INSTANCE_DIR,
    ConfigError,
    ProductionConfig,
    TestingConfig,
    database_url,
)

#: Production settings that start: every test below changes one of them.
SAFE_PRODUCTION = {
    "SECRET_KEY": "a-long-random-secret-of-at-least-32-bytes",
    "DATABASE_URL": "postgresql://portal@db.internal/portal",
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "BASE_URL": "https://sso.example.com",
    "SP_KEY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "ALLOW_INSECURE_BASE_URL": False,
}


def production_settings(**changes: object) -> type[ProductionConfig]:
    return type("Prod", (ProductionConfig,), {**SAFE_PRODUCTION, **changes})


def test_production_refuses_to_start_without_a_secret_key():
    settings = type("NoSecret", (ProductionConfig,), {"SECRET_KEY": None, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app(settings)


def test_clock_skew_beyond_the_library_limit_is_refused():
    settings = type(
        "Skewed", (TestingConfig,), {"SAML_CLOCK_SKEW_SECONDS": 900, "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    )
    with pytest.raises(ConfigError, match="SAML_CLOCK_SKEW_SECONDS"):
        create_app(settings)


def test_demo_idp_does_not_exist_under_production_settings():
    production = create_app(production_settings())
    assert not any(rule.rule.startswith("/demo-idp") for rule in production.url_map.iter_rules())
    assert production.test_client().get("/demo-idp/sso").status_code == 404


def test_demo_idp_exists_under_development_settings(live_server):
    assert any(rule.rule.startswith("/demo-idp") for rule in live_server.app.url_map.iter_rules())


def test_postgres_urls_use_psycopg3_with_a_connect_timeout():
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db?connect_timeout=5"
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db?connect_timeout=5"
    assert (
        database_url("postgresql://u@h/db?sslmode=require")
        == "postgresql+psycopg://u@h/db?sslmode=require&connect_timeout=5"
    )
    assert database_url("postgresql://u@h/db?connect_timeout=2") == "postgresql+psycopg://u@h/db?connect_timeout=2"
    assert database_url(None).startswith("sqlite:///")


def test_libxml2_mismatch_stops_the_app_with_instructions(monkeypatch):
    compat.check_libxml2()  # the pinned wheels agree
    monkeypatch.setattr(compat.xmlsec, "get_libxml_version", lambda: (2, 9, 1))
    with pytest.raises(compat.LibxmlMismatchError, match=r"requirements\.txt"):
        compat.check_libxml2()


def test_migrations_match_the_models(app):
    """The schema built by `flask db upgrade` (see conftest) is exactly what the models declare."""
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_client_address_comes_from_the_trusted_proxy_only(tmp_path):
    from app.models import AuditEvent

    settings = {"TRUSTED_PROXY_COUNT": 1, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/proxy.db"}
    behind_proxy = create_app(type("Proxied", (TestingConfig,), settings))
    with behind_proxy.app_context():
        db.create_all()
        client = behind_proxy.test_client()
        # A GET to the ACS is refused and audited with the client's address.
        client.get(
            "/saml/1/acs",
            headers={"X-Forwarded-For": "203.0.113.7"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        assert db.session.query(AuditEvent).one().ip == "203.0.113.7"
        db.session.remove()
        db.engine.dispose()


# --- production settings refuse unsafe values, saying what to set --------------------------------


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"BASE_URL": "http://sso.example.com"}, "must start with https://"),
        ({"BASE_URL": "http://sso.example.com", "ALLOW_INSECURE_BASE_URL": True}, "must start with https://"),
        ({"SECRET_KEY": "short-secret"}, "12 bytes long; use at least 32"),
        ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY is the development key"),
        ({"SECRET_KEY": "testing-secret-key"}, "SECRET_KEY is the development key"),
        ({"DEBUG": True}, "Unset FLASK_DEBUG"),
        ({"DATABASE_URL": "", "SQLALCHEMY_DATABASE_URI": database_url(None)}, "DATABASE_URL is not set"),
        ({"SP_KEY_ENCRYPTION_KEY": ""}, "SP_KEY_ENCRYPTION_KEY is not set"),
        ({"SP_KEY_ENCRYPTION_KEY": DEV_SP_KEY_ENCRYPTION_KEY}, "starts with the development key"),
        ({"SP_KEY_ENCRYPTION_KEY": "not-a-key"}, "key 1 of 1 is not a Fernet key"),
    ],
)
def test_production_refuses_unsafe_settings_with_what_to_do(changes, says):
    with pytest.raises(ConfigError, match=says):
        create_app(production_settings(**changes))


def test_debug_mode_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    with pytest.raises(ConfigError, match="Debug mode is on"):
        create_app(production_settings())


def test_safe_production_settings_start_and_local_http_needs_the_explicit_escape_hatch():
    assert create_app(production_settings()).config["SESSION_COOKIE_SECURE"] is True
    # `make serve`: production settings on this machine over http, only when asked for explicitly.
    local = create_app(production_settings(BASE_URL="http://localhost:8000", ALLOW_INSECURE_BASE_URL=True))
    assert local.config["SESSION_COOKIE_SECURE"] is False
    with pytest.raises(ConfigError, match="ALLOW_INSECURE_BASE_URL=1"):
        create_app(production_settings(BASE_URL="http://localhost:8000"))
    # The old key may stay in the keyring after the new one, to be rotated away.
    create_app(
        production_settings(SP_KEY_ENCRYPTION_KEY=f"{Fernet.generate_key().decode()},{DEV_SP_KEY_ENCRYPTION_KEY}")
    )


# --- files the app creates are private -----------------------------------------------------------


def test_instance_folder_and_sqlite_database_are_not_world_readable(tmp_path):
    INSTANCE_DIR.chmod(0o755)
    database = tmp_path / "data" / "portal.db"
    sqlite_app = create_app(type("Files", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}))
    assert stat.S_IMODE(INSTANCE_DIR.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    with sqlite_app.app_context():
        db.create_all()
        db.session.execute(db.text("SELECT 1"))
        # While connected: the database and SQLite's -wal and -shm files.
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in database.parent.iterdir()}
        db.session.remove()
        db.engine.dispose()
    assert modes == {"portal.db": 0o600, "portal.db-wal": 0o600, "portal.db-shm": 0o600}

    database.chmod(0o644)  # made by an older version: tightened at the next start
    create_app(type("Files", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}))
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_the_demo_idp_key_is_created_private(app, tmp_path, monkeypatch):
    monkeypatch.setattr(demo_setup, "demo_idp_dir", lambda: tmp_path / "demo_idp")
    demo_setup.demo_idp_key_pair()
    assert stat.S_IMODE((tmp_path / "demo_idp").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "demo_idp" / "key.pem").stat().st_mode) == 0o600


# --- a proxy set-up that needs TRUSTED_PROXY_COUNT is detected -----------------------------------


def _proxy_app(tmp_path, hops: int):
    settings = {"TRUSTED_PROXY_COUNT": hops, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/proxy{hops}.db"}
    return create_app(type("Proxied", (TestingConfig,), settings))


def _warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_forwarded_headers_without_a_trusted_proxy_are_logged_once(tmp_path, caplog):
    client = _proxy_app(tmp_path, 0).test_client()
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    with caplog.at_level(logging.WARNING, logger="app"):
        client.get("/login", base_url="https://sso.test", headers=headers)
        client.get("/login", base_url="https://sso.test", headers=headers)
    logged = _warnings(caplog)
    assert len(logged) == 1 and "set TRUSTED_PROXY_COUNT" in logged[0] and "X-Forwarded-For" in logged[0]


def test_http_requests_while_base_url_is_https_are_logged_once(tmp_path, caplog):
    client = _proxy_app(tmp_path, 0).test_client()
    with caplog.at_level(logging.WARNING, logger="app"):
        client.get("/login", base_url="http://sso.test")
        client.get("/login", base_url="http://sso.test")
    logged = _warnings(caplog)
    assert len(logged) == 1 and "BASE_URL is https but this request arrived over http" in logged[0]


def test_a_trusted_proxy_that_says_https_logs_nothing(tmp_path, caplog):
    client = _proxy_app(tmp_path, 1).test_client()
    with caplog.at_level(logging.WARNING, logger="app"):
        client.get(
            "/login",
            base_url="http://sso.test",
            headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
        )
    assert _warnings(caplog) == []
