"""A database outage under load, for real: gunicorn with two workers on PostgreSQL, every backend
of the test database terminated again and again for about a second while requests keep coming.

Counts what a client sees: no 500 at all; every failure a 503 with Retry-After and the stable
code; after the cut, every session still works (none lost) and the very first requests succeed
(pool_pre_ping). The PostgreSQL server itself is never stopped: it is shared.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from app.extensions import db
from app.sessions import create_session
from config import DEV_SP_KEY_ENCRYPTION_KEY
from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = 12
CLIENT_THREADS = 4
REQUESTS_PER_THREAD = 400
CUT_SECONDS = 1.0
TERMINATE_OTHERS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _plain_url(url: str) -> str:
    """psycopg wants postgresql://, not SQLAlchemy's postgresql+psycopg://."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class Server:
    port: int
    log: Path

    def request(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": "outage-test-" + "k" * 40,
        "BASE_URL": f"http://127.0.0.1:{port}",
        # A production-like run on this machine: plain http on loopback, and a fresh key that
        # encrypts (the test app's development key still decrypts what it wrote).
        "ALLOW_INSECURE_BASE_URL": "1",
        # One client from one address plays the whole load: the per-address limit out of reach.
        "ANONYMOUS_REQUESTS_PER_MINUTE": "1000000000",
        "SP_KEY_ENCRYPTION_KEY": f"{Fernet.generate_key().decode()},{DEV_SP_KEY_ENCRYPTION_KEY}",
        "DATABASE_URL": _plain_url(TEST_DATABASE_URL),
        "WEB_CONCURRENCY": "2",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "INSTANCE_DIR": str(tmp_path / "instance"),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(port=port, log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if server.request("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("gunicorn did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, status: int, headers: dict[str, str], body: bytes) -> None:
        with self.lock:
            self.statuses[(path.split("?")[0], status)] += 1
            if status == 503:
                if "retry-after" not in headers or b"DATABASE_UNAVAILABLE" not in body:
                    self.problems.append(f"503 without Retry-After or code on {path}: {body[:200]!r}")
                if b"Traceback" in body:
                    self.problems.append(f"traceback in a 503 body on {path}")
            elif status not in (200, 302):
                self.problems.append(f"{status} on {path}: {body[:300]!r}")


def test_cutting_every_database_connection_under_load_loses_nothing(gunicorn, acme):
    tokens = []
    for i in range(SESSIONS):
        # Odd: the admin's portal sessions (cookie); even: the agent's desktop app (bearer token).
        app_name, user = ("portal", acme["admin"]) if i % 2 else ("desktop", acme["agent"])
        tokens.append((app_name, create_session(user, app_name=app_name, ip=None, user_agent=None).token))
    db.session.commit()

    def credentials(app_name: str, token: str) -> dict[str, str]:
        if app_name == "portal":
            return {"Cookie": f"portal_session={token}"}
        return {"Authorization": f"Bearer {token}"}

    def me(app_name: str, token: str) -> int:
        return gunicorn.request("/api/v1/me", credentials(app_name, token))[0]

    assert [me(*t) for t in tokens] == [200] * SESSIONS

    tally = Tally()
    stop_cutting = threading.Event()
    terminated = []

    def cut() -> None:
        with psycopg.connect(_plain_url(TEST_DATABASE_URL), autocommit=True) as connection:
            end = time.monotonic() + CUT_SECONDS
            while time.monotonic() < end and not stop_cutting.is_set():
                terminated.append(connection.execute(TERMINATE_OTHERS).fetchone()[0])
                time.sleep(0.005)

    def load(worker: int) -> None:
        routes = [
            lambda i: ("/api/v1/me", credentials(*tokens[i % SESSIONS])),
            lambda i: ("/login", credentials(*tokens[(i % (SESSIONS // 2)) * 2 + 1])),
            lambda i: ("/readyz", {}),
            lambda i: ("/sso/start?email=agent%40acme.example", {}),
        ]
        for i in range(REQUESTS_PER_THREAD):
            path, headers = routes[(i + worker) % len(routes)](i)
            tally.add(path, *gunicorn.request(path, headers))

    clients = [threading.Thread(target=load, args=(n,)) for n in range(CLIENT_THREADS)]
    for thread in clients:
        thread.start()
    time.sleep(0.3)  # the load is running before the cut starts
    cutter = threading.Thread(target=cut)
    cutter.start()
    cutter.join(timeout=30)
    stop_cutting.set()
    for thread in clients:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in clients), "the load did not finish"

    # After the cut: the first requests succeed (stale connections are replaced on checkout) and
    # every session still works.
    assert [me(*t) for t in tokens] == [200] * SESSIONS
    assert gunicorn.request("/readyz")[0] == 200

    log = gunicorn.log.read_text()
    total = sum(tally.statuses.values())
    unavailable = sum(count for (_path, status), count in tally.statuses.items() if status == 503)
    print(f"\n{total} requests during the cut, {sum(terminated)} backends terminated in {len(terminated)} rounds")
    print(json.dumps({f"{path} {status}": count for (path, status), count in sorted(tally.statuses.items())}, indent=1))
    assert sum(terminated) > 0, "the cut terminated no connection: nothing was tested"
    assert total == CLIENT_THREADS * REQUESTS_PER_THREAD
    tracebacks = log[log.find("Traceback") - 300 :][:6000] if "Traceback" in log else ""
    assert not any(status == 500 for _path, status in tally.statuses), (tally.statuses, tracebacks)
    assert tally.problems == []
    assert "Traceback" not in log, tracebacks
    # One log line per 503, no more.
    lines = [line for line in log.splitlines() if "database unavailable" in line]
    assert len(lines) == unavailable, "\n".join(lines[:6])
