"""Gunicorn settings for production: ``gunicorn -c gunicorn.conf.py wsgi:app`` (``make serve``).

Every value can be overridden from the environment (``WEB_CONCURRENCY``, ``GUNICORN_BIND``,
``GUNICORN_TIMEOUT``, ``LOG_LEVEL``) or on the command line. See the README, "Production".
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

# Metrics from every worker are summed through files in this folder (prometheus_client's
# multiprocess mode). It must be set before anything imports prometheus_client, i.e. here.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sso-portal-metrics-")
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from app.observability.request_id import install_log_record_factory  # noqa: E402 - after the variable
from config import Config  # noqa: E402

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:" + os.environ.get("PORT", "8000"))

# Sync workers: a request is CPU (XML signatures) plus short database round trips, so gunicorn's
# rule of thumb of 2 x cores + 1 keeps the cores busy while some workers wait on PostgreSQL.
workers = int(os.environ.get("WEB_CONCURRENCY", str(multiprocessing.cpu_count() * 2 + 1)))
worker_class = "sync"

# The slowest request is an admin's metadata fetch, which ends by METADATA_FETCH_DEADLINE_SECONDS
# (name lookup, connect, TLS, headers and body together); allow that twice over plus margin.
# A worker silent for longer is killed and replaced (and its request answered 502 by the proxy).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", str(int(2 * Config.METADATA_FETCH_DEADLINE_SECONDS) + 15)))
graceful_timeout = timeout
# Behind a proxy that reuses connections: keep them a little longer than nothing.
keepalive = 5
# Heartbeat files in memory, not on a disk that may stall (gunicorn's advice for containers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - gunicorn's own advice

# Forwarded headers: the app alone decides whom to trust, with TRUSTED_PROXY_COUNT hops
# (werkzeug's ProxyFix: X-Forwarded-For and X-Forwarded-Proto). Gunicorn trusts no one itself,
# so that there is one rule, not two that could disagree.
forwarded_allow_ips = ""
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

# One access line per request, with the request id (echoed by the app in X-Request-ID) and, behind
# a proxy, the forwarded-for chain; %(M)s is the duration in milliseconds.
accesslog = "-"
access_log_format = (
    '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
    + (' fwd="%({x-forwarded-for}i)s"' if TRUSTED_PROXY_COUNT else "")
    + ' "%(a)s"'
)
loglevel = os.environ.get("LOG_LEVEL", "info")

# Every application log line carries the request id too (see app/observability/request_id.py).
install_log_record_factory()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "app": {"format": "%(asctime)s %(levelname)s [%(process)d] %(name)s rid=%(request_id)s: %(message)s"},
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
    },
    "root": {"level": loglevel.upper(), "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}


def on_starting(server: object) -> None:
    """Forget the metrics files of a previous run (counters restart with the server)."""
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server: object, worker: object) -> None:
    """A worker died or was replaced: let the metrics drop its live gauges (prometheus_client)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
