"""SCIM benchmark: provisioning users one POST each against the CSV import of the same users, and
a filtered ``GET /Users?filter=userName eq`` at 100,000 users against the unfiltered first page.

    .venv/bin/python bench/scim.py [--users 10000] [--total 100000] [--repeat 50]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/scratch .venv/bin/python bench/scim.py

1. ``--users`` users are created by ``POST /scim/v2/Users`` through the Flask test client (the
   whole request: token check, scim2-models validation, email check, audit events, commit), one
   request per user, as Okta and Entra send them. Baseline: ``import_users`` (the CSV import) of
   the same users into an empty table, in the same run.
2. The account is filled to ``--total`` users (bulk load), then ``GET /Users?filter=userName eq
   "..."`` (a user in the middle) is timed against ``GET /Users`` (the first page of 100, which
   also counts every user of the account). The filtered lookup must stay an index lookup: the
   plan of its count query is printed.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time

from _shared import FreshClient, analyze, build_app, bulk_load, database_label, is_postgres, median_ms, timed
from sqlalchemy import delete, func, select, text

from app.extensions import db
from app.models import Account, AuditEvent, ScimGroupMember, User
from app.models.user import ACTIVE
from app.services.imports import import_users
from app.services.scim_tokens import create_token
from app.timeutil import utcnow

DOMAIN = "acme-corp.example"


def email(n: int) -> str:
    return f"user{n:06d}@{DOMAIN}"


def user_body(n: int) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email(n),
        "name": {"givenName": "Person", "familyName": f"Number {n}"},
        "emails": [{"primary": True, "value": email(n), "type": "work"}],
        "externalId": f"00u{n:08d}",
        "active": True,
        "roles": [{"value": "agent"}],
    }


def empty_users(account_id: int) -> None:
    db.session.execute(delete(ScimGroupMember))
    db.session.execute(delete(User).where(User.account_id == account_id))
    db.session.execute(delete(AuditEvent))
    db.session.commit()


def provision_by_post(client: FreshClient, headers: dict[str, str], users: int) -> float:
    begin = time.perf_counter()
    for n in range(users):
        response = client.post("/scim/v2/Users", data=json.dumps(user_body(n)), headers=headers)
        if response.status_code != 201:
            raise SystemExit(f"POST failed for user {n}: {response.status_code} {response.get_data(as_text=True)}")
    return time.perf_counter() - begin


def import_csv(account: Account, users: int) -> float:
    lines = ["email,name,roles\n"] + [f"{email(n)},Person Number {n},agent\n" for n in range(users)]
    content = "".join(lines).encode()
    begin = time.perf_counter()
    report = import_users(account, io.BytesIO(content), apply=True, actor="bench")
    db.session.commit()
    elapsed = time.perf_counter() - begin
    if not report.applied or report.count("create") != users:
        raise SystemExit(f"CSV import did not create {users} users: {report.as_dict()}")
    return elapsed


def fill_to(account_id: int, start: int, total: int) -> None:
    now = utcnow()
    columns = ("account_id", "email", "name", "roles", "status", "created_at", "updated_at", "source", "external_id")
    rows = (
        (account_id, email(n), f"Person Number {n}", "agent", ACTIVE, now, now, "scim", f"00u{n:08d}")
        for n in range(start, total)
    )
    bulk_load(User.__table__, columns, rows)
    analyze()


def count_plan(account_id: int, needle: str) -> str:
    """The plan of the filtered list's count query (the page query uses the same predicate)."""
    sql = "SELECT count(*) FROM users WHERE users.account_id = :account AND users.email = :email"
    prefix = "EXPLAIN " if is_postgres() else "EXPLAIN QUERY PLAN "
    rows = db.session.execute(text(prefix + sql), {"account": account_id, "email": needle}).all()
    return " | ".join(str(row[-1]) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000, help="users provisioned by POST and by CSV")
    parser.add_argument("--total", type=int, default=100_000, help="users in the account for the GET figures")
    parser.add_argument("--repeat", type=int, default=50, help="samples per GET figure (median shown)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        with app.app_context():
            account = Account(slug="acme", name="Acme Corp")
            db.session.add(account)
            db.session.commit()
            token = create_token(account, name="bench").token
            db.session.commit()
            client = app.test_client()
            client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "sso.bench"})
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
            print(f"database: {database_label(app)}")

            post_seconds = provision_by_post(client, headers, args.users)
            assert db.session.scalar(select(func.count()).select_from(User)) == args.users
            empty_users(account.id)
            csv_seconds = import_csv(account, args.users)
            print(
                f"provision {args.users:,} users: SCIM POST one each {post_seconds:.2f} s "
                f"({post_seconds / args.users * 1000:.2f} ms/user, {args.users / post_seconds:,.0f} users/s)"
                f"  | baseline CSV import of the same users {csv_seconds:.2f} s"
                f"  | ratio {post_seconds / csv_seconds:.1f}x"
            )

            fill_to(account.id, args.users, args.total)
            total = db.session.scalar(select(func.count()).select_from(User).where(User.account_id == account.id))
            needle = email(args.total // 2)
            filtered = timed(
                lambda: _get(client, headers, {"filter": f'userName eq "{needle}"'}, expect_total=1), args.repeat
            )
            first_page = timed(lambda: _get(client, headers, {}, expect_total=total), args.repeat)
            print(
                f"GET /Users?filter=userName eq at {total:,} users: {median_ms(filtered):.2f} ms median"
                f"  | baseline unfiltered first page (100 users + count): {median_ms(first_page):.2f} ms median"
            )
            print(f"plan of the filtered count: {count_plan(account.id, needle)}")


def _get(client: FreshClient, headers: dict[str, str], query: dict[str, str], *, expect_total: int) -> None:
    response = client.get("/scim/v2/Users", query_string=query, headers=headers)
    body = response.get_json()
    if response.status_code != 200 or body["totalResults"] != expect_total:
        raise SystemExit(f"unexpected answer: {response.status_code} {str(body)[:300]}")


if __name__ == "__main__":
    main()
