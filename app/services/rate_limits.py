"""Rate limits for every anonymous door: one table of doors and limits, counters in fixed windows
shared by every worker.

A request to a door first *reserves* its place: each of the door's counters is incremented with
one atomic upsert that returns the new count (``INSERT .. ON CONFLICT DO UPDATE .. RETURNING``),
and only then is the count compared with the limit. There is no check-then-act: 40 parallel
guesses for one email are numbered 1 to 40 by the database, and only the first ``limit`` go on to
the password check. Doors that count refusals only (the password form, the ACS) give the place
back when the request was not refused (``release``).

Lock-outs are per (email, client address), so that one address cannot lock anyone else out: past
the limit that pair is locked for one window, and twice as long after each further lock-out in
24 hours (at most 24 hours). Looser ceilings per address (all emails) and per email (all
addresses) stop one address from trying many emails, and a botnet from trying one email forever.

Counters live in the ``rate_limit_counters`` table (one row per key and window, read by primary
key, however much history there is; ``flask sessions purge`` deletes past windows), or in Redis
when ``RATE_LIMIT_STORAGE_URL`` names one (keys expire by themselves).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from flask import Flask, current_app
from sqlalchemy import Insert, Table, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import PendingRequest, RateLimitCounter
from app.saml import driver
from app.timeutil import utcnow

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(2000, 1, 1)
#: Lock-outs of one (email, address) are remembered this long, for the backoff.
LOCKOUT_MEMORY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Limit:
    """At most ``config[max_setting]`` events per ``config[window_setting]`` seconds for one subject.

    ``scope`` names the subject: ``address`` (the client address), ``email``, or
    ``email+address``. ``lockout`` turns the backoff on (see the module docstring).
    """

    scope: str
    max_setting: str
    window_setting: str
    lockout: bool = False

    def resolve(self, config: dict[str, Any]) -> tuple[int, int]:
        """(how many, in how many seconds): a setting name, or a number of seconds written as is."""
        window = self.window_setting
        return int(config[self.max_setting]), int(window) if window.isdigit() else int(config[window])


@dataclass(frozen=True)
class Door:
    """An anonymous endpoint and its limits."""

    endpoint: str
    #: The audit action of its refusals.
    action: str
    #: The stable code of a 429 here.
    code: str
    limits: tuple[Limit, ...]
    #: ``requests`` counts every request; ``refusals`` gives the place back unless refused.
    counts: str = "requests"
    #: The form or query field holding the email, for the per-email limits.
    email_field: str | None = None
    #: Starts a SAML sign-in: the browser's live pending requests are capped.
    starts_sign_in: bool = False
    #: Checks a password: bounded by the per-worker hashing slots.
    hashes_password: bool = False


_PER_ADDRESS = Limit("address", "ANONYMOUS_REQUESTS_PER_MINUTE", "60")
_SSO_PER_EMAIL = Limit("email", "SSO_STARTS_PER_EMAIL_PER_MINUTE", "60")

#: Every anonymous door, by endpoint. A new anonymous endpoint gets a line here.
DOORS: dict[str, Door] = {
    door.endpoint: door
    for door in (
        Door(
            "auth.password_login",
            action="signin.password",
            code="LOGIN_RATE_LIMITED",
            limits=(
                Limit("address", "PASSWORD_MAX_PER_ADDRESS", "PASSWORD_FAILURE_WINDOW_SECONDS"),
                Limit("email+address", "PASSWORD_MAX_FAILURES", "PASSWORD_FAILURE_WINDOW_SECONDS", lockout=True),
                Limit("email", "PASSWORD_MAX_PER_EMAIL", "PASSWORD_FAILURE_WINDOW_SECONDS"),
            ),
            counts="refusals",
            email_field="email",
            hashes_password=True,
        ),
        Door(
            "auth.sso_start",
            action="signin.sso_start",
            code="RATE_LIMITED",
            limits=(_PER_ADDRESS, _SSO_PER_EMAIL),
            email_field="email",
            starts_sign_in=True,
        ),
        Door(
            "app_auth.start",
            action="signin.sso_start",
            code="RATE_LIMITED",
            limits=(_PER_ADDRESS, _SSO_PER_EMAIL),
            email_field="login_hint",
            starts_sign_in=True,
        ),
        # The pages that only show the "Continue" button (GET /sso/start, the app's authorize link)
        # and the finishing step of a sign-in: per address.
        Door("auth.sso_start_page", action="signin.sso_start", code="RATE_LIMITED", limits=(_PER_ADDRESS,)),
        Door("app_auth.authorize", action="signin.sso_start", code="RATE_LIMITED", limits=(_PER_ADDRESS,)),
        Door("auth.sso_finish", action="signin.sso", code="RATE_LIMITED", limits=(_PER_ADDRESS,)),
        Door("slo.sls", action="signout.slo", code="RATE_LIMITED", limits=(_PER_ADDRESS,)),
        Door("api.token", action="signin.app_token", code="RATE_LIMITED", limits=(_PER_ADDRESS,)),
        Door("saml.acs", action="signin.sso", code="RATE_LIMITED", limits=(_PER_ADDRESS,), counts="refusals"),
        Door("saml.metadata", action="saml.metadata", code="RATE_LIMITED", limits=(_PER_ADDRESS,)),
    )
}


def window_start(now: dt.datetime, seconds: int) -> dt.datetime:
    """The start of the fixed window of ``seconds`` that ``now`` falls in."""
    elapsed = int((now - _EPOCH).total_seconds())
    return _EPOCH + dt.timedelta(seconds=elapsed - elapsed % seconds)


def counter_key(kind: str, subject: str) -> str:
    """A counter's key: what is counted, and a hash of whom (no email or address stored as such)."""
    return f"{kind}:{hashlib.sha256(subject.encode()).hexdigest()}"


