"""Settings per environment, read from environment variables.

``APP_ENV`` picks the class (``development``, ``testing`` or ``production``, the default), so that
a forgotten variable never turns a production server into a development one.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR", BASE_DIR / "instance"))
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Fixed secrets that are fine on a laptop and in tests, and refused by production settings.
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"
TESTING_SECRET_KEY = "testing-secret-key"
#: A Fernet key (base64 of "development-only-SP-key-wrapping"), for development and tests only.
DEV_SP_KEY_ENCRYPTION_KEY = "ZGV2ZWxvcG1lbnQtb25seS1TUC1rZXktd3JhcHBpbmc="
#: Hosts an http:// BASE_URL may name under production settings with ALLOW_INSECURE_BASE_URL=1.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


#: Seconds to wait for a new PostgreSQL connection (see ``database_url``).
DATABASE_CONNECT_TIMEOUT_SECONDS = 5


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says what to do."""


def database_url(raw: str | None) -> str:
    """Return the SQLAlchemy URL for ``DATABASE_URL``, defaulting to SQLite under ``instance/``.

    ``postgresql://`` URLs are pointed at psycopg 3, the driver we ship, with a connect timeout
    unless the URL sets one: a black-holed database host must not hold a worker until the TCP
    timeout (minutes), far past gunicorn's worker timeout.
    """
    if not raw:
        return f"sqlite:///{INSTANCE_DIR / 'portal.db'}"
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://") :]
    if raw.startswith("postgresql") and "connect_timeout=" not in raw:
        raw += ("&" if "?" in raw else "?") + f"connect_timeout={DATABASE_CONNECT_TIMEOUT_SECONDS}"
    return raw


def _networks(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


class Config:
    """Defaults shared by every environment."""

    ENV_NAME = "production"
    SECRET_KEY = os.environ.get("SECRET_KEY")
    #: As given; production refuses to start without it (the SQLite default is for development).
    DATABASE_URL = os.environ.get("DATABASE_URL", "")
    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"))
    #: Fernet keys that encrypt the SP private keys in the database, comma-separated, newest first:
    #: the first encrypts, all decrypt (rotation: prepend a new key, run `flask keys rotate`, then
    #: drop the old one). Generate one with
    #: `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`.
    SP_KEY_ENCRYPTION_KEY = os.environ.get("SP_KEY_ENCRYPTION_KEY", "")
    #: Production settings with an http://localhost BASE_URL, for a production-like run on one
    #: machine (`make serve`). Never on a server: cookies lose their Secure flag.
    ALLOW_INSECURE_BASE_URL = os.environ.get("ALLOW_INSECURE_BASE_URL", "").lower() in ("1", "true", "yes")
    #: A pooled connection idle for longer than this many seconds is tested on checkout (one cheap
    #: round trip), so that after a database restart the first request gets a fresh connection
    #: instead of an error; one in use a moment ago is not (see ``check_connections_after_idle``).
    #: 0 tests every checkout (SQLAlchemy's ``pool_pre_ping``).
    DATABASE_PING_IDLE_SECONDS = float(os.environ.get("DATABASE_PING_IDLE_SECONDS", "1"))
    #: The public origin of the portal, as browsers and IdPs see it. SAML URLs (entity ID, ACS,
    #: Destination checks) are built from it, never from the Host header.
    BASE_URL = os.environ.get("BASE_URL", "http://localhost:5000").rstrip("/")
    #: Sessions last this long from their last use (sliding).
    SESSION_LIFETIME_DAYS = int(os.environ.get("SESSION_LIFETIME_DAYS", "21"))
    #: Optional absolute lifetime: a session older than this many days (since its sign-in) is refused
    #: however recently it was used. 0 (the default) keeps the sliding rule alone.
    SESSION_MAX_AGE_DAYS = int(os.environ.get("SESSION_MAX_AGE_DAYS", "0"))
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
    #: How long a previewed CSV waits for its "Apply" (the upload is kept in the database until then).
    IMPORT_PREVIEW_SECONDS = int(os.environ.get("IMPORT_PREVIEW_SECONDS", "3600"))
    #: Files of up to this many lines are checked and applied within the request; larger ones run
    #: as a job in a thread of the worker, with a progress bar.
    IMPORT_INLINE_MAX_ROWS = int(os.environ.get("IMPORT_INLINE_MAX_ROWS", "2000"))
    #: A running import job whose thread has not written for this long is shown as failed.
    IMPORT_JOB_HEARTBEAT_SECONDS = int(os.environ.get("IMPORT_JOB_HEARTBEAT_SECONDS", "60"))
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
    #: set X-Forwarded-For / X-Forwarded-Proto. 0 trusts none of those headers. Behind one proxy
    #: (nginx, a load balancer) set 1: the app logs a warning once per process when requests carry
    #: these headers while it is 0, or arrive over http while BASE_URL is https.
    TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
    #: Level of the ``app`` logger (DEBUG, INFO, WARNING, ERROR). Unset: INFO for the server,
    #: WARNING for our ``flask`` commands and for alembic during ``flask db upgrade``, so that a
    #: command prints only its answer. LOG_LEVEL=INFO shows the audit lines and migration steps.
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "").strip().upper()
    #: Prometheus metrics at /metrics: off (404) unless enabled, and then only for a scraper that
    #: sends ``Authorization: Bearer METRICS_TOKEN`` or connects from METRICS_ALLOW_NETWORKS
    #: (comma-separated CIDRs, e.g. ``10.0.0.0/8,127.0.0.1/32``).
    METRICS_ENABLED = os.environ.get("METRICS_ENABLED", "").lower() in ("1", "true", "yes", "on")
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
    METRICS_ALLOW_NETWORKS: tuple[str, ...] = _networks(os.environ.get("METRICS_ALLOW_NETWORKS"))
    #: Only development settings turn the built-in demo IdP on.
    DEMO_IDP = False
    #: Metadata URLs and the IdP's SSO / SLO URLs must be https, and metadata must not come from a
    #: private address. Development turns this on (http, the demo IdP on localhost).
    METADATA_FETCH_ALLOW_INSECURE = False
    #: A metadata fetch (name lookup, connect, TLS, headers and body together) ends after this long.
    METADATA_FETCH_DEADLINE_SECONDS = float(os.environ.get("METADATA_FETCH_DEADLINE_SECONDS", "10"))
    #: A form's CSRF token is accepted for this many seconds (8 hours: a working day with the page
    #: left open); its secret is also renewed at every sign-in and sign-out.
    WTF_CSRF_TIME_LIMIT = int(os.environ.get("WTF_CSRF_TIME_LIMIT", str(8 * 3600)))
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
        from app.key_encryption import parse_keyring

        try:
            parse_keyring(config["SP_KEY_ENCRYPTION_KEY"])
        except ValueError as exc:
            raise ConfigError(
                f"SP_KEY_ENCRYPTION_KEY: {exc}. Generate a key with `python -c 'from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())'`."
            ) from None
        for network in config["METRICS_ALLOW_NETWORKS"]:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"METRICS_ALLOW_NETWORKS: {network!r} is not a network. Use CIDRs such as 10.0.0.0/8,127.0.0.1/32."
                ) from None
        for uri in config["APP_MOBILE_REDIRECT_URIS"]:
            scheme, colon, _rest = uri.partition(":")
            if not colon or "." not in scheme or scheme.lower() in ("http", "https") or "#" in uri:
                raise ConfigError(
                    f"APP_MOBILE_REDIRECT_URIS: {uri!r} is not a private-use redirect URI. Use a reverse "
                    "domain name scheme you own, such as com.example.phone:/oauth2redirect (RFC 8252 7.1)."
                )


