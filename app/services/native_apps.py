"""Desktop and mobile app sign-in: RFC 8252 (OAuth 2.0 for Native Apps) with PKCE (RFC 7636).

A native app never sees SAML. It opens the system browser at ``/sso/app/authorize``; we check the
request completely, run the ordinary SAML sign-in through the account's IdP, and send the browser
back to the app's redirect URI with a one-time code. The app exchanges that code, with the PKCE
verifier only it knows, at ``POST /api/v1/token`` for an opaque bearer token. The token is a
server-side session in the same store as web sessions (21 days sliding, revoked with the user).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app
from sqlalchemy import CursorResult, select, update
from werkzeug.datastructures import MultiDict

from app import audit
from app.errors import CodedError, SignInError
from app.extensions import db
from app.models import AppAuthorizationCode, AppAuthorizationRequest, User, UserSession
from app.saml import VerifiedAssertion, start_login
from app.services.signin import authorize, connection_for_email, email_from_assertion
from app.services.users import normalise_email
from app.sessions import NewSession, create_session, hash_token, revoke_session
from app.sessions.web import APP_TOKEN_APPS
from app.timeutil import utcnow

log = logging.getLogger(__name__)

#: A pending AuthnRequest started for an app carries ``app:<authorization request id>`` as purpose.
PURPOSE_PREFIX = "app:"
STATE_MAX_LENGTH = 512
REDIRECT_URI_MAX_LENGTH = 2000
LOGIN_HINT_MAX_LENGTH = 320
#: RFC 7636 4.1 / 4.2: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: RFC 6749 appendix A.5: state is printable ASCII (VSCHAR).
_STATE = re.compile(r"[\x20-\x7e]+")
#: RFC 8252 7.3: loopback IP literals only ("localhost" can be re-pointed, 8.3), any port, any path.
_LOOPBACK = re.compile(r"http://(?:127\.0\.0\.1|\[::1\]):(?P<port>[1-9][0-9]{0,4})(?:[/?].*)?", re.DOTALL)
#: Codes are 256-bit random strings; anything much longer is not one of ours.
_CODE_MAX_LENGTH = 128


# --- authorize: check the app's request, then start the SAML sign-in ---------------------------


@dataclass(frozen=True)
class AuthorizeParams:
    """A fully checked authorize request."""

    app: str
    redirect_uri: str
    code_challenge: str
    state: str
    login_hint: str | None

    def query(self) -> dict[str, str]:
        """The request's parameters, to carry through the "which email?" page unchanged."""
        return {
            "app": self.app,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "state": self.state,
        }


def _single(args: MultiDict[str, str], name: str, *, required: bool = True) -> str | None:
    """One value of a parameter: refuse duplicates (which of two would we trust?) and, if
    ``required``, absent or empty ones."""
    values = args.getlist(name)
    if len(values) > 1:
        raise SignInError("APP_REQUEST_INVALID", f"parameter {name} is given {len(values)} times", parameter=name)
    value = values[0] if values else ""
    if not value:
        if required:
            raise SignInError("APP_REQUEST_INVALID", f"parameter {name} is missing", parameter=name)
        return None
    return value


def check_redirect_uri(app_name: str, uri: str) -> None:
    """Refuse a redirect URI the app may not use: we must never send a code anywhere else.

    Mobile: exactly one of ``APP_MOBILE_REDIRECT_URIS`` (private-use schemes, RFC 8252 7.1).
    Desktop: ``http://127.0.0.1:{port}/{path}`` or ``http://[::1]:{port}/{path}`` (RFC 8252 7.3).
    Never a fragment (RFC 6749 3.1.2) nor userinfo (``http://127.0.0.1@evil.example/`` tricks).
    """

    def bad(reason: str) -> SignInError:
        return SignInError("APP_REDIRECT_URI_INVALID", f"redirect_uri {uri[:200]!r}: {reason}", app=app_name)

    if len(uri) > REDIRECT_URI_MAX_LENGTH:
        raise bad(f"longer than {REDIRECT_URI_MAX_LENGTH} characters")
    if not uri.isascii() or any(char <= " " or char in "\x7f\\" for char in uri):
        raise bad("contains spaces, control characters, backslashes or non-ASCII characters")
    if "#" in uri:
        raise bad("has a fragment")
    if app_name == "mobile":
        if uri not in current_app.config["APP_MOBILE_REDIRECT_URIS"]:
            raise bad("not one of the configured mobile redirect URIs (APP_MOBILE_REDIRECT_URIS)")
        return
    netloc = urlsplit(uri).netloc
    if "@" in netloc:
        raise bad("has userinfo")
    if netloc.lower().startswith("localhost"):
        raise bad("use the loopback IP 127.0.0.1 or [::1], not localhost (RFC 8252 8.3)")
    match = _LOOPBACK.fullmatch(uri)
    if match is None or int(match["port"]) > 65535:
        raise bad("a desktop app must use http://127.0.0.1:{port}/... or http://[::1]:{port}/...")


