"""HTTP benchmark: gunicorn with the production settings on PostgreSQL, loaded over real sockets.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scratch .venv/bin/python bench/http_load.py
        [--workers 2,4] [--requests 3000] [--acs 600] [--seconds 20] [--threads N]

Every table of BENCH_DATABASE_URL is dropped and rebuilt by the migrations: use a scratch
database. For each worker count, gunicorn (gunicorn.conf.py, APP_ENV=production) serves on
127.0.0.1 and a bounded load generator (threads with http.client, a fixed request count
and a time cap) measures each route beside its baseline in the same run:

1. ``GET /api/v1/me`` with a bearer token (one session check) against the same route without a
   token (401, no database) and ``GET /healthz`` (no database, no session);
2. ``POST /saml/<id>/acs``, the full sign-in (validation, pending request, replay cache, user,
   session, audit, redirect), against bare python3-saml ``OneLogin_Saml2_Response.is_valid``
   (library defaults) on the same kind of response, run in as many processes as gunicorn has
   workers, in-process (no HTTP, no database).

Requests/s is the throughput of the whole server; p50/p99 are client-side latencies.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _shared import (  # first: puts the repository on sys.path
    BASE_URL,
    build_app,
    database_label,
    enabled_okta_connection,
)
from cryptography.fernet import Fernet
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from app.extensions import db
from app.models import PendingRequest
from app.saml.core import binding_hash, saml_settings
from app.saml.urls import request_data_for, sp_values
from app.sessions import create_session
from app.timeutil import utcnow
from config import DEV_SP_KEY_ENCRYPTION_KEY
from tests.saml_idp import TestIdP

#: The library's own validator, captured before create_app installs the cached-schema one.
LIBRARY_VALIDATE_XML = OneLogin_Saml2_XML.validate_xml

ROOT = Path(__file__).resolve().parent.parent
EMAIL = "bench@acme.example"
BINDING = "bench-browser-binding-value-0123456789"


@dataclass
class Result:
    """One route's figures from one load run."""

    label: str
    done: int
    seconds: float
    latencies: list[float]
    unexpected: int
    #: CPU seconds the gunicorn workers spent on this route (utime + stime), or None in-process.
    worker_cpu: float | None = None

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """Worker CPU per request: unlike req/s, barely moved by other load on the machine."""
        if self.worker_cpu is None or not self.done:
            return float("nan")
        return self.worker_cpu / self.done * 1000

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")


# --- the load generator -----------------------------------------------------------------------


Request = tuple[str, str, bytes | None, dict[str, str]]


def load(port: int, label: str, requests: list[Request], expected: int, threads: int, seconds: float) -> Result:
    """Send ``requests`` (each once) from ``threads`` clients (http.client keeps the connection when the server does); stop early at ``seconds``.

    Only 127.0.0.1: this is a bench of our server, never a load on anyone else's.
    """
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    latencies: list[float] = []
    unexpected = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        own: list[float] = []
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    break
                method, path, body, headers = requests[index]
                begin = time.perf_counter()
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                own.append(time.perf_counter() - begin)
                if response.status != expected:
                    with lock:
                        unexpected[0] += 1
        finally:
            connection.close()
            with lock:
                latencies.extend(own)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return Result(label, len(latencies), elapsed, latencies, unexpected[0])