class ProductionConfig(Config):
    """Gunicorn behind a TLS proxy, PostgreSQL."""

    @classmethod
    def validate(cls, config: dict) -> None:
        """Also refuse what is fine on a laptop but unsafe on a server; each message says what to set."""
        super().validate(config)
        secret = str(config["SECRET_KEY"])
        if secret in (DEV_SECRET_KEY, TESTING_SECRET_KEY):
            raise ConfigError(
                "SECRET_KEY is the development key, which is public. Set SECRET_KEY to a long random value, "
                "e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
            )
        if len(secret.encode()) < 32:
            raise ConfigError(
                f"SECRET_KEY is {len(secret.encode())} bytes long; use at least 32 random bytes, "
                "e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
            )
        base_url = config["BASE_URL"]
        if not base_url.startswith("https://"):
            host = (urlsplit(base_url).hostname or "").lower()
            if not (config["ALLOW_INSECURE_BASE_URL"] and host in LOOPBACK_HOSTS):
                raise ConfigError(
                    f"BASE_URL={base_url} must start with https:// in production: IdPs post sign-ins to it and "
                    "the session cookies are Secure. Put the portal behind TLS and set BASE_URL=https://... "
                    "(For a production-like run on this machine only: ALLOW_INSECURE_BASE_URL=1 with "
                    "BASE_URL=http://localhost:PORT.)"
                )
        if config.get("DEBUG"):
            raise ConfigError(
                "Debug mode is on (FLASK_DEBUG): it shows tracebacks and a debugger to anyone. "
                "Unset FLASK_DEBUG (or `--debug`) in production."
            )
        if not config.get("DATABASE_URL") and config["SQLALCHEMY_DATABASE_URI"] == database_url(None):
            raise ConfigError(
                "DATABASE_URL is not set. Production needs the PostgreSQL database every worker shares, "
                "e.g. DATABASE_URL=postgresql://portal@db.internal/portal (SQLite under instance/ is for development)."
            )
        if not config["SP_KEY_ENCRYPTION_KEY"]:
            raise ConfigError(
                "SP_KEY_ENCRYPTION_KEY is not set: it encrypts the SP private keys in the database. Generate one "
                "with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` "
                "and keep it outside the database backups."
            )
        if config["SP_KEY_ENCRYPTION_KEY"].split(",")[0].strip() == DEV_SP_KEY_ENCRYPTION_KEY:
            raise ConfigError(
                "SP_KEY_ENCRYPTION_KEY starts with the development key, which is public. Generate a new key and "
                "put it first (SP_KEY_ENCRYPTION_KEY=new,old), run `flask keys rotate`, then drop the old key."
            )


class DevelopmentConfig(Config):
    """`make run`: SQLite, the demo IdP, a fixed secret that is fine on a laptop."""

    ENV_NAME = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    SP_KEY_ENCRYPTION_KEY = os.environ.get("SP_KEY_ENCRYPTION_KEY", DEV_SP_KEY_ENCRYPTION_KEY)
    DEMO_IDP = True
    METADATA_FETCH_ALLOW_INSECURE = True
    #: Send requests for any other host (127.0.0.1 when BASE_URL says localhost) to BASE_URL's.
    CANONICAL_HOST_REDIRECT = True


class TestingConfig(Config):
    """pytest: the database comes from TEST_DATABASE_URL (SQLite by default)."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = TESTING_SECRET_KEY
    SP_KEY_ENCRYPTION_KEY = DEV_SP_KEY_ENCRYPTION_KEY
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
