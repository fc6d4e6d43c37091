"""Revocation benchmark: ending every session of a user who has 1,000 (web and app), as a
deactivation, a support "revoke all" and an admin's delete do, in a table of other sessions.

    .venv/bin/python bench/revoke.py [--sessions 1000] [--background 200000] [--repeat 20]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/scratch .venv/bin/python bench/revoke.py

Figures (medians, each committed): ``deactivate_user`` (one UPDATE of the user's live sessions,
the status change and the audit event), the support console's POST that revokes all of a user's
sessions (the whole request), and two baselines from the same run: revoking one single session,
and revoking the same 1,000 sessions one by one. Then the proof: the next request with any of the
revoked tokens is refused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import tempfile
import time

from _shared import BASE_URL, analyze, build_app, bulk_load, database_label, median_ms
from sqlalchemy import select, update

from app.extensions import db
from app.models import Account, User, UserSession
from app.models.user import ACTIVE
from app.services.users import deactivate_user
from app.sessions import create_session, hash_token, revoke_session, revoke_sessions_for_user
from app.timeutil import utcnow

USERS = 10_000


def populate(background: int, own: int) -> tuple[int, list[str]]:
    """Other users' sessions, then one user (id 1) with ``own`` live sessions; returns their tokens."""
    now = utcnow()
    rng = random.Random(7)
    bulk_load(
        Account.__table__, ("id", "slug", "name", "sso_required", "created_at"), [(1, "acme", "Acme", False, now)]
    )
    bulk_load(
        User.__table__,
        ("id", "account_id", "email", "name", "roles", "status", "created_at", "updated_at"),
        ((n, 1, f"user{n}@acme.example", "", "admin,agent", ACTIVE, now, now) for n in range(1, USERS + 1)),
    )
    tokens = [f"bench-token-{n:06d}" for n in range(own)]
    apps = ("portal", "desktop", "mobile")

    def rows():
        for n in range(1, background + 1):
            created = now - dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 20))
            yield (
                n,
                f"{n:064x}",
                rng.randrange(2, USERS + 1),
                1,
                apps[n % 3],
                created,
                created,
                created + dt.timedelta(days=21),
            )
        for n, token in enumerate(tokens, start=background + 1):
            created = now - dt.timedelta(minutes=n % 1000)
            yield (n, hash_token(token), 1, 1, apps[n % 3], created, created, created + dt.timedelta(days=21))

    bulk_load(
        UserSession.__table__,
        ("id", "token_hash", "user_id", "account_id", "app", "created_at", "last_used_at", "expires_at"),
        rows(),
    )
    analyze()
    return 1, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=int(os.environ.get("BENCH_USER_SESSIONS", "1000")))
    parser.add_argument("--background", type=int, default=int(os.environ.get("BENCH_BACKGROUND_SESSIONS", "200000")))
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        with app.app_context():
            print(f"database: {database_label(app)}")
            user_id, tokens = populate(args.background, args.sessions)
            staff = db.session.get(User, 2)
            staff.roles = "support"
            staff_token = create_session(staff, app_name="portal", ip=None, user_agent=None).token
            db.session.commit()
            mine = (UserSession.user_id == user_id) & (UserSession.id > args.background)

            def restore() -> None:
                db.session.execute(update(UserSession).where(mine).values(revoked_at=None, revoked_reason=None))
                db.session.execute(update(User).where(User.id == user_id).values(status=ACTIVE))
                db.session.commit()
                db.session.expire_all()

            def deactivate() -> None:
                assert deactivate_user(db.session.get(User, user_id), actor="bench") == args.sessions
                db.session.commit()

            def revoke_all() -> None:
                assert revoke_sessions_for_user(db.session.get(User, user_id), "bench") == args.sessions
                db.session.commit()

            def revoke_one() -> None:
                session = db.session.scalar(select(UserSession).where(mine).limit(1))
                assert revoke_session(session, "bench")
                db.session.commit()

            def one_by_one() -> None:
                for session in db.session.scalars(select(UserSession).where(mine)):
                    revoke_session(session, "bench")
                db.session.commit()

            staff_browser = app.test_client()
            staff_browser.set_cookie("__Host-portal_session", staff_token, domain="sso.bench")
            page = staff_browser.get("/support/sessions", base_url=BASE_URL).get_data(as_text=True)
            csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)

            def support_post() -> None:
                response = staff_browser.post(
                    f"/support/users/{user_id}/revoke-sessions",
                    data={"csrf_token": csrf},
                    base_url=BASE_URL,
                    headers={
                        "Referer": f"{BASE_URL}/support/sessions"
                    },  # as the browser sends it (CSRF check on https)
                )
                assert response.status_code == 302, response.status_code

            def timed_with_reset(action, repeat: int) -> list[float]:
                """Time ``action`` only (not the reset before it); the first run warms up."""
                samples = []
                for _ in range(repeat + 1):
                    restore()
                    begin = time.perf_counter()
                    action()
                    samples.append(time.perf_counter() - begin)
                return samples[1:]

            results = [
                ("deactivate_user (UPDATE + status + audit)", timed_with_reset(deactivate, args.repeat)),
                ("support POST revoke all (whole request)", timed_with_reset(support_post, args.repeat)),
                ("revoke_sessions_for_user alone", timed_with_reset(revoke_all, args.repeat)),
                ("baseline: revoke one single session", timed_with_reset(revoke_one, args.repeat)),
                ("baseline: the same sessions one by one", timed_with_reset(one_by_one, max(3, args.repeat // 4))),
            ]
            client = app.test_client()

            def accepted(token: str) -> bool:
                """Whether the token's app (the portal by cookie, an app by bearer token) still gets in."""
                app_name = db.session.scalar(select(UserSession.app).where(UserSession.token_hash == hash_token(token)))
                if app_name == "portal":
                    client.set_cookie("__Host-portal_session", token, domain="sso.bench")
                    return client.get("/portal/", base_url=BASE_URL).status_code == 200
                bearer = {"Authorization": f"Bearer {token}"}
                return client.get("/api/v1/me", headers=bearer, base_url=BASE_URL).status_code == 200

            sample = [tokens[0], tokens[1], tokens[2], tokens[-1]]
            restore()
            before = sum(accepted(token) for token in sample)
            deactivate()
            after = sum(accepted(token) for token in sample)

    print(
        f"\nRevoking every session of a user with {args.sessions:,} sessions, among {args.background:,} others (median, ms)"
    )
    for label, samples in results:
        print(f"  {label:45} {median_ms(samples):8.2f}")
    print(
        f"  -> tokens accepted before / after: {before}/{len(sample)} / {after}/{len(sample)} (portal cookie and app bearer tokens)"
    )


if __name__ == "__main__":
    main()
