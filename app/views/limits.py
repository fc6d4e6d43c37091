"""The limits every request meets before its view: body size per route, rate limits at the
anonymous doors, the browser's pending sign-ins, and the password-hashing slots.

Views do not change to get them: the doors are listed in ``app.services.rate_limits.DOORS`` and
the body limits in ``BODY_LIMITS`` below; this module applies both from request hooks.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, Request, current_app, g, jsonify, make_response, request
from werkzeug.wrappers import Response

from app.errors import SignInError
from app.extensions import db
from app.services import rate_limits
from app.services.users import normalise_email
from app.sessions.web import binding_cookie_name
from app.views.errors import record_refusal, refuse

log = logging.getLogger(__name__)

#: Routes whose body may be larger (or must be smaller) than ``MAX_CONTENT_LENGTH``: endpoint ->
#: the setting that holds its limit in bytes.
BODY_LIMITS = {
    "admin.import_page": "IMPORT_MAX_BYTES",
    "saml.acs": "SAML_ACS_MAX_BYTES",
}


class PortalRequest(Request):
    """A request whose body limit is its route's (``BODY_LIMITS``), else ``MAX_CONTENT_LENGTH``.

    Decided when the body is first read, wherever that is (the CSRF check reads forms before any
    view runs), so a large CSV reaches its view and a large form anywhere else is refused there.
    """

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is None and self.url_rule is not None:
            setting = BODY_LIMITS.get(self.url_rule.endpoint)
            if setting is not None:
                return int(current_app.config[setting])
        return super().max_content_length

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def _hash_slots(app: Flask) -> threading.BoundedSemaphore:
    """This worker's password-hashing slots (scrypt takes 32 MB of memory per check)."""
    slots = app.extensions.get("password_hash_slots")
    if slots is None:
        slots = threading.BoundedSemaphore(app.config["PASSWORD_HASH_CONCURRENCY"])
        app.extensions["password_hash_slots"] = slots
    return slots


def _email(field: str | None) -> str | None:
    if field is None:
        return None
    raw = request.values.get(field, "")[:320]
    return normalise_email(raw) or None


def _refused(door: rate_limits.Door, err: SignInError, retry_after: int) -> Response:
    """The 429/503 of a door: our page for browsers, JSON under /api/; audited, with Retry-After."""
    if request.path.startswith("/api/"):
        record_refusal(err, action=door.action)
        db.session.commit()
        response = jsonify(error=err.code, code=err.code, message=err.message)
        response.status_code = err.status
    else:
        response = make_response(refuse(err, action=door.action))
    response.headers["Retry-After"] = str(retry_after)
    return response


def limit_anonymous_doors() -> Response | None:
    """Before a door's view: cap pending sign-ins, reserve rate-limit places, take a hashing slot."""
    door = rate_limits.DOORS.get(request.endpoint or "")
    if door is None:
        return None
    email = _email(door.email_field)
    if door.starts_sign_in:
        binding = request.cookies.get(binding_cookie_name())
        cap = current_app.config["MAX_PENDING_REQUESTS_PER_BROWSER"]
        if binding and rate_limits.live_pending_requests(binding, cap) >= cap:
            err = SignInError("TOO_MANY_PENDING_SIGNINS", f"{cap} live pending requests", email=email)
            return _refused(door, err, current_app.config["SAML_PENDING_REQUEST_SECONDS"])
    try:
        reservation = rate_limits.reserve(door, address=request.remote_addr, email=email)
    except rate_limits.StoreUnavailable as exc:
        return _refused(door, SignInError("SERVER_BUSY", f"rate-limit store unavailable: {exc}", email=email), 5)
    g.rate_limit_reservation = reservation
    if not reservation.allowed:
        return _refused(door, SignInError(door.code, reservation.reason, email=email), reservation.retry_after)
    if door.hashes_password:
        slots = _hash_slots(current_app._get_current_object())  # type: ignore[attr-defined]
        if not slots.acquire(timeout=0.05):
            log.warning("password hashing slots full: %s answered 503", request.path)
            rate_limits.release(reservation)  # not evaluated: no guess spent
            return _refused(door, SignInError("SERVER_BUSY", "all password hashing slots busy", email=email), 1)
        g.password_hash_slot = slots
    return None


def _unrefused_reservation() -> rate_limits.Reservation | None:
    reservation = g.get("rate_limit_reservation")
    if (
        reservation is not None
        and reservation.door.counts == "refusals"
        and reservation.allowed
        and not g.get("refusal_recorded")
    ):
        return reservation
    return None


def give_back_with_commit() -> None:
    """For a view about to commit its success at a door that counts refusals: give the
    request's places back in that same transaction (one commit, not a second one after it)."""
    reservation = _unrefused_reservation()
    if reservation is not None:
        try:
            rate_limits.release(reservation, with_request=True)
        except rate_limits.StoreUnavailable:
            log.warning("rate-limit places of %s not given back: store unavailable", request.path)


def release_unrefused(response: Response) -> Response:
    """After a door that counts refusals only: give the places back unless the request was refused."""
    reservation = _unrefused_reservation()
    g.pop("rate_limit_reservation", None)
    if reservation is not None and reservation.taken:
        try:
            rate_limits.release(reservation)
        except rate_limits.StoreUnavailable:
            log.warning("rate-limit places of %s not given back: store unavailable", request.path)
    return response


def free_hash_slot(_exc: BaseException | None) -> None:
    slots = g.pop("password_hash_slot", None)
    if slots is not None:
        slots.release()


def init_app(app: Flask) -> None:
    app.request_class = PortalRequest
    app.before_request(limit_anonymous_doors)
    app.after_request(release_unrefused)
    app.teardown_request(free_hash_slot)
