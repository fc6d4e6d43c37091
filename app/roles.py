"""Roles and the apps each one opens: the one table the whole product consults."""

from __future__ import annotations

from typing import Protocol

from app.errors import CodedError

#: The product's apps.
APPS: tuple[str, ...] = ("portal", "desktop", "mobile")

#: Customer roles, which admins assign and CSV imports carry.
CUSTOMER_ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"portal", "desktop", "mobile"}),
    "agent": frozenset({"desktop", "mobile"}),
}

#: Staff roles: given only from the command line, never by an account's admin or an import.
STAFF_ROLES: dict[str, frozenset[str]] = {
    "support": frozenset({"portal"}),
}

ROLE_APPS: dict[str, frozenset[str]] = {**CUSTOMER_ROLES, **STAFF_ROLES}


def apps_for_roles(roles: list[str] | tuple[str, ...] | set[str]) -> frozenset[str]:
    """Return the apps that any of ``roles`` opens (unknown roles open nothing)."""
    apps: set[str] = set()
    for role in roles:
        apps |= ROLE_APPS.get(role, frozenset())
    return frozenset(apps)


def parse_roles(text: str, *, allow_staff: bool = False) -> list[str]:
    """Split ``admin,agent`` (or ``admin;agent``) into a sorted list; refuse an unknown role."""
    allowed = ROLE_APPS if allow_staff else CUSTOMER_ROLES
    roles = sorted({part.strip().lower() for part in text.replace(";", ",").split(",") if part.strip()})
    unknown = [role for role in roles if role not in allowed]
    if unknown:
        raise CodedError("ROLE_UNKNOWN", f"unknown role {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    return roles


class Actor(Protocol):
    """Whoever acts: the signed-in person as the session check gives them (``SessionUser``,
    plain values) or a ``User`` row. Services that need only who someone is and what their roles
    allow take an ``Actor``, so that a view passes ``current_user`` without loading the row, and
    mypy checks that such a service asks for nothing more."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...

    @property
    def account_id(self) -> int: ...

    @property
    def role_list(self) -> list[str]: ...
