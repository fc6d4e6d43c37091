"""Settings and start-up checks: what refuses to start, and what exists only in development."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import create_app
from app.extensions import db
from app.saml import compat
from config import ConfigError, ProductionConfig, TestingConfig, database_url


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
    settings = type("Prod", (ProductionConfig,), {"SECRET_KEY": "x" * 32, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    production = create_app(settings)
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
        client.get(
            "/sso/start",
            query_string={"email": "x@acme.example"},
            headers={"X-Forwarded-For": "203.0.113.7"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        assert db.session.query(AuditEvent).one().ip == "203.0.113.7"
        db.session.remove()
        db.engine.dispose()
