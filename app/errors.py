"""Stable error codes: what a person is told, and the HTTP status, for every refusal.

The code is shown on the error page and written to the audit event; the details an admin needs
go only to the audit event, never to the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """One refusal reason."""

    code: str
    status: int
    #: What the person sees. Says what to do, never why in detail (that would help an attacker).
    message: str


_SAML_BAD = "Your identity provider's answer could not be accepted. Please try signing in again; if this keeps happening, contact your company's administrator."

_SLO_BAD = "Your identity provider's sign-out message could not be accepted, so nothing was signed out. If this keeps happening, contact your company's administrator."

_CODES = [
    ErrorCode("SAML_MALFORMED", 400, "The sign-in answer was damaged or incomplete. Please start the sign-in again."),
    ErrorCode("SAML_DOCTYPE", 400, _SAML_BAD),
    ErrorCode("SAML_TOO_LARGE", 413, "The sign-in answer was too large to accept."),
    ErrorCode("SAML_FORBIDDEN_TRANSFORM", 400, _SAML_BAD),
    ErrorCode(
        "SAML_WEAK_ALGORITHM",
        400,
        "Your identity provider signed the answer with an outdated algorithm (SHA-1). Your administrator must switch it to SHA-256.",
    ),
    ErrorCode("SAML_SIGNATURE_INVALID", 400, _SAML_BAD),
    ErrorCode("SAML_UNSIGNED", 400, _SAML_BAD),
    ErrorCode("SAML_AUDIENCE_MISSING", 400, _SAML_BAD),
    ErrorCode(
        "SAML_AUDIENCE_MISMATCH",
        400,
        "Your identity provider sent the answer for a different application. Your administrator must check the Entity ID / Audience setting.",
    ),
    ErrorCode("SAML_DESTINATION_MISSING", 400, _SAML_BAD),
    ErrorCode(
        "SAML_DESTINATION_MISMATCH",
        400,
        "Your identity provider sent the answer to a different address. Your administrator must check the ACS URL setting.",
    ),
    ErrorCode(
        "SAML_RECIPIENT_MISMATCH",
        400,
        "Your identity provider sent the answer to a different address. Your administrator must check the ACS URL setting.",
    ),
    ErrorCode("SAML_ISSUER_MISMATCH", 400, _SAML_BAD),
    ErrorCode(
        "SAML_IN_RESPONSE_TO_MISMATCH",
        400,
        "This sign-in answer does not belong to a sign-in started in this browser. Please start the sign-in again.",
    ),
    ErrorCode(
        "SAML_UNSOLICITED",
        400,
        "Sign-in from your identity provider's app launcher is not enabled. Please start from the sign-in page.",
    ),
    ErrorCode("SAML_REPLAY", 400, "This sign-in answer was already used. Please start the sign-in again."),
    ErrorCode(
        "SAML_EXPIRED",
        400,
        "The sign-in answer has expired. Please start the sign-in again (if it keeps happening, a clock may be wrong).",
    ),
    ErrorCode(
        "SAML_NOT_YET_VALID",
        400,
        "The sign-in answer is not valid yet. A clock may be wrong; please try again in a minute.",
    ),
    ErrorCode(
        "SAML_STATUS_ERROR",
        400,
        "Your identity provider did not sign you in. It may not have given you access to this application; ask your administrator.",
    ),
    ErrorCode(
        "SAML_NO_EMAIL",
        400,
        "Your identity provider did not send your email address. Your administrator must add it to the SAML settings.",
    ),
    ErrorCode(
        "SAML_EMAIL_AMBIGUOUS",
        400,
        "Your identity provider sent more than one email address for you, so we cannot tell who is signing in. Your administrator must make the email attribute carry one value.",
    ),
    ErrorCode("SAML_INVALID", 400, _SAML_BAD),
    ErrorCode(
        "SAML_ENCRYPTION_REQUIRED",
        400,
        "This connection requires encrypted assertions, and your identity provider sent a plain one. Your administrator must turn on assertion encryption at the identity provider.",
    ),
    ErrorCode(
        "SAML_ENCRYPTION_OFF",
        400,
        "Your identity provider encrypted the answer, but this connection does not accept encrypted assertions. Your administrator must turn encryption on here or off at the identity provider.",
    ),
    ErrorCode(
        "SAML_WEAK_ENCRYPTION",
        400,
        "Your identity provider encrypted the answer with an algorithm we refuse (RSA PKCS#1 v1.5, or an unknown one). Your administrator must pick RSA-OAEP with AES-GCM or AES-CBC.",
    ),
    ErrorCode(
        "SAML_DECRYPTION_FAILED",
        400,
        "The encrypted answer could not be decrypted. Your administrator must upload our current encryption certificate to the identity provider.",
    ),
    ErrorCode(
        "SAML_SESSION_CONFLICT",
        409,
        "You are already signed in as someone else in this browser. Sign out first, then try again.",
    ),
    ErrorCode(
        "SIGNIN_FINISH_INVALID",
        400,
        "This sign-in has expired, was already finished, or was opened in another browser. Please start the sign-in again.",
    ),
    ErrorCode(
        "ACS_METHOD_NOT_ALLOWED",
        405,
        "This address only accepts sign-in answers posted by your identity provider. Please start from the sign-in page.",
    ),
    ErrorCode("CONNECTION_NOT_FOUND", 404, "This single sign-on connection does not exist."),
    ErrorCode(
        "IDP_SSO_URL_INVALID",
        409,
        "Single sign-on through this connection is misconfigured. Ask your company's administrator to import the identity provider's details again.",
    ),
    ErrorCode(
        "CONNECTION_DISABLED",
        403,
        "Single sign-on through this connection is turned off. Ask your company's administrator.",
    ),
    ErrorCode(
        "SSO_NOT_CONFIGURED",
        404,
        "We could not find single sign-on for this email address. Check the address, or ask your company's administrator.",
    ),
    ErrorCode(
        "USER_NOT_FOUND",
        403,
        "Your identity provider signed you in, but there is no user with your email address in this product. Ask your company's administrator to add you.",
    ),
    ErrorCode("USER_DEACTIVATED", 403, "Your user has been deactivated. Ask your company's administrator."),
    ErrorCode(
        "NO_ROLE_FOR_APP",
        403,
        "Your user does not have access to this app. Ask your company's administrator for a role that includes it.",
    ),
    ErrorCode("BAD_REDIRECT", 400, "The address to return to after sign-in is not allowed."),
    ErrorCode("UNKNOWN_APP", 400, "Unknown app."),
    ErrorCode(
        "APP_REQUEST_INVALID",
        400,
        "The app's sign-in request was incomplete or malformed. Close this window and start the sign-in again from the app; if it keeps happening, the app needs an update.",
    ),
    ErrorCode(
        "APP_REDIRECT_URI_INVALID",
        400,
        "The app asked to be sent back to an address that is not allowed, so the sign-in stopped here. Close this window; if it keeps happening, the app needs an update.",
    ),
    ErrorCode(
        "APP_PKCE_REQUIRED",
        400,
        "The app did not protect its sign-in request as required (PKCE with S256). Close this window; the app needs an update.",
    ),
    ErrorCode(
        "APP_AUTHORIZATION_EXPIRED",
        400,
        "This app sign-in has expired or was already finished. Start the sign-in again from the app.",
    ),
    ErrorCode(
        "INVALID_CREDENTIALS",
        401,
        "The email or password is wrong, or this account does not sign in with a password here. If your company uses single sign-on, use Sign in with SSO.",
    ),
    # Single Logout: a LogoutRequest or LogoutResponse at /saml/<id>/sls that we refuse ends nothing.
    ErrorCode(
        "SLO_NOT_ENABLED",
        404,
        "Single Logout is not turned on for this connection. Sign out in each application separately.",
    ),
    ErrorCode("SLO_MALFORMED", 400, "The sign-out message was damaged or incomplete."),
    ErrorCode("SLO_UNSIGNED", 400, _SLO_BAD),
    ErrorCode("SLO_SIGNATURE_INVALID", 400, _SLO_BAD),
    ErrorCode("SLO_EXPIRED", 400, "The sign-out message has expired (if it keeps happening, a clock may be wrong)."),
    ErrorCode("SLO_REPLAY", 400, "This sign-out message was already used."),
    ErrorCode(
        "SLO_DESTINATION_MISMATCH",
        400,
        "Your identity provider sent the sign-out message to a different address. Your administrator must check the Single Logout URL setting.",
    ),
    ErrorCode("SLO_ISSUER_MISMATCH", 400, _SLO_BAD),
    ErrorCode(
        "SLO_IN_RESPONSE_TO_MISMATCH",
        400,
        "This sign-out answer does not belong to a sign-out started in this browser. You are signed out of this product.",
    ),
    ErrorCode("INVALID_CREDENTIALS", 401, "The email or password is wrong."),
    ErrorCode("SSO_REQUIRED", 403, "Your company requires you to sign in with SSO."),
    ErrorCode("LOGIN_RATE_LIMITED", 429, "Too many failed attempts. Wait a few minutes and try again."),
    ErrorCode("RATE_LIMITED", 429, "Too many requests from your network. Wait a minute and try again."),
    ErrorCode(
        "TOO_MANY_PENDING_SIGNINS",
        429,
        "This browser has started too many sign-ins that were not finished. Wait ten minutes, or finish one of them, and try again.",
    ),
    ErrorCode("SERVER_BUSY", 503, "We are handling many sign-ins right now. Please try again in a few seconds."),
]

ERROR_CODES: dict[str, ErrorCode] = {entry.code: entry for entry in _CODES}


class CodedError(Exception):
    """The base of every refusal a service raises: a stable ``code`` that scripts and tests rely
    on, and a ``message`` a person can act on. Views and commands catch this one class."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SignInError(CodedError):
    """A refused sign-in: a stable code for the person, details for the admin's audit trail."""

    def __init__(self, code: str, detail: str = "", **context: Any) -> None:
        if code not in ERROR_CODES:
            raise KeyError(f"unknown error code {code}")
        super().__init__(code, ERROR_CODES[code].message)
        #: For the audit event only.
        self.detail = detail
        #: Extra facts for the audit event (email, connection id, ...).
        self.context = context

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"

    @property
    def status(self) -> int:
        return ERROR_CODES[self.code].status


class LogoutError(SignInError):
    """A refused Single Logout message (``SLO_*`` codes, or a ``SAML_*`` code shared with sign-in):
    the same page, status and audit trail as a refused sign-in, and nothing was signed out."""
