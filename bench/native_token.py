"""Native-app token endpoint benchmark: ``POST /api/v1/token``, the one-time code for a bearer token.

    .venv/bin/python bench/native_token.py [--few 1000] [--many 100000] [--sessions-few 10000]
        [--sessions-many 1000000] [--requests 50] [--rounds 15]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/scratch .venv/bin/python bench/native_token.py

The desktop and mobile apps call it once per sign-in (docs/app-developers.md): the code is
claimed atomically, PKCE is checked, the user's role is checked again, a session is inserted and
audited. Measured through the whole app (the test client, every hook), interleaved in rounds,
worker CPU per request (``time.process_time``; the database server's own work is not ours):

- the exchange of a live code (200, a new session),
- baseline: the same endpoint refusing an unknown code (400 CODE_INVALID: the code lookup, the
  refusal's audit event, the commit),
- for scale: one bare database round trip (``SELECT 1`` on a pooled connection, no app).

Each at few and at many outstanding codes (used and expired ones, as between two purges) and
sessions: every statement probes a unique index (the code's hash, the user's id), so the cost must
stay flat (ratio near 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from _shared import (  # first: sys.path
    BASE_URL,
    analyze,
    build_app,
    bulk_load,
    database_label,
    load_accounts_and_users,
)
from flask import Flask

from app.extensions import db
from app.models import Account, AppAuthorizationCode, AuditEvent, User, UserSession
from app.services.native_apps import s256
from app.sessions import hash_token
from app.timeutil import utcnow

ACCOUNTS = 50
USERS = 5_000
REDIRECT_URI = "http://127.0.0.1:53117/callback"
#: The exchange may cost this many times the refusal (which reads the code, audits and commits).
MAX_RATIO = 3.0


def populate(codes: int, sessions: int) -> None:
    """``codes`` spent or expired codes and ``sessions`` sessions of 5,000 users in 50 accounts."""
    for table in (AuditEvent, AppAuthorizationCode, UserSession, User, Account):
        db.session.execute(table.__table__.delete())
    db.session.commit()
    load_accounts_and_users(ACCOUNTS, USERS)
    now = utcnow()
    challenge = s256("v" * 43)
    bulk_load(
        AppAuthorizationCode.__table__,
        ("id", "code_hash", "user_id", "app", "redirect_uri", "code_challenge", "created_at", "expires_at", "used_at"),
        (
            (
                n,
                hash_token(f"old-code-{n}"),
                n % USERS + 1,
                "desktop" if n % 2 else "mobile",
                REDIRECT_URI,
                challenge,
                now - dt.timedelta(minutes=5),
                now - dt.timedelta(minutes=4),
                now - dt.timedelta(minutes=5) if n % 3 else None,
            )
            for n in range(1, codes + 1)
        ),
    )
    bulk_load(
        UserSession.__table__,
        ("id", "token_hash", "user_id", "account_id", "app", "created_at", "last_used_at", "expires_at"),
        (
            (
                n,
                hash_token(f"bench-token-{n}"),
                n % USERS + 1,
                (n % USERS + 1) % ACCOUNTS + 1,
                "desktop",
                now - dt.timedelta(days=30),
                now - dt.timedelta(days=25),
                now - dt.timedelta(days=4),
            )
            for n in range(1, sessions + 1)
        ),
    )
    analyze()


def live_codes(count: int) -> list[tuple[str, str]]:
    """``count`` fresh codes (as the ACS issues them), each with its PKCE verifier."""
    now = utcnow()
    issued = [(secrets.token_urlsafe(32), secrets.token_urlsafe(48)) for _ in range(count)]
    db.session.add_all(
        AppAuthorizationCode(
            code_hash=hash_token(code),
            user_id=n % USERS + 1,
            app="desktop",
            redirect_uri=REDIRECT_URI,
            code_challenge=s256(verifier),
            created_at=now,
            expires_at=now + dt.timedelta(hours=1),
        )
        for n, (code, verifier) in enumerate(issued)
    )
    db.session.commit()
    return issued


def _form(code: str, verifier: str) -> bytes:
    return urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": "desktop",
        }
    ).encode()


def measure(app: Flask, codes: int, sessions: int, requests: int, rounds: int) -> dict[str, float]:
    """Worker CPU per request (ms), median of ``rounds`` interleaved rounds of ``requests`` each."""
    with app.app_context():
        populate(codes, sessions)
        issued = iter(live_codes(requests * (rounds + 1)))
        engine = db.engine
    client = app.test_client()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    def exchange() -> None:
        response = client.post("/api/v1/token", base_url=BASE_URL, data=_form(*next(issued)), headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)

    def refusal() -> None:
        bad = _form(secrets.token_urlsafe(32), secrets.token_urlsafe(48))
        response = client.post("/api/v1/token", base_url=BASE_URL, data=bad, headers=headers)
        assert response.status_code == 400 and response.json["code"] == "CODE_INVALID", response.json

    def round_trip() -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1").scalar()

    variants: dict[str, Callable[[], Any]] = {"exchange": exchange, "refusal": refusal, "round trip": round_trip}
    for send in variants.values():  # warm-up
        for _ in range(requests):
            send()
    per_round: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, send in variants.items():
            begin = time.process_time()
            for _ in range(requests):
                send()
            per_round[name].append((time.process_time() - begin) / requests * 1000)
    return {name: statistics.median(values) for name, values in per_round.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--few", type=int, default=1_000, help="outstanding (spent or expired) codes, few")
    parser.add_argument("--many", type=int, default=100_000, help="outstanding codes, many")
    parser.add_argument("--sessions-few", type=int, default=10_000)
    parser.add_argument("--sessions-many", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50, help="requests per variant per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        logging.getLogger("app").setLevel(logging.WARNING)  # an audit line per request is not the bench
        with app.app_context():
            print(f"database: {database_label(app)}; load average {os.getloadavg()[0]:.2f}")
        few = measure(app, args.few, args.sessions_few, args.requests, args.rounds)
        many = measure(app, args.many, args.sessions_many, args.requests, args.rounds)
    print(
        f"POST /api/v1/token through the app: worker CPU per request (ms), median of {args.rounds} rounds of "
        f"{args.requests}; load average now {os.getloadavg()[0]:.2f}"
    )
    print(f"  {'outstanding codes / sessions':>30} {'exchange':>9} {'refusal':>9} {'round trip':>10}")
    for label, figures in (
        (f"{args.few:,} / {args.sessions_few:,}", few),
        (f"{args.many:,} / {args.sessions_many:,}", many),
    ):
        print(f"  {label:>30} {figures['exchange']:9.3f} {figures['refusal']:9.3f} {figures['round trip']:10.3f}")
    ratio = many["exchange"] / many["refusal"]
    verdict = "meets" if ratio <= MAX_RATIO else "MISSES"
    print(
        f"  -> exchange / refusal of an unknown code: {ratio:.2f}x ({verdict} the bound of {MAX_RATIO:.1f}x); "
        f"{many['exchange'] / many['round trip']:.1f}x a bare round trip"
    )
    print(
        f"  -> flat? at {args.many:,} codes and {args.sessions_many:,} sessions the exchange costs "
        f"{many['exchange'] / few['exchange']:.2f}x, the refusal {many['refusal'] / few['refusal']:.2f}x "
        f"what they cost at {args.few:,} / {args.sessions_few:,} (target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