# --- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(workers: int, database_url: str, tmp: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "BASE_URL": BASE_URL,
        "DATABASE_URL": database_url,
        # A fresh key encrypts; the development key the bench's set-up wrote with still decrypts.
        "SP_KEY_ENCRYPTION_KEY": f"{Fernet.generate_key().decode()},{DEV_SP_KEY_ENCRYPTION_KEY}",
        "ANONYMOUS_REQUESTS_PER_MINUTE": "1000000000",
        "MAX_PENDING_REQUESTS_PER_BROWSER": "1000000000",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "INSTANCE_DIR": tmp,
        "PROMETHEUS_MULTIPROC_DIR": str(Path(tmp) / f"metrics-{workers}"),
        "LOG_LEVEL": "warning",
    }
    log = (Path(tmp) / f"gunicorn-{workers}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logfile", os.devnull, "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"gunicorn did not start; see {log.name}")


def worker_cpu_seconds(master: int) -> float:
    """utime + stime of gunicorn's workers (the master's children), from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == master:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def measured(master: int, *load_args: Any) -> Result:
    """Run one ``load`` and charge it the CPU the workers spent meanwhile."""
    before = worker_cpu_seconds(master)
    result = load(*load_args)
    result.worker_cpu = worker_cpu_seconds(master) - before
    return result


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- data ---------------------------------------------------------------------------------------


@dataclass
class Fixture:
    connection_id: int
    token: str
    sp: dict


def seed(app, idp: TestIdP) -> Fixture:
    with app.app_context():
        user, connection = enabled_okta_connection(idp, EMAIL)
        token = create_session(user, app_name="desktop", ip=None, user_agent=None).token
        db.session.commit()
        return Fixture(connection.id, token, sp_values(connection).as_dict())


def acs_requests(
    app, idp: TestIdP, fixture: Fixture, count: int, tag: str
) -> tuple[list[Request], list[str], list[str]]:
    """``count`` single-use ACS posts (Okta's shape: Response and Assertion signed) and the
    pending requests they answer, stored now so that the clock measures only the sign-in."""
    ids = [f"_{tag}{i:06d}" for i in range(count)]
    with app.app_context():
        now = utcnow()
        db.session.add_all(
            PendingRequest(
                id=rid,
                connection_id=fixture.connection_id,
                app="portal",
                next_path="/portal/",
                browser_binding_hash=binding_hash(BINDING),
                purpose="login",
                created_at=now,
                expires_at=now.replace(year=now.year + 1),
            )
            for rid in ids
        )
        db.session.commit()
    responses = [idp.response(fixture.sp, email=EMAIL, request_id=rid, sign_response=True) for rid in ids]
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"__Host-sso_binding={BINDING}"}
    path = f"/saml/{fixture.connection_id}/acs"
    posts = [("POST", path, urlencode({"SAMLResponse": saml}).encode(), headers) for saml in responses]
    return posts, responses, ids


# --- the in-process baseline ---------------------------------------------------------------------

_BARE: dict = {}


def _bare_chunk(bounds: tuple[int, int]) -> tuple[int, float]:
    """Validate responses[start:end] with the library's own defaults (a forked process); return
    how many and the CPU seconds it took."""
    OneLogin_Saml2_XML.validate_xml = LIBRARY_VALIDATE_XML
    start, end = bounds
    begin = time.process_time()
    for saml, rid in zip(_BARE["responses"][start:end], _BARE["ids"][start:end], strict=True):
        assert OneLogin_Saml2_Response(_BARE["settings"], saml).is_valid(
            _BARE["request_data"], request_id=rid, raise_exceptions=True
        )
    return end - start, time.process_time() - begin


def bare_validation(app, fixture: Fixture, responses: list[str], ids: list[str], processes: int) -> Result:
    """Bare ``is_valid`` throughput in ``processes`` forked processes, like gunicorn's workers."""
    from app.models import IdpConnection

    with app.app_context(), app.test_request_context(base_url=BASE_URL):
        connection = db.session.get(IdpConnection, fixture.connection_id)
        _BARE["settings"] = saml_settings(connection)
    _BARE["responses"] = responses
    _BARE["ids"] = ids
    _BARE["request_data"] = request_data_for(fixture.sp["acs_url"])
    step = -(-len(responses) // processes)
    chunks = [(i, min(i + step, len(responses))) for i in range(0, len(responses), step)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(_bare_chunk, [(0, min(5, len(responses)))] * processes)  # warm-up
        begin = time.perf_counter()
        parts = pool.map(_bare_chunk, chunks)
        elapsed = time.perf_counter() - begin
    done = sum(count for count, _cpu in parts)
    cpu = sum(cpu for _count, cpu in parts)
    return Result(f"baseline: bare is_valid, {processes} processes", done, elapsed, [], 0, cpu)


# --- report ---------------------------------------------------------------------------------------


def line(result: Result) -> str:
    rate = f"{result.rate:9.1f}"
    pcts = f"{result.percentile(0.5):8.2f} {result.percentile(0.99):8.2f}" if result.latencies else f"{'-':>8} {'-':>8}"
    bad = f"  ({result.unexpected} unexpected statuses!)" if result.unexpected else ""
    return f"  {result.label:<44} {rate} {pcts} {result.cpu_ms:9.3f}{bad}"


def run(app, idp: TestIdP, fixture: Fixture, workers: int, args: argparse.Namespace, tmp: str) -> list[Result]:
    threads = args.threads or max(4, 2 * workers)
    acs_posts, responses, ids = acs_requests(app, idp, fixture, args.acs + 20, f"w{workers}_")
    process, port = start_gunicorn(workers, args.database_url, tmp)
    try:
        bearer = {"Authorization": f"Bearer {fixture.token}"}
        me = [("GET", "/api/v1/me", None, bearer)] * args.requests
        anonymous = [("GET", "/api/v1/me", None, {})] * args.requests
        healthz = [("GET", "/healthz", None, {})] * args.requests
        # Warm-up: every worker imports lazily, opens its pool, fills its caches.
        for requests, status in ((me, 200), (anonymous, 401), (healthz, 200)):
            load(port, "warm-up", requests[:200], status, threads, args.seconds)
        load(port, "warm-up", acs_posts[:20], 303, threads, args.seconds)
        loadavg_before = os.getloadavg()[0]
        results = [
            measured(process.pid, port, label, requests, status, threads, args.seconds)
            for label, requests, status in (
                ("GET /api/v1/me, bearer token", me, 200),
                ("baseline: GET /api/v1/me, no token (401)", anonymous, 401),
                ("baseline: GET /healthz", healthz, 200),
                ("POST /saml/<id>/acs, full sign-in", acs_posts[20:], 303),
            )
        ]
        loadavg = os.getloadavg()[0]
    finally:
        stop(process)
    results.append(bare_validation(app, fixture, responses[20:], ids[20:], workers))
    me_r, anon_r, health_r, acs_r, bare_r = results
    print(
        f"\ngunicorn, {workers} sync workers, {threads} client threads, 127.0.0.1 (sync workers close each connection: the clients reconnect)"
    )
    print(f"  {'route':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>9}")
    print(line(me_r))
    print(line(anon_r))
    print(line(health_r))
    print(line(acs_r))
    print(line(bare_r) + "  (per validation, in-process)")
    print(
        f"  -> bearer / no token: {me_r.rate / anon_r.rate:.2f}x the requests/s (target >= 0.6x); "
        f"the session check costs {me_r.cpu_ms - anon_r.cpu_ms:+.3f} ms of worker CPU (target <= +0.300)"
    )
    print(f"  -> bearer / healthz:  {me_r.rate / health_r.rate:.2f}x the requests/s")
    print(
        f"  -> full ACS / bare is_valid: {acs_r.rate / bare_r.rate:.2f}x the throughput (target >= 1.0x); "
        f"{acs_r.cpu_ms / bare_r.cpu_ms:.2f}x the CPU per sign-in (target <= 1.0x)"
    )
    print(f"  load average (1 min) before / after the measured runs: {loadavg_before:.2f} / {loadavg:.2f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="2,4", help="gunicorn worker counts to run, comma-separated")
    parser.add_argument("--requests", type=int, default=3000, help="requests per GET route")
    parser.add_argument("--acs", type=int, default=600, help="sign-ins (single-use signed responses)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time cap per route")
    parser.add_argument("--threads", type=int, default=0, help="client threads (default 2 x workers, at least 4)")
    args = parser.parse_args()
    args.database_url = os.environ.get("BENCH_DATABASE_URL", "")
    if not args.database_url.startswith(("postgres://", "postgresql")):
        raise SystemExit(
            "bench/http_load.py needs BENCH_DATABASE_URL=postgresql://... (a scratch database: it is wiped)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        print(f"database: {database_label(app)}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
        idp = TestIdP.create()
        fixture = seed(app, idp)
        with app.app_context():
            db.engine.dispose()  # no connection of ours is inherited by the forked baseline
        for workers in (int(w) for w in args.workers.split(",")):
            run(app, idp, fixture, workers, args, tmp)


if __name__ == "__main__":
    main()
