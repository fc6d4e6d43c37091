"""Settings per environment, read from environment variables.

``APP_ENV`` picks the class (``development``, ``testing`` or ``production``, the default), so that
a forgotten variable never turns a production server into a development one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR", BASE_DIR / "instance"))
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says what to do."""


def database_url(raw: str | None) -> str:
    """Return the SQLAlchemy URL for ``DATABASE_URL``, defaulting to SQLite under ``instance/``.

    ``postgresql://`` URLs are pointed at psycopg 3, the driver we ship.
    """
    if not raw:
        return f"sqlite:///{INSTANCE_DIR / 'portal.db'}"
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://") :]
    return raw


class Config:
    """Defaults shared by every environment."""

    ENV_NAME = "production"
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"))
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True}
    #: The public origin of the portal, as browsers and IdPs see it. SAML URLs (entity ID, ACS,
    #: Destination checks) are built from it, never from the Host header.
    BASE_URL = os.environ.get("BASE_URL", "http://localhost:5000").rstrip("/")
    #: Sessions last this long from their last use (sliding).
    SESSION_LIFETIME_DAYS = int(os.environ.get("SESSION_LIFETIME_DAYS", "21"))
    #: A session's last-used time is written at most once per this many seconds.
    SESSION_TOUCH_INTERVAL_SECONDS = int(os.environ.get("SESSION_TOUCH_INTERVAL_SECONDS", "300"))
    #: How far the IdP's clock may be from ours when checking NotBefore / NotOnOrAfter.
    SAML_CLOCK_SKEW_SECONDS = int(os.environ.get("SAML_CLOCK_SKEW_SECONDS", "120"))
    #: How long an AuthnRequest may wait for its Response.
    SAML_PENDING_REQUEST_SECONDS = int(os.environ.get("SAML_PENDING_REQUEST_SECONDS", "600"))
    #: Largest SAMLResponse POST the ACS reads; real responses are a few kilobytes.
    SAML_ACS_MAX_BYTES = int(os.environ.get("SAML_ACS_MAX_BYTES", str(256 * 1024)))
    #: Largest request body of any route that names no other (forms are a few kilobytes).
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(1024 * 1024)))
    #: Largest CSV upload (the admin's import page alone): 50,000 users fit in a few megabytes.
    IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(60 * 1024 * 1024)))
    #: Password attempts allowed per (email, address) in the window; past it that pair is locked
    #: out, for the window the first time and twice as long after each further lock-out (24 h max).
    PASSWORD_MAX_FAILURES = int(os.environ.get("PASSWORD_MAX_FAILURES", "5"))
    PASSWORD_FAILURE_WINDOW_SECONDS = int(os.environ.get("PASSWORD_FAILURE_WINDOW_SECONDS", "900"))
    #: Looser ceilings in the same window: per address (all emails), per email (all addresses).
    PASSWORD_MAX_PER_ADDRESS = int(os.environ.get("PASSWORD_MAX_PER_ADDRESS", "100"))
    PASSWORD_MAX_PER_EMAIL = int(os.environ.get("PASSWORD_MAX_PER_EMAIL", "50"))
    #: Password checks (scrypt, 32 MB each) running at once in one worker; more answer 503 at once.
    PASSWORD_HASH_CONCURRENCY = int(os.environ.get("PASSWORD_HASH_CONCURRENCY", "4"))
    #: Requests per minute and client address at the other anonymous doors (SSO start, app
    #: authorize, token exchange, SP metadata), and refusals per minute at the ACS.
    ANONYMOUS_REQUESTS_PER_MINUTE = int(os.environ.get("ANONYMOUS_REQUESTS_PER_MINUTE", "60"))
    #: SSO starts (web or app) per minute for one email, from all addresses together.
    SSO_STARTS_PER_EMAIL_PER_MINUTE = int(os.environ.get("SSO_STARTS_PER_EMAIL_PER_MINUTE", "10"))
    #: Live (unanswered, unexpired) sign-in requests one browser may hold.
    MAX_PENDING_REQUESTS_PER_BROWSER = int(os.environ.get("MAX_PENDING_REQUESTS_PER_BROWSER", "20"))
    #: Where rate-limit counters live: empty for the database (every worker shares it), or
    #: ``redis://host:port/db``.
    RATE_LIMIT_STORAGE_URL = os.environ.get("RATE_LIMIT_STORAGE_URL", "").strip()
    #: ``flask sessions purge`` deletes audit events older than this, and refused sign-ins
    #: (anonymous failures, the bulk of any flood) older than the shorter second figure.
    AUDIT_RETENTION_DAYS = int(os.environ.get("AUDIT_RETENTION_DAYS", "365"))
    REFUSAL_RETENTION_DAYS = int(os.environ.get("REFUSAL_RETENTION_DAYS", "30"))
    #: Mobile app redirect URIs (RFC 8252 section 7.1 private-use URI schemes, reverse domain
    #: name), comma-separated; the app's redirect_uri must equal one of them exactly. Desktop apps
    #: need no setting: they use loopback redirects (http://127.0.0.1:{port}/...), RFC 8252 7.3.
    APP_MOBILE_REDIRECT_URIS: tuple[str, ...] = tuple(
        uri.strip()
        for uri in os.environ.get("APP_MOBILE_REDIRECT_URIS", "com.example.phone:/oauth2redirect").split(",")
        if uri.strip()
    )
    #: How long an app's one-time authorization code may wait for its exchange.
    APP_CODE_LIFETIME_SECONDS = int(os.environ.get("APP_CODE_LIFETIME_SECONDS", "60"))
    #: How many reverse proxies (TLS terminators, load balancers) stand in front of the app and
    #: set X-Forwarded-For / X-Forwarded-Proto. 0 trusts none of those headers.
    TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
    #: Level of the ``app`` logger (DEBUG, INFO, WARNING, ERROR). Unset: INFO for the server,
    #: WARNING for our ``flask`` commands and for alembic during ``flask db upgrade``, so that a
    #: command prints only its answer. LOG_LEVEL=INFO shows the audit lines and migration steps.
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "").strip().upper()
    #: Only development settings turn the built-in demo IdP on.
    DEMO_IDP = False
    #: Metadata URLs must be https, and must not resolve to private addresses.
    METADATA_FETCH_ALLOW_INSECURE = False
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the Flask session cookie
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    @classmethod
    def validate(cls, config: dict) -> None:
        """Refuse to start with settings that would be unsafe; say which variable to set."""
        if not config.get("SECRET_KEY"):
            raise ConfigError(
                "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long random "
                "value, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
            )
        skew = config["SAML_CLOCK_SKEW_SECONDS"]
        if not 0 <= skew <= 300:
            raise ConfigError(
                f"SAML_CLOCK_SKEW_SECONDS={skew}: use 0 to 300 seconds (python3-saml allows at most 300)."
            )
        for name in ("AUDIT_RETENTION_DAYS", "REFUSAL_RETENTION_DAYS"):
            if config[name] < 1:
                raise ConfigError(f"{name}={config[name]}: keep at least 1 day.")
        if config["RATE_LIMIT_STORAGE_URL"] and not config["RATE_LIMIT_STORAGE_URL"].startswith(
            ("redis://", "rediss://")
        ):
            raise ConfigError("RATE_LIMIT_STORAGE_URL: leave it empty (the database) or use redis://host:port/db.")
        if config["LOG_LEVEL"] not in ("", *LOG_LEVELS):
            raise ConfigError(f"LOG_LEVEL={config['LOG_LEVEL']}: use one of {', '.join(LOG_LEVELS)}.")
        if not config["BASE_URL"].startswith(("http://", "https://")):
            raise ConfigError("BASE_URL must start with https:// (or http:// in development).")
        for uri in config["APP_MOBILE_REDIRECT_URIS"]:
            scheme, colon, _rest = uri.partition(":")
            if not colon or "." not in scheme or scheme.lower() in ("http", "https") or "#" in uri:
                raise ConfigError(
                    f"APP_MOBILE_REDIRECT_URIS: {uri!r} is not a private-use redirect URI. Use a reverse "
                    "domain name scheme you own, such as com.example.phone:/oauth2redirect (RFC 8252 7.1)."
                )


class ProductionConfig(Config):
    """Gunicorn behind a TLS proxy, PostgreSQL."""


class DevelopmentConfig(Config):
    """`make run`: SQLite, the demo IdP, a fixed secret that is fine on a laptop."""

    ENV_NAME = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-secret-key-not-for-production")
    DEMO_IDP = True
    METADATA_FETCH_ALLOW_INSECURE = True


class TestingConfig(Config):
    """pytest: the database comes from TEST_DATABASE_URL (SQLite by default)."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("TEST_DATABASE_URL") or "sqlite://")
    BASE_URL = "https://sso.test"


CONFIGS: dict[str, type[Config]] = {
    "production": ProductionConfig,
    "development": DevelopmentConfig,
    "testing": TestingConfig,
}


def config_for_env(name: str | None = None) -> type[Config]:
    """Return the settings class named by ``APP_ENV`` (production when unset)."""
    name = name or os.environ.get("APP_ENV", "production")
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f"APP_ENV={name!r}: use one of {', '.join(CONFIGS)}.") from None
