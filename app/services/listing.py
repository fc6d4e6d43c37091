"""Shared pieces of every list page: filter errors, keyset cursors and pages, day filters.

Lists are newest first with keyset pagination on ``(created_at, id)`` (or, for a list that is
better read in another order, another time column and the id): a page is found by seeking the
composite index to the cursor, so page 10,000 costs what page 1 costs (OFFSET would read and throw
away every row before it). Filters come from query strings typed by people, so every value
is checked and a bad one raises ``FilterError`` with a stable code, never a database error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, literal, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import CodedError
from app.extensions import db
from app.models import Account

#: Rows per page.
PAGE_SIZE = 50

T = TypeVar("T")


class FilterError(CodedError):
    """A filter or cursor that cannot be used; the message says what to type instead."""


# --- cursors and pages -----------------------------------------------------------------------

_CURSOR = re.compile(r"(\d{20})\.(\d{1,18})")


@dataclass(frozen=True)
class Cursor:
    """A position in a latest-first list: the ``(time, id)`` of a row, where the time is the column
    the list is ordered by (``created_at`` unless the list says otherwise)."""

    at: dt.datetime
    id: int

    def encode(self) -> str:
        return f"{self.at:%Y%m%d%H%M%S%f}.{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """Read a cursor from a link; None when absent, FilterError when it is not one of ours."""
        if not text:
            return None
        match = _CURSOR.fullmatch(text.strip())
        try:
            if match is None:
                raise ValueError(text)
            return cls(dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S%f"), int(match.group(2)))
        except ValueError:
            raise FilterError("CURSOR_INVALID", "This page link is damaged. Start again from the first page.") from None


@dataclass
class Page(Generic[T]):
    """One page of a list, with the cursors of its neighbours (None at either end)."""

    rows: list[T]
    older: str | None = None
    newer: str | None = None


class Keyed(Protocol):
    """A row of a latest-first list: it has an id (and the time column the list is ordered by)."""

    id: int


K = TypeVar("K", bound=Keyed)


def keyset_page(
    query: Select[tuple[K]],
    created: InstrumentedAttribute,
    ident: InstrumentedAttribute,
    *,
    after: Cursor | None,
    before: Cursor | None,
    limit: int = PAGE_SIZE,
    where: Sequence[ColumnElement[bool]] = (),
) -> Page[K]:
    """Run ``query`` (one entity) for the page older than ``after`` (or newer than ``before``),
    latest ``created`` first (any time column: the cursor holds its value and the id). One row
    more than the page is read, to know whether another page follows.

    Filters given as ``where`` are put after the cursor's condition: when a filter also bounds
    ``created`` (``expires_at <= now``), SQLite seeks the index with the first bound it reads,
    and only the cursor's makes a deep page cost what the first one costs.
    """
    key = tuple_(created, ident)

    def _cursor_of(row: K) -> str:
        return Cursor(getattr(row, created.key), row.id).encode()

    if before is not None:
        newer = list(
            db.session.scalars(
                query.where(key > tuple_(literal(before.at), literal(before.id)), *where)
                .order_by(created.asc(), ident.asc())
                .limit(limit + 1)
            )
        )
        rows = list(reversed(newer[:limit]))
        return Page(
            rows,
            older=_cursor_of(rows[-1]) if rows else None,
            newer=_cursor_of(rows[0]) if len(newer) > limit else None,
        )
    if after is not None:
        query = query.where(key < tuple_(literal(after.at), literal(after.id)))
    query = query.where(*where)
    older = list(db.session.scalars(query.order_by(created.desc(), ident.desc()).limit(limit + 1)))
    rows = older[:limit]
    return Page(
        rows,
        older=_cursor_of(rows[-1]) if len(older) > limit else None,
        newer=_cursor_of(rows[0]) if after is not None and rows else None,
    )


# --- filters ---------------------------------------------------------------------------------


def parse_day(text: str | None, label: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` day from a form field (what ``<input type=date>`` sends), or None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise FilterError(
            "FILTER_DATE_INVALID", f"“{text[:40]}” is not a date ({label}): use the form YYYY-MM-DD, e.g. 2025-03-31."
        ) from None
    if not 2000 <= day.year <= 2999:
        raise FilterError("FILTER_DATE_INVALID", f"{text} is out of range ({label}): use a date between 2000 and 2999.")
    return day


def day_range(args: Mapping[str, str], start: str, end: str, label: str) -> tuple[dt.date | None, dt.date | None]:
    first = parse_day(args.get(start), f"{label} from")
    last = parse_day(args.get(end), f"{label} to")
    if first and last and first > last:
        raise FilterError("FILTER_DATE_RANGE", f"The {label} range ends ({last}) before it starts ({first}).")
    return first, last


def start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min)


def choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...], code: str) -> str:
    value = (args.get(name) or "").strip().lower()
    if value and value not in allowed:
        raise FilterError(code, f"Unknown {name} “{value[:40]}”: choose one of {', '.join(allowed)}.")
    return value


def account_id_for_slug(slug: str) -> int | None:
    """The id of the account with ``slug``, or None."""
    return db.session.scalar(select(Account.id).where(Account.slug == slug))