def parse_authorize_request(args: MultiDict[str, str]) -> AuthorizeParams:
    """Check an authorize request completely, before anything is stored or any SSO begins."""
    app_name = _single(args, "app")
    if app_name not in APP_TOKEN_APPS:
        raise SignInError("UNKNOWN_APP", f"app {str(app_name)[:40]!r} cannot sign in here (desktop or mobile)")
    redirect_uri = _single(args, "redirect_uri") or ""
    check_redirect_uri(app_name, redirect_uri)
    response_type = _single(args, "response_type", required=False)
    if response_type not in (None, "code"):
        raise SignInError("APP_REQUEST_INVALID", f"response_type {response_type[:40]!r}: only code", app=app_name)
    method = _single(args, "code_challenge_method", required=False)
    challenge = _single(args, "code_challenge", required=False)
    if method != "S256" or challenge is None:
        raise SignInError(
            "APP_PKCE_REQUIRED",
            f"code_challenge_method {str(method)[:40]!r} and a code_challenge are required: S256 only",
            app=app_name,
        )
    if not _PKCE_VALUE.fullmatch(challenge):
        raise SignInError("APP_REQUEST_INVALID", "code_challenge is not 43 to 128 base64url characters", app=app_name)
    state = _single(args, "state") or ""
    if len(state) > STATE_MAX_LENGTH or not _STATE.fullmatch(state):
        raise SignInError(
            "APP_REQUEST_INVALID", f"state must be 1 to {STATE_MAX_LENGTH} printable ASCII characters", app=app_name
        )
    login_hint = (_single(args, "login_hint", required=False) or "").strip() or None
    if login_hint is not None and len(login_hint) > LOGIN_HINT_MAX_LENGTH:
        raise SignInError("APP_REQUEST_INVALID", f"login_hint is longer than {LOGIN_HINT_MAX_LENGTH}", app=app_name)
    return AuthorizeParams(app_name, redirect_uri, challenge, state, login_hint)


def start_app_sign_in(params: AuthorizeParams, *, browser_binding: str) -> str:
    """Store the checked request and start the SAML sign-in at the IdP of the hinted email's
    account; return the IdP URL. The caller commits."""
    if params.login_hint is None:
        raise ValueError("start_app_sign_in needs the email (login_hint)")
    _user, connection = connection_for_email(params.login_hint)
    now = utcnow()
    request_row = AppAuthorizationRequest(
        id=secrets.token_urlsafe(24),
        app=params.app,
        redirect_uri=params.redirect_uri,
        code_challenge=params.code_challenge,
        state=params.state,
        login_hint=normalise_email(params.login_hint),
        created_at=now,
        # As long as the AuthnRequest it starts: the ACS needs it exactly that long.
        expires_at=now + dt.timedelta(seconds=current_app.config["SAML_PENDING_REQUEST_SECONDS"]),
    )
    db.session.add(request_row)
    location = start_login(
        connection,
        app_name=params.app,
        next_path="/",
        browser_binding=browser_binding,
        purpose=f"{PURPOSE_PREFIX}{request_row.id}",
    )
    audit.record(
        "signin.sso_start",
        account_id=connection.account_id,
        connection_id=connection.id,
        subject_email=request_row.login_hint,
        details={"app": params.app, "redirect_uri": params.redirect_uri[:300]},
    )
    return location


# --- after the SAML sign-in: a code (or the refusal) back to the app ----------------------------


def is_app_purpose(purpose: object) -> bool:
    """True when a pending AuthnRequest was started by an app's authorize request."""
    return isinstance(purpose, str) and purpose.startswith(PURPOSE_PREFIX)


def _authorization_request(purpose: object) -> AppAuthorizationRequest | None:
    """The live authorization request that ``purpose`` names, if any."""
    if not is_app_purpose(purpose):
        return None
    row = db.session.get(AppAuthorizationRequest, str(purpose)[len(PURPOSE_PREFIX) :])
    if row is None or row.expires_at <= utcnow():
        return None
    return row


