"""Read by mypy in ``tests/test_actor_typing.py``, never run: the person the session check gives
(``SessionUser``, plain values) goes wherever a service takes the person acting (``Actor``), and
something that is not a person does not."""

from __future__ import annotations

import io

from app.models import Account, IdpConnection, User
from app.services.confirmations import sign_out_others
from app.services.import_jobs import job_for, recent_jobs, store_upload
from app.services.onboarding import person_summary
from app.services.setup_wizard import (
    ReadOnlyAccessError,
    is_staff,
    may_change,
    may_read,
    readable_account,
    readable_connection,
    record_refused_change,
    require_change,
    walkthrough_values,
)
from app.sessions import SessionUser, revoke_sessions_for_user


def a_session_user_acts(user: SessionUser, connection: IdpConnection, account: Account) -> None:
    is_staff(user)
    may_change(user, account.id)
    may_read(user, account.id)
    require_change(user, account.id)
    record_refused_change(user, ReadOnlyAccessError(account.id), method="POST", path="/", endpoint="x")
    readable_account(user, account.slug)
    readable_connection(user, connection.id)
    walkthrough_values(connection, user)
    sign_out_others(user, None)
    person_summary(user)
    revoke_sessions_for_user(user, "logout")
    recent_jobs(user)
    job_for(user, 1)
    store_upload(account, user, io.BytesIO(b""), filename="users.csv", deactivate_missing=False)


def a_user_row_acts_too(user: User) -> None:
    is_staff(user)
    revoke_sessions_for_user(user, "logout")


def an_account_is_not_a_person(account: Account) -> None:
    is_staff(account)  # type: ignore[arg-type]
    revoke_sessions_for_user(account, "logout")  # type: ignore[arg-type]