# --- where counters live ------------------------------------------------------------------------


class CounterStore(Protocol):
    """What the limiter needs from a store; every call is atomic on its own."""

    def increment(self, key: str, start: dt.datetime, expires_at: dt.datetime) -> int:
        """Add one to the (key, window) counter and return the new count."""

    def decrement(self, key: str, start: dt.datetime) -> None:
        """Give one back (never below zero)."""

    def decrement_with_request(self, key: str, start: dt.datetime) -> None:
        """Give one back as part of the request's own transaction, where the store has one."""

    def locked_until(self, key: str) -> dt.datetime | None:
        """The end of the lock-out on ``key``, if one was set."""

    def lock(self, key: str, until: dt.datetime) -> None:
        """Lock ``key`` out until ``until``."""


_COUNTERS = cast(Table, RateLimitCounter.__table__)
#: The atomic count of every request at a door, built once. SQLAlchemy does not cache the
#: compiled form of a dialect's ``on_conflict_do_update`` (it would compile on every request);
#: this text is the same on SQLite and PostgreSQL, and its typed parameters store the window
#: start exactly as the mapped column does (the two must find the same row).
_INCREMENT = (
    text(
        'INSERT INTO rate_limit_counters ("key", window_start, count, expires_at) '
        "VALUES (:key, :start, 1, :expires_at) "
        'ON CONFLICT ("key", window_start) DO UPDATE SET count = rate_limit_counters.count + 1 '
        "RETURNING count"
    )
    .bindparams(
        bindparam("key", type_=_COUNTERS.c.key.type),
        bindparam("start", type_=_COUNTERS.c.window_start.type),
        bindparam("expires_at", type_=_COUNTERS.c.expires_at.type),
    )
    .columns(count=_COUNTERS.c.count.type)
)
#: Built once: every successful sign-in gives its place back with it.
_DECREMENT = (
    update(_COUNTERS)
    .where(
        _COUNTERS.c.key == bindparam("counter_key"),
        _COUNTERS.c.window_start == bindparam("counter_start"),
        _COUNTERS.c.count > 0,
    )
    .values(count=_COUNTERS.c.count - 1)
)