def _with_query(uri: str, **params: str) -> str:
    """``uri`` with ``params`` added to its query (an existing query is kept, RFC 6749 3.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def complete_app_sign_in(verified: VerifiedAssertion) -> str:
    """Match the signed-in user, check their role for the app, and issue a one-time code.

    Returns the app's redirect URI with ``code`` and ``state``. A refusal is raised as a
    ``SignInError`` that names the pending purpose, so ``refusal_redirect`` can tell the app.
    The caller commits.
    """
    connection = verified.connection
    try:
        request_row = _authorization_request(verified.purpose)
        if request_row is None or request_row.app != verified.app:
            raise SignInError("APP_AUTHORIZATION_EXPIRED", f"no live authorization request for {verified.purpose!r}")
        email = email_from_assertion(verified)
        user = authorize(connection.account_id, email, request_row.app)
    except SignInError as err:
        err.context.setdefault("account_id", connection.account_id)
        err.context.setdefault("name_id", verified.name_id)
        err.context.setdefault("purpose", verified.purpose)
        raise
    code = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        AppAuthorizationCode(
            code_hash=hash_token(code),
            user_id=user.id,
            app=request_row.app,
            redirect_uri=request_row.redirect_uri,
            code_challenge=request_row.code_challenge,
            connection_id=connection.id,
            saml_name_id=verified.name_id,
            saml_session_index=verified.session_index,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=current_app.config["APP_CODE_LIFETIME_SECONDS"]),
        )
    )
    db.session.delete(request_row)
    audit.record(
        "signin.sso",
        account_id=connection.account_id,
        connection_id=connection.id,
        subject_email=user.email,
        details={"app": request_row.app, "idp_initiated": False, "redirect_uri": request_row.redirect_uri[:300]},
    )
    return _with_query(request_row.redirect_uri, code=code, state=request_row.state)


def refusal_redirect(err: SignInError) -> str | None:
    """Where to tell the app that its sign-in was refused, or None when no trusted redirect URI
    is known (then the browser shows the error page).

    The redirect URI was checked when the authorize request was stored, so it is trusted; the
    request is used up either way. The caller commits.
    """
    request_row = _authorization_request(err.context.get("purpose"))
    if request_row is None:
        return None
    db.session.delete(request_row)
    return _with_query(
        request_row.redirect_uri, error="access_denied", error_description=err.code, state=request_row.state
    )


# --- token: the one-time code for an app session ------------------------------------------------

#: Our code -> (RFC 6749 5.2 error, what the app developer is told).
TOKEN_ERRORS: dict[str, tuple[str, str]] = {
    "TOKEN_REQUEST_INVALID": (
        "invalid_request",
        "Send grant_type, code, redirect_uri and code_verifier once each, form-encoded.",
    ),
    "GRANT_TYPE_UNSUPPORTED": ("unsupported_grant_type", "Only grant_type=authorization_code is supported."),
    "CLIENT_UNKNOWN": ("invalid_client", "client_id must be desktop or mobile."),
    "PKCE_VERIFIER_INVALID": (
        "invalid_request",
        "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1).",
    ),
    "CODE_INVALID": ("invalid_grant", "The code is unknown. Start the sign-in again."),
    "CODE_USED": ("invalid_grant", "The code was already used. Start the sign-in again."),
    "CODE_EXPIRED": ("invalid_grant", "The code has expired: exchange it at once. Start the sign-in again."),
    "CODE_APP_MISMATCH": ("invalid_grant", "The code was issued to another app."),
    "REDIRECT_URI_MISMATCH": ("invalid_grant", "redirect_uri differs from the one in the authorize request."),
    "PKCE_VERIFIER_MISMATCH": ("invalid_grant", "code_verifier does not match the code_challenge."),
    "USER_NOT_FOUND": ("invalid_grant", "The user no longer exists."),
    "USER_DEACTIVATED": ("invalid_grant", "The user has been deactivated."),
    "NO_ROLE_FOR_APP": ("invalid_grant", "The user no longer has a role for this app."),
}


class TokenError(CodedError):
    """A refused token request: an RFC 6749 error name for OAuth libraries and our stable code."""

    def __init__(self, code: str, detail: str = "", **context: Any) -> None:
        self.error, message = TOKEN_ERRORS[code]
        super().__init__(code, message)
        self.detail = detail
        self.context = context

    def as_json(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.message, "code": self.code}


@dataclass(frozen=True)
class AppToken:
    """A code exchanged for an app session; ``token`` is shown to the app once."""

    token: str
    session: UserSession
    user: User

    def as_json(self) -> dict[str, Any]:
        remaining = self.session.expires_at - utcnow()
        return {
            "access_token": self.token,
            "token_type": "Bearer",
            "expires_at": self.session.expires_at.isoformat() + "Z",
            "expires_in": max(0, int(remaining.total_seconds())),
            "app": self.session.app,
            "user": {
                "email": self.user.email,
                "name": self.user.name,
                "account": self.user.account.slug,
                "roles": self.user.role_list,
            },
        }


def s256(verifier: str) -> str:
    """RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier))), without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _token_param(form: MultiDict[str, str], name: str, *, required: bool = True) -> str | None:
    values = form.getlist(name)
    if len(values) > 1 or (required and not (values and values[0])):
        raise TokenError("TOKEN_REQUEST_INVALID", f"{name} is {'duplicated' if values else 'missing'}")
    return values[0] if values and values[0] else None


