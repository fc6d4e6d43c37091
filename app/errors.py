"""Stable error codes: what a person is told, what their admin is told, and the HTTP status, for
every refusal.

The code is shown on the error page and written to the audit event; the details an admin needs
go only to the audit event and to the admin's pages (a test sign-in's result, a connection's
diagnostics), never to the page of the person signing in.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    """One refusal reason."""

    code: str
    status: int
    #: What the person sees. Says what to do, never why in detail (that would help an attacker).
    message: str
    #: What an admin reads about that person's attempt (test result, diagnostics): a template with
    #: the ``AdminContext`` placeholders, written about the person with names, not ids, and saying
    #: what to change. ``{person}`` only starts a sentence (its fallback is "Someone").
    admin: str


_SAML_BAD = "Your identity provider's answer could not be accepted. Please try signing in again; if this keeps happening, contact your company's administrator."

_SLO_BAD = "Your identity provider's sign-out message could not be accepted, so nothing was signed out. If this keeps happening, contact your company's administrator."

_CODES = [
    ErrorCode(
        "SAML_MALFORMED",
        400,
        "The sign-in answer was damaged or incomplete. Please start the sign-in again.",
        "{idp}'s answer for {connection} arrived damaged or incomplete, so nobody was signed in. Try again; if it keeps happening, check that {idp} posts its answer (HTTP-POST) to this connection's ACS URL.",
    ),
    ErrorCode(
        "SAML_DOCTYPE",
        400,
        _SAML_BAD,
        "{idp}'s answer contained a DOCTYPE declaration, which we refuse for safety. {idp} itself never sends one: check that nothing between {idp} and this portal rewrites the answer.",
    ),
    ErrorCode(
        "SAML_TOO_LARGE",
        413,
        "The sign-in answer was too large to accept.",
        "{idp}'s answer was larger than we accept. In {idp}, send fewer attributes (long group lists are the usual cause).",
    ),
    ErrorCode(
        "SAML_FORBIDDEN_TRANSFORM",
        400,
        _SAML_BAD,
        "{idp}'s signature uses a transform we refuse (only the standard ones are allowed). Check {idp}'s signing settings; a standard set-up never does this.",
    ),
    ErrorCode(
        "SAML_WEAK_ALGORITHM",
        400,
        "Your identity provider signed the answer with an outdated algorithm (SHA-1). Your administrator must switch it to SHA-256.",
        "{idp} signed the answer with SHA-1, which we refuse. In {idp}, set the signature algorithm to RSA-SHA256 and the digest to SHA-256.",
    ),
    ErrorCode(
        "SAML_SIGNATURE_INVALID",
        400,
        _SAML_BAD,
        "{idp}'s answer was not signed by a certificate that {connection} trusts, or it was changed after signing. Compare the certificate that signed it with the ones we trust; if they differ, import {idp}'s current certificate.",
    ),
    ErrorCode(
        "SAML_UNSIGNED",
        400,
        _SAML_BAD,
        "{idp}'s answer was not signed where {connection} requires a signature. In {idp}, sign the assertion (or the whole response, if this connection's settings ask for it).",
    ),
    ErrorCode(
        "SAML_AUDIENCE_MISSING",
        400,
        _SAML_BAD,
        "{idp}'s answer names no audience. In {idp}, set the Audience (SP Entity ID) to this connection's Entity ID.",
    ),
    ErrorCode(
        "SAML_AUDIENCE_MISMATCH",
        400,
        "Your identity provider sent the answer for a different application. Your administrator must check the Entity ID / Audience setting.",
        "{idp}'s answer was meant for another application: its audience is not this connection's Entity ID. In {idp}, set the Audience (SP Entity ID) to the Entity ID shown on this connection, exactly.",
    ),
    ErrorCode(
        "SAML_DESTINATION_MISSING",
        400,
        _SAML_BAD,
        "{idp}'s answer does not say which address it was sent to. In {idp}, set the ACS URL (also called single sign-on URL or Reply URL) to this connection's ACS URL.",
    ),
    ErrorCode(
        "SAML_DESTINATION_MISMATCH",
        400,
        "Your identity provider sent the answer to a different address. Your administrator must check the ACS URL setting.",
        "{idp} addressed its answer to another URL than this connection's ACS URL. In {idp}, set the ACS URL to the one shown on this connection, exactly.",
    ),
    ErrorCode(
        "SAML_RECIPIENT_MISMATCH",
        400,
        "Your identity provider sent the answer to a different address. Your administrator must check the ACS URL setting.",
        "{idp} addressed the assertion (its Recipient) to another URL than this connection's ACS URL. In {idp}, set the ACS URL to the one shown on this connection, exactly.",
    ),
    ErrorCode(
        "SAML_ISSUER_MISMATCH",
        400,
        _SAML_BAD,
        "The answer came from another identity provider than the one {connection} was set up with: its Issuer is not the entity ID we imported. Import {idp}'s current details again.",
    ),
    ErrorCode(
        "SAML_IN_RESPONSE_TO_MISMATCH",
        400,
        "This sign-in answer does not belong to a sign-in started in this browser. Please start the sign-in again.",
        "{person}'s answer from {idp} did not match a sign-in started in the same browser: it was started in another browser or at another address, took too long, or was answered already. They should start again from the sign-in page.",
    ),
    ErrorCode(
        "SAML_UNSOLICITED",
        400,
        "Sign-in from your identity provider's app launcher is not enabled. Please start from the sign-in page.",
        "{idp} sent a sign-in that did not start here (from {idp}'s app launcher), and {connection} does not accept those. Allow IdP-initiated sign-in in this connection's settings, or have people start from the sign-in page.",
    ),
    ErrorCode(
        "SAML_REPLAY",
        400,
        "This sign-in answer was already used. Please start the sign-in again.",
        "The same answer from {idp} arrived twice and the second time was refused. A double submit or the back button does this; if it repeats, someone may be replaying answers.",
    ),
    ErrorCode(
        "SAML_EXPIRED",
        400,
        "The sign-in answer has expired. Please start the sign-in again (if it keeps happening, a clock may be wrong).",
        "{idp}'s answer had expired when it arrived. If this happens often, a clock is wrong: check the time at {idp} and on this server.",
    ),
    ErrorCode(
        "SAML_NOT_YET_VALID",
        400,
        "The sign-in answer is not valid yet. A clock may be wrong; please try again in a minute.",
        "{idp}'s answer was not valid yet when it arrived, so a clock is ahead or behind. Check the time at {idp} and on this server.",
    ),
    ErrorCode(
        "SAML_STATUS_ERROR",
        400,
        "Your identity provider did not sign you in. It may not have given you access to this application; ask your administrator.",
        "{idp} did not sign the person in and said so in its answer. Usually they are not assigned to this application in {idp}: assign them, or their group, to it.",
    ),
    ErrorCode(
        "SAML_NO_EMAIL",
        400,
        "Your identity provider did not send your email address. Your administrator must add it to the SAML settings.",
        "{person} signed in at {idp}, but {idp} sent no email address we could read. In {idp}, send the email address in an attribute named {email_attribute}, or as the NameID in the email format.",
    ),
    ErrorCode(
        "SAML_EMAIL_AMBIGUOUS",
        400,
        "Your identity provider sent more than one email address for you, so we cannot tell who is signing in. Your administrator must make the email attribute carry one value.",
        "{person} signed in at {idp}, but {idp} sent more than one email address, so we cannot tell who it is. In {idp}, make the email attribute carry exactly one value.",
    ),
    ErrorCode(
        "SAML_INVALID",
        400,
        _SAML_BAD,
        "{idp}'s answer did not pass our SAML checks, so nobody was signed in. The technical detail below says which check; compare {idp}'s settings with the set-up steps.",
    ),
    ErrorCode(
        "SAML_ENCRYPTION_REQUIRED",
        400,
        "This connection requires encrypted assertions, and your identity provider sent a plain one. Your administrator must turn on assertion encryption at the identity provider.",
        "{connection} requires encrypted assertions, but {idp} sent a plain one. Turn on assertion encryption in {idp} with our encryption certificate, or make encryption optional here.",
    ),
    ErrorCode(
        "SAML_ENCRYPTION_OFF",
        400,
        "Your identity provider encrypted the answer, but this connection does not accept encrypted assertions. Your administrator must turn encryption on here or off at the identity provider.",
        "{idp} encrypted the assertion, but {connection} does not accept encrypted assertions. Turn encryption on in this connection's settings, or off in {idp}.",
    ),
    ErrorCode(
        "SAML_WEAK_ENCRYPTION",
        400,
        "Your identity provider encrypted the answer with an algorithm we refuse (RSA PKCS#1 v1.5, or an unknown one). Your administrator must pick RSA-OAEP with AES-GCM or AES-CBC.",
        "{idp} encrypted the assertion with an algorithm we refuse (RSA PKCS#1 v1.5, or an unknown one). In {idp}, choose RSA-OAEP for the key and AES-GCM or AES-CBC for the data.",
    ),
    ErrorCode(
        "SAML_DECRYPTION_FAILED",
        400,
        "The encrypted answer could not be decrypted. Your administrator must upload our current encryption certificate to the identity provider.",
        "{idp}'s encrypted assertion could not be decrypted with this connection's keys. Upload this connection's current encryption certificate to {idp}.",
    ),
    ErrorCode(
        "SAML_SESSION_CONFLICT",
        409,
        "You are already signed in as someone else in this browser. Sign out first, then try again.",
        "{person} came from {idp}'s app launcher while this browser was signed in as someone else here, so the sign-in was refused. They should sign out first, then try again.",
    ),
    ErrorCode(
        "SIGNIN_FINISH_INVALID",
        400,
        "This sign-in has expired, was already finished, or was opened in another browser. Please start the sign-in again.",
        "{person}'s sign-in at {idp} was verified, but it was not finished in the same browser within two minutes (or it continued at another address). They should start again from the sign-in page.",
    ),
    ErrorCode(
        "ACS_METHOD_NOT_ALLOWED",
        405,
        "This address only accepts sign-in answers posted by your identity provider. Please start from the sign-in page.",
        "Someone opened this connection's ACS URL directly instead of {idp} posting an answer to it. Nothing to fix, unless {idp} is set to send answers with the Redirect binding: it must use HTTP-POST.",
    ),
    ErrorCode(
        "CONNECTION_NOT_FOUND",
        404,
        "This single sign-on connection does not exist.",
        "An answer from {idp} arrived for a connection that no longer exists. If {idp} still sends people there, set its ACS URL to the current connection's.",
    ),
    ErrorCode(
        "IDP_SSO_URL_INVALID",
        409,
        "Single sign-on through this connection is misconfigured. Ask your company's administrator to import the identity provider's details again.",
        "{connection} has no valid sign-in URL for {idp}, so nobody can be sent there. Import {idp}'s details again.",
    ),
    ErrorCode(
        "CONNECTION_DISABLED",
        403,
        "Single sign-on through this connection is turned off. Ask your company's administrator.",
        "{person} tried to sign in through {connection}, which is not enabled. Enable it, or check that {idp} uses the enabled connection's ACS URL.",
    ),
    ErrorCode(
        "SSO_NOT_CONFIGURED",
        404,
        "We could not find single sign-on for this email address. Check the address, or ask your company's administrator.",
        "{person} tried to sign in with SSO, but {account} has no enabled connection, or the address is not a user here. Enable a connection, or add the user.",
    ),
    ErrorCode(
        "USER_NOT_FOUND",
        403,
        "Your identity provider signed you in, but there is no user with your email address in this product. Ask your company's administrator to add you.",
        "{person} signed in at {idp}, but no user with {email} exists in {account}. Add the user, or check that {idp} sends the address you use here.",
    ),
    ErrorCode(
        "USER_DEACTIVATED",
        403,
        "Your user has been deactivated. Ask your company's administrator.",
        "{person} signed in at {idp}, but the user {email} is deactivated in {account}. Reactivate the user if they should have access again.",
    ),
    ErrorCode(
        "NO_ROLE_FOR_APP",
        403,
        "Your user does not have access to this app. Ask your company's administrator for a role that includes it.",
        "{person} signed in at {idp} as {email}, but their roles in {account} ({roles}) do not open {app}. Give them a role that includes it.",
    ),
    ErrorCode(
        "BAD_REDIRECT",
        400,
        "The address to return to after sign-in is not allowed.",
        "{person}'s sign-in asked to return to an address outside this portal, which we refuse. Check the link they started from.",
    ),
    ErrorCode(
        "UNKNOWN_APP",
        400,
        "Unknown app.",
        "A sign-in named an app this product does not have. Check the link, or the version of the app it came from.",
    ),
    ErrorCode(
        "APP_REQUEST_INVALID",
        400,
        "The app's sign-in request was incomplete or malformed. Close this window and start the sign-in again from the app; if it keeps happening, the app needs an update.",
        "{person}'s desktop or mobile app sent an incomplete sign-in request. The app probably needs an update.",
    ),
    ErrorCode(
        "APP_REDIRECT_URI_INVALID",
        400,
        "The app asked to be sent back to an address that is not allowed, so the sign-in stopped here. Close this window; if it keeps happening, the app needs an update.",
        "{person}'s app asked to be sent back to an address that is not allowed, so the sign-in stopped. The app probably needs an update, or the request did not come from our app.",
    ),
    ErrorCode(
        "APP_PKCE_REQUIRED",
        400,
        "The app did not protect its sign-in request as required (PKCE with S256). Close this window; the app needs an update.",
        "{person}'s app did not protect its sign-in request with PKCE (S256). The app needs an update.",
    ),
    ErrorCode(
        "APP_AUTHORIZATION_EXPIRED",
        400,
        "This app sign-in has expired or was already finished. Start the sign-in again from the app.",
        "{person}'s app sign-in took too long or was finished already. They should start again from the app.",
    ),
    # Single Logout: a LogoutRequest or LogoutResponse at /saml/<id>/sls that we refuse ends nothing.
    ErrorCode(
        "SLO_NOT_ENABLED",
        404,
        "Single Logout is not turned on for this connection. Sign out in each application separately.",
        "{idp} sent a sign-out message, but Single Logout is off for {connection}. Turn it on in this connection's settings, or remove our Single Logout URL from {idp}.",
    ),
    ErrorCode(
        "SLO_MALFORMED",
        400,
        "The sign-out message was damaged or incomplete.",
        "{idp}'s sign-out message arrived damaged or incomplete, so nobody was signed out. If it repeats, check {idp}'s Single Logout settings.",
    ),
    ErrorCode(
        "SLO_UNSIGNED",
        400,
        _SLO_BAD,
        "{idp}'s sign-out message was not signed, so nobody was signed out. In {idp}, turn on signing of logout messages.",
    ),
    ErrorCode(
        "SLO_SIGNATURE_INVALID",
        400,
        _SLO_BAD,
        "{idp}'s sign-out message was not signed by a certificate that {connection} trusts, so nobody was signed out. Import {idp}'s current certificate.",
    ),
    ErrorCode(
        "SLO_EXPIRED",
        400,
        "The sign-out message has expired (if it keeps happening, a clock may be wrong).",
        "{idp}'s sign-out message had expired when it arrived, so nobody was signed out. If this happens often, a clock is wrong.",
    ),
    ErrorCode(
        "SLO_REPLAY",
        400,
        "This sign-out message was already used.",
        "The same sign-out message from {idp} arrived twice; the second one was ignored.",
    ),
    ErrorCode(
        "SLO_DESTINATION_MISMATCH",
        400,
        "Your identity provider sent the sign-out message to a different address. Your administrator must check the Single Logout URL setting.",
        "{idp} sent its sign-out message to another address than this connection's Single Logout URL. In {idp}, set the Single Logout URL to the one shown on this connection.",
    ),
    ErrorCode(
        "SLO_ISSUER_MISMATCH",
        400,
        _SLO_BAD,
        "A sign-out message came from another identity provider than {connection}'s, so nobody was signed out. If {idp}'s entity ID changed, import its current details.",
    ),
    ErrorCode(
        "SLO_IN_RESPONSE_TO_MISMATCH",
        400,
        "This sign-out answer does not belong to a sign-out started in this browser. You are signed out of this product.",
        "{idp}'s sign-out answer did not match a sign-out started in the same browser. {person} is signed out here all the same; nothing to fix unless it repeats.",
    ),
    ErrorCode(
        "INVALID_CREDENTIALS",
        401,
        "The email or password is wrong.",
        "{person}'s password sign-in was refused: a wrong password, an unknown address, or a user who may not use a password here. The audit event says which.",
    ),
    ErrorCode(
        "SSO_REQUIRED",
        403,
        "Your company requires you to sign in with SSO.",
        "{person} tried a password, but {account} requires SSO. They must use Sign in with SSO.",
    ),
    ErrorCode(
        "LOGIN_RATE_LIMITED",
        429,
        "Too many failed attempts. Wait a few minutes and try again.",
        "Too many failed password attempts for {person} or from their network: they must wait a few minutes. Nothing to fix unless it keeps happening.",
    ),
    ErrorCode(
        "RATE_LIMITED",
        429,
        "Too many requests from your network. Wait a minute and try again.",
        "Too many requests came from {person}'s network in a short time, so they must wait a minute.",
    ),
    ErrorCode(
        "TOO_MANY_PENDING_SIGNINS",
        429,
        "This browser has started too many sign-ins that were not finished. Wait ten minutes, or finish one of them, and try again.",
        "{person}'s browser started many sign-ins at {idp} without finishing them (often a loop between {idp} and a bookmark). They can try again in ten minutes.",
    ),
    ErrorCode(
        "SERVER_BUSY",
        503,
        "We are handling many sign-ins right now. Please try again in a few seconds.",
        "The portal was at its limit of sign-ins in progress and asked the person to try again in a few seconds. If this happens often, add capacity.",
    ),
    ErrorCode(
        "REQUEST_NUL_CHARACTER",
        400,
        "The request carried a character no field here accepts (a NUL). Remove it and try again.",
        "A request to the portal carried a NUL character in a field, which no address, name or setting can hold; it was refused before anything read it.",
    ),
]

ERROR_CODES: dict[str, ErrorCode] = {entry.code: entry for entry in _CODES}


@dataclass(frozen=True)
class AdminContext:
    """What an admin text is filled with; every field has a fallback that reads as plain words."""

    #: The person as the IdP named them (first name, else display name), else their email.
    person: str = "someone"
    #: The email address the IdP sent.
    email: str = "their email address"
    #: The identity provider's product name ("Okta").
    idp: str = "the identity provider"
    #: The connection's name as the admin set it.
    connection: str = "this connection"
    #: The account's name ("Demo Company").
    account: str = "your account"
    #: The app the sign-in was for, as a person calls it.
    app: str = "the Account Portal"
    #: The user's roles here, in words.
    roles: str = "no role"
    #: The first attribute the connection reads the email from.
    email_attribute: str = "email"


#: The placeholders an admin text may use.
ADMIN_PLACEHOLDERS = frozenset(AdminContext.__dataclass_fields__)
_FALLBACKS = asdict(AdminContext())
_SENTENCE_START_PLACEHOLDER = re.compile(r"(^|\. )\{(\w+)\}")


def admin_text(code: str, context: AdminContext) -> str:
    """The admin's sentence about a refusal with ``code``, filled from ``context``.

    Only the template is parsed: values are inserted as they are, so braces an IdP sent in a
    name cannot act as placeholders. A fallback that starts a sentence gets a capital letter
    ("The identity provider's answer ..."); a real value never changes case (an email stays as sent).
    """
    entry = ERROR_CODES.get(code)
    if entry is None:
        return f"The sign-in was refused (error code {code})."
    values, fallbacks = asdict(context), _FALLBACKS

    def sentence_start(match: re.Match[str]) -> str:
        name = match.group(2)
        value = values[name]
        if value == fallbacks[name]:
            value = value[:1].upper() + value[1:]
        return match.group(1) + value.replace("{", "{{").replace("}", "}}")

    return _SENTENCE_START_PLACEHOLDER.sub(sentence_start, entry.admin).format_map(values)


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