class DatabaseStore:
    """Counters as rows of ``rate_limit_counters``: upserts in short transactions of their own,
    so that a count survives the refused request's rollback. A lock-out is a row in the fixed
    window ``_EPOCH`` whose ``expires_at`` is the end of the lock-out."""

    def _upsert(self, key: str, start: dt.datetime, expires_at: dt.datetime, *, replace: bool) -> Insert:
        insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
        table = cast(Table, RateLimitCounter.__table__)
        statement = insert(table).values(key=key, window_start=start, count=1, expires_at=expires_at)
        new_values = {"expires_at": statement.excluded.expires_at} if replace else {"count": table.c.count + 1}
        return statement.on_conflict_do_update(index_elements=[table.c.key, table.c.window_start], set_=new_values)

    def _run(self, statement: Any) -> None:
        with db.engine.begin() as connection:
            connection.execute(statement)

    def increment(self, key: str, start: dt.datetime, expires_at: dt.datetime) -> int:
        params = {"key": key, "start": start, "expires_at": expires_at}
        rows = driver.execute_alone(_INCREMENT, params)  # psycopg: one round trip, no BEGIN/COMMIT
        if rows is not None:
            return int(rows[0][0])
        with db.engine.begin() as connection:
            return int(connection.execute(_INCREMENT, params).scalar_one())

    def decrement(self, key: str, start: dt.datetime) -> None:
        with db.engine.begin() as connection:
            connection.execute(_DECREMENT, {"counter_key": key, "counter_start": start})

    def decrement_with_request(self, key: str, start: dt.datetime) -> None:
        driver.execute(_DECREMENT, {"counter_key": key, "counter_start": start})

    def locked_until(self, key: str) -> dt.datetime | None:
        with db.engine.connect() as connection:
            return connection.scalar(
                select(RateLimitCounter.expires_at).where(
                    RateLimitCounter.key == f"lock:{key}", RateLimitCounter.window_start == _EPOCH
                )
            )

    def lock(self, key: str, until: dt.datetime) -> None:
        self._run(self._upsert(f"lock:{key}", _EPOCH, until, replace=True))


def _epoch_seconds(moment: dt.datetime) -> int:
    return math.ceil((moment - dt.datetime(1970, 1, 1)).total_seconds())


class StoreUnavailable(Exception):
    """The counter store cannot be reached: doors answer 503 rather than go unguarded."""


class RedisStore:
    """Counters as Redis keys that expire by themselves at the end of their window (INCR and
    EXPIREAT in one MULTI). For deployments that already run Redis; the database store needs
    nothing more."""

    #: Give one back, never below zero, in one atomic step.
    _DECREMENT = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') if v > 0 then return redis.call('DECR', KEYS[1]) end return 0"

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._errors = (redis.RedisError, OSError)

    @staticmethod
    def _name(key: str, start: dt.datetime) -> str:
        return f"rl:{key}:{_epoch_seconds(start)}"

    def _call(self, operation: Callable[[], Any]) -> Any:
        try:
            return operation()
        except self._errors as exc:
            log.error("rate-limit store unavailable: %s", exc)
            raise StoreUnavailable(str(exc)) from exc

    def _increment(self, name: str, expires_at: dt.datetime) -> int:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expireat(name, _epoch_seconds(expires_at) + 1)
            count, _ = pipe.execute()
        return int(count)

    def increment(self, key: str, start: dt.datetime, expires_at: dt.datetime) -> int:
        return int(self._call(lambda: self._increment(self._name(key, start), expires_at)))

    def decrement(self, key: str, start: dt.datetime) -> None:
        self._call(lambda: self._redis.eval(self._DECREMENT, 1, self._name(key, start)))

    def decrement_with_request(self, key: str, start: dt.datetime) -> None:
        self.decrement(key, start)  # no transaction to join: given back at once

    def locked_until(self, key: str) -> dt.datetime | None:
        value = self._call(lambda: self._redis.get(f"rl:lock:{key}"))
        return dt.datetime.fromisoformat(value.decode()) if isinstance(value, bytes) else None

    def lock(self, key: str, until: dt.datetime) -> None:
        self._call(lambda: self._redis.set(f"rl:lock:{key}", until.isoformat(), exat=_epoch_seconds(until) + 1))


def _store(app: Flask) -> CounterStore:
    """The app's store: built once per app from ``RATE_LIMIT_STORAGE_URL``."""
    store = app.extensions.get("rate_limit_store")
    if store is None:
        url = app.config["RATE_LIMIT_STORAGE_URL"]
        store = RedisStore(url) if url else DatabaseStore()
        app.extensions["rate_limit_store"] = store
    return cast(CounterStore, store)


# --- deciding -----------------------------------------------------------------------------------