def record_token_refusal(err: TokenError) -> None:
    """Audit a refused token request. The caller commits: what the attempt did stays done (a
    presented code stays spent, a replayed code's session stays revoked)."""
    context = dict(err.context)
    audit.record(
        "signin.app_token",
        outcome="failure",
        error_code=err.code,
        account_id=context.pop("account_id", None),
        subject_email=context.pop("email", None),
        details={"reason": err.detail[:2000], **{key: str(value)[:300] for key, value in context.items()}},
    )


def exchange_code(form: MultiDict[str, str], *, ip: str | None, user_agent: str | None) -> AppToken:
    """Exchange a one-time code for an app session (RFC 6749 4.1.3, RFC 7636 4.6); raise
    ``TokenError`` on any refusal. The caller commits, whatever the outcome."""
    grant_type = _token_param(form, "grant_type") or ""
    code = _token_param(form, "code") or ""
    redirect_uri = _token_param(form, "redirect_uri") or ""
    verifier = _token_param(form, "code_verifier") or ""
    client_id = _token_param(form, "client_id", required=False)
    if grant_type != "authorization_code":
        raise TokenError("GRANT_TYPE_UNSUPPORTED", f"grant_type {grant_type[:40]!r}")
    if client_id is not None and client_id not in APP_TOKEN_APPS:
        raise TokenError("CLIENT_UNKNOWN", f"client_id {client_id[:40]!r}")
    if not _PKCE_VALUE.fullmatch(verifier):
        raise TokenError("PKCE_VERIFIER_INVALID", f"code_verifier of {len(verifier)} characters")
    if len(code) > _CODE_MAX_LENGTH or not code.isascii():
        raise TokenError("CODE_INVALID", "not a code of ours")

    row = db.session.scalar(select(AppAuthorizationCode).where(AppAuthorizationCode.code_hash == hash_token(code)))
    if row is None:
        raise TokenError("CODE_INVALID", "no such code")
    facts = {"app": row.app, "code_id": row.id}
    user = db.session.get(User, row.user_id)
    if user is not None:
        facts.update(account_id=user.account_id, email=user.email)
    now = utcnow()
    # Spend the code first, atomically: of two concurrent exchanges exactly one wins, everywhere.
    claimed = (
        cast(
            CursorResult[Any],
            db.session.execute(
                update(AppAuthorizationCode)
                .where(AppAuthorizationCode.id == row.id, AppAuthorizationCode.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        == 1
    )
    if not claimed:
        db.session.refresh(row)
        revoked = _revoke_session_of_replayed_code(row)
        raise TokenError("CODE_USED", f"code already used at {row.used_at}", session_revoked=revoked, **facts)
    if row.expires_at <= now:
        raise TokenError("CODE_EXPIRED", f"expired at {row.expires_at.isoformat()}", **facts)
    if client_id is not None and client_id != row.app:
        raise TokenError("CODE_APP_MISMATCH", f"client_id {client_id!r}", **facts)
    if not secrets.compare_digest(redirect_uri.encode(), row.redirect_uri.encode()):
        raise TokenError("REDIRECT_URI_MISMATCH", f"redirect_uri {redirect_uri[:200]!r}", **facts)
    if not secrets.compare_digest(s256(verifier), row.code_challenge):
        raise TokenError("PKCE_VERIFIER_MISMATCH", "S256(code_verifier) != code_challenge", **facts)
    if user is None:
        raise TokenError("USER_NOT_FOUND", "the user was deleted", **facts)
    try:
        # The user may have been deactivated or lost the role since the code was issued.
        authorize(user.account_id, user.email, row.app)
    except SignInError as err:
        raise TokenError(err.code, err.detail, **facts) from None

    new: NewSession = create_session(
        user,
        app_name=row.app,
        ip=ip,
        user_agent=user_agent,
        connection_id=row.connection_id,
        name_id=row.saml_name_id,
        session_index=row.saml_session_index,
    )
    db.session.flush()
    row.session_id = new.session.id
    audit.record(
        "signin.app_token",
        account_id=user.account_id,
        connection_id=row.connection_id,
        subject_email=user.email,
        details={"app": row.app, "session_id": new.session.id},
    )
    return AppToken(token=new.token, session=new.session, user=user)


def _revoke_session_of_replayed_code(row: AppAuthorizationCode) -> bool:
    """RFC 6749 4.1.2: a code used twice may have been stolen; end the session it gave."""
    if row.session_id is None:
        return False
    session = db.session.get(UserSession, row.session_id)
    if session is None or not revoke_session(session, "code_replayed"):
        return False
    log.warning("authorization code %s presented again: session %s revoked", row.id, session.id)
    return True


def revoke_app_session(session: UserSession) -> None:
    """An app signs out: end this token only (other devices and the IdP stay signed in)."""
    revoke_session(session, "logout")
