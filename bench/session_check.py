"""Session check benchmark: does the cost of looking a session up stay flat as sessions pile up?

    .venv/bin/python bench/session_check.py [--small 10000] [--large 1000000] [--lookups 2000]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/scratch .venv/bin/python bench/session_check.py

For each table size it loads that many sessions (of 5,000 users in 50 accounts; a quarter revoked,
most expired), then times the two lookups every request makes: an app's bearer token (one Core
statement, plain values) and the portal's cookie (the session with its user and account). The
figure at 1,000,000 sessions is printed beside the same lookup at 10,000 (the baseline): both are
one primary-key-like probe of the unique token-hash index, so the ratio should stay near 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile

from _shared import (  # first: sys.path
    analyze,
    build_app,
    bulk_load,
    database_label,
    load_accounts_and_users,
    median_ms,
    timed,
)

from app.extensions import db
from app.models import Account, User, UserSession
from app.sessions import create_session, find_live_app_session, find_live_session, hash_token
from app.timeutil import utcnow

ACCOUNTS = 50
USERS = 5_000


def populate(sessions: int) -> tuple[str, str]:
    """Load ``sessions`` rows (plus accounts and users); return a live bearer and cookie token."""
    db.session.execute(UserSession.__table__.delete())
    db.session.execute(User.__table__.delete())
    db.session.execute(Account.__table__.delete())
    db.session.commit()
    now = utcnow()
    load_accounts_and_users(ACCOUNTS, USERS)
    apps = ("portal", "desktop", "mobile")
    bulk_load(
        UserSession.__table__,
        ("id", "token_hash", "user_id", "account_id", "app", "created_at", "last_used_at", "expires_at", "revoked_at"),
        (
            (
                n,
                hash_token(f"bench-token-{n}"),
                n % USERS + 1,
                (n % USERS + 1) % ACCOUNTS + 1,
                apps[n % 3],
                now - dt.timedelta(days=60),
                now - dt.timedelta(days=40),
                now - dt.timedelta(days=19) if n % 10 else now + dt.timedelta(days=2),
                now - dt.timedelta(days=30) if n % 4 == 0 else None,
            )
            for n in range(1, sessions + 1)
        ),
    )
    analyze()
    user = db.session.get(User, 1)
    bearer = create_session(user, app_name="desktop", ip=None, user_agent=None).token
    cookie = create_session(user, app_name="portal", ip=None, user_agent=None).token
    db.session.commit()
    return bearer, cookie


def measure(app, sessions: int, lookups: int) -> tuple[float, float]:
    with app.app_context():
        bearer, cookie = populate(sessions)

    def lean() -> None:
        with app.test_request_context("/api/v1/me"):
            assert find_live_app_session(bearer, ("desktop", "mobile")) is not None
            db.session.remove()

    def orm() -> None:
        with app.test_request_context("/portal/"):
            assert find_live_session(cookie, app_name="portal") is not None
            db.session.remove()

    return median_ms(timed(lean, lookups)), median_ms(timed(orm, lookups))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        with app.app_context():
            print(f"database: {database_label(app)}")
        small = measure(app, args.small, args.lookups)
        large = measure(app, args.large, args.lookups)
    print(f"Session lookup, median of {args.lookups} (each in a request context, connection from the pool)")
    for label, at_small, at_large in (
        ("bearer token (Core)", small[0], large[0]),
        ("portal cookie (ORM)", small[1], large[1]),
    ):
        print(
            f"  {label:22} {args.large:>9,} sessions {at_large:6.3f} ms   "
            f"baseline {args.small:,} sessions {at_small:6.3f} ms   ratio {at_large / at_small:.2f}"
        )


if __name__ == "__main__":
    main()
