"""The audit log as the support console lists it: filters and keyset pages."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from app.models import AuditEvent
from app.services.listing import (
    PAGE_SIZE,
    Cursor,
    FilterError,
    Page,
    account_id_for_slug,
    choice,
    day_range,
    keyset_page,
    start_of,
)
from app.services.users import normalise_email

OUTCOMES = ("success", "failure")


# --- audit log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """Filters of the audit log."""

    account: str = ""
    #: An exact action (``user.deactivate``) or a prefix ending in a dot (``signin.``).
    action: str = ""
    outcome: str = ""
    error_code: str = ""
    #: The user acted on (or who tried to sign in).
    email: str = ""
    #: Who acted: an email, or ``cli`` / ``anonymous``.
    actor: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> AuditFilters:
        date_from, date_to = day_range(args, "date_from", "date_to", "date")
        action = (args.get("action") or "").strip().lower()[:64]
        if action and not re.fullmatch(r"[a-z0-9_.]+", action):
            raise FilterError(
                "FILTER_ACTION_INVALID",
                "An action is made of letters, digits, dots and underscores (e.g. user.deactivate or signin.).",
            )
        error_code = (args.get("error_code") or "").strip().upper()[:64]
        if error_code and not re.fullmatch(r"[A-Z0-9_]+", error_code):
            raise FilterError(
                "FILTER_CODE_INVALID",
                "An error code is made of capital letters, digits and underscores (e.g. USER_NOT_FOUND).",
            )
        return cls(
            account=(args.get("account") or "").strip().lower()[:64],
            action=action,
            outcome=choice(args, "outcome", OUTCOMES, "FILTER_OUTCOME_INVALID"),
            error_code=error_code,
            email=normalise_email(args.get("email") or "")[:320],
            actor=normalise_email(args.get("actor") or "")[:320],
            date_from=date_from,
            date_to=date_to,
        )

    def as_args(self) -> dict[str, str]:
        values = {
            "account": self.account,
            "action": self.action,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "email": self.email,
            "actor": self.actor,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
        }
        return {key: value for key, value in values.items() if value}


@dataclass
class AuditList:
    page: Page[AuditEvent]
    note: str = ""


def list_audit_events(
    filters: AuditFilters, *, after: Cursor | None = None, before: Cursor | None = None, limit: int = PAGE_SIZE
) -> AuditList:
    """Audit events matching ``filters``, newest first, one page."""
    query = select(AuditEvent)
    if filters.account:
        account_id = account_id_for_slug(filters.account)
        if account_id is None:
            return AuditList(Page([]), note=f"There is no account “{filters.account}”.")
        query = query.where(AuditEvent.account_id == account_id)
    if filters.action:
        if filters.action.endswith("."):
            query = query.where(AuditEvent.action.startswith(filters.action, autoescape=True))
        else:
            query = query.where(AuditEvent.action == filters.action)
    if filters.outcome:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.error_code:
        query = query.where(AuditEvent.error_code == filters.error_code)
    # Subject and actor are separate filters: each is one indexed equality (an OR of the two
    # would make SQLite read the whole log in date order).
    if filters.email:
        query = query.where(AuditEvent.subject_email == filters.email)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.date_from:
        query = query.where(AuditEvent.created_at >= start_of(filters.date_from))
    if filters.date_to:
        query = query.where(AuditEvent.created_at < start_of(filters.date_to + dt.timedelta(days=1)))
    page = keyset_page(query, AuditEvent.created_at, AuditEvent.id, after=after, before=before, limit=limit)
    return AuditList(page)