@dataclass
class Reservation:
    """The places one request took at a door, and whether it may go on."""

    door: Door
    allowed: bool = True
    #: Seconds until a refused request may come back.
    retry_after: int = 0
    #: What refused it, for the audit event (which limit, what count).
    reason: str = ""
    taken: list[tuple[str, dt.datetime]] = field(default_factory=list)


def _subject(scope: str, address: str | None, email: str | None) -> str | None:
    if scope == "address":
        return address
    if scope == "email":
        return email
    return f"{email}|{address}" if email and address else None


def _seconds_until(moment: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def reserve(door: Door, *, address: str | None, email: str | None) -> Reservation:
    """Take this request's place in each of the door's counters, then decide (see module doc)."""
    config = current_app.config
    store = _store(current_app._get_current_object())  # type: ignore[attr-defined]
    now = utcnow()
    reservation = Reservation(door)
    for limit in door.limits:
        subject = _subject(limit.scope, address, email)
        if subject is None:
            continue
        most, window = limit.resolve(config)
        key = counter_key(f"{door.endpoint}:{limit.scope}", subject)
        if limit.lockout:
            until = store.locked_until(key)
            if until is not None and until > now:
                reservation.allowed = False
                reservation.retry_after = _seconds_until(until, now)
                reservation.reason = f"{limit.scope} locked out until {until:%H:%M:%S}"
                return reservation
        start = window_start(now, window)
        end = start + dt.timedelta(seconds=window)
        count = store.increment(key, start, end)
        reservation.taken.append((key, start))
        if count > most:
            reservation.allowed = False
            reservation.retry_after = _seconds_until(end, now)
            # No live count in the reason: identical refusals must read the same to be folded.
            reservation.reason = f"over {most} per {window}s for the {limit.scope}"
            if limit.lockout and count == most + 1:
                reservation.retry_after = _lock_out(store, key, window, now)
                reservation.reason += f", locked out for {reservation.retry_after}s"
            return reservation
    return reservation


def _lock_out(store: CounterStore, key: str, window: int, now: dt.datetime) -> int:
    """Lock ``key`` out: one window the first time, doubling with each lock-out in 24 hours."""
    memory_start = window_start(now, LOCKOUT_MEMORY_SECONDS)
    earlier = store.increment(
        f"lockouts:{key}", memory_start, memory_start + dt.timedelta(seconds=LOCKOUT_MEMORY_SECONDS)
    )
    seconds = min(window * 2 ** min(earlier - 1, 16), LOCKOUT_MEMORY_SECONDS)
    store.lock(key, now + dt.timedelta(seconds=seconds))
    log.warning("rate limit: lock-out %d of %s for %ds", earlier, key[:40], seconds)
    return seconds


def release(reservation: Reservation, *, with_request: bool = False) -> None:
    """Give back the places of a request that was not refused (doors that count refusals).

    ``with_request``: as part of the request's database transaction (the caller commits), so that
    a successful sign-in and the return of its place are one commit instead of two. Should that
    commit fail, the place stays taken: the limit errs towards counting.
    """
    store = _store(current_app._get_current_object())  # type: ignore[attr-defined]
    for key, start in reservation.taken:
        if with_request:
            store.decrement_with_request(key, start)
        else:
            store.decrement(key, start)
    reservation.taken.clear()


def live_pending_requests(browser_binding: str, cap: int) -> int:
    """How many live sign-in requests this browser holds, counted up to ``cap`` + 1 at most.

    The hash is the one ``app.saml`` stores on pending requests (SHA-256 of the cookie value);
    the count reads the ``browser_binding_hash`` index, never the whole table.
    """
    binding_hash = hashlib.sha256(browser_binding.encode()).hexdigest()
    live = (
        select(PendingRequest.id)
        .where(PendingRequest.browser_binding_hash == binding_hash, PendingRequest.expires_at > utcnow())
        .limit(cap + 1)
        .subquery()
    )
    return int(db.session.scalar(select(func.count()).select_from(live)) or 0)


def count_repeat(signature: str, seconds: int = 60) -> tuple[int, dt.datetime]:
    """Count one more of an identical event in its window; return (count, window start).

    Used to fold a flood of identical refusals into one audit row per window."""
    store = _store(current_app._get_current_object())  # type: ignore[attr-defined]
    start = window_start(utcnow(), seconds)
    count = store.increment(counter_key("repeat", signature), start, start + dt.timedelta(seconds=seconds))
    return count, start
